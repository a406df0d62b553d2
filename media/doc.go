// Package media moves RTP audio for hotline: UDP sockets from a port pool,
// G.711 (PCMU/PCMA) codecs, RFC 4733 DTMF, prompt playback, music on hold and
// two-leg bridges with PCMU<->PCMA transcoding. It knows nothing about SIP or
// IVR: the call layer negotiates SDP and hands the result to Leg.SetParams.
// Prompts are converted to 8 kHz G.711 once, at load (LoadWAV, OpenPrompt);
// DTMFDetector finds keys sent as tones in the audio, for trunks that send
// no RFC 4733 events.
//
// # Threading model (the hot path)
//
// Every Leg owns one RTP socket and one reader goroutine that blocks in
// ReadFromUDPAddrPort on a buffer the leg owns. A received packet is handled
// entirely on that goroutine: source latching, DTMF detection, the audio tap
// and, when bridged, forwarding to the peer leg's remote with SSRC, sequence
// number and timestamp rewritten. There is no channel hop and no allocation
// per packet. The reader also keeps the RFC 3550 receive statistics of the
// peer's stream (loss with sequence wrap and restarts, interarrival jitter):
// a few integer operations under an uncontended lock.
//
// # RTCP
//
// Each leg binds the odd port above its RTP port too (the pool hands out
// pairs, skipping those of which another program holds either port). A
// second, low-rate reader takes the peer's compound RTCP packets (SR, RR,
// SDES, BYE); the shards' slow clock sends ours (SR when we sent RTP, else
// RR, with a report block about the peer's stream and our CNAME) every
// Config.RTCPInterval, randomised by ±50%, to Params.RTCPRemote or the RTP
// port + 1. Leg.Quality gives both views, and the round trip from the
// peer's LSR/DLSR.
//
// Work that needs a clock (prompts, music on hold, sending DTMF) runs on a few
// shard goroutines (GOMAXPROCS by default). Each shard has ONE 20 ms ticker
// serving every leg assigned to it, and stops it when none of them is
// playing. A slower clock on each shard (once a second, or a quarter of the
// RTCP interval if that is shorter; no timer per leg) sends the legs' RTCP
// reports and, when RTP timeouts are configured, closes MediaTimeout of a
// leg that received nothing for too long.
//
// A leg's outgoing stream (SSRC, sequence number, timestamp) is written by its
// shard (playback) and by the bridged peer's reader (forwarding); a small
// per-leg mutex keeps it consistent so the far end always sees one continuous
// stream with the marker bit set at every switch.
//
// # Symmetric RTP, safely
//
// RTP is accepted only from the address the peer's SDP names or, for a peer
// behind NAT, from the IP its SIP signalling came from (Params.SignalIP, any
// port). Everything else is dropped and counted before it is even parsed: a
// third host can never become a leg's peer, reach the other party, the
// recording or DTMF detection (RTP bleed and injection). Among the accepted
// sources the reader locks the first that sends a few packets with
// consecutive sequence numbers, and from then on sends everything there;
// until then packets go to the SDP address. Learning starts again only when
// SetParams changes Remote, RTCPRemote or SignalIP. A NAT that moves the
// peer to another port of the same IP mid-call is followed once the same
// stream (SSRC) continues its sequence numbers from there for a few
// packets; another SSRC, a sequence jump or another IP never moves the lock.
// RTCP follows the same rule, by the sender's SSRC. Ports are handed out in
// random order, and a released pair rests for Config.PortQuarantine before
// it is handed out again.
//
// # Hold
//
// A leg whose Params.Direction is RecvOnly or Inactive, or whose remote is
// c=0.0.0.0, sends nothing (no forwarded audio, prompts or DTMF) but still
// receives; on resume its stream continues with the marker bit set.
package media
