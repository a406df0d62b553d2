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
// Every Leg owns one UDP socket and one reader goroutine that blocks in
// ReadFromUDPAddrPort on a buffer the leg owns. A received packet is handled
// entirely on that goroutine: source latching, DTMF detection, the audio tap
// and, when bridged, forwarding to the peer leg's remote with SSRC, sequence
// number and timestamp rewritten. There is no channel hop and no allocation
// per packet.
//
// Work that needs a clock (prompts, music on hold, sending DTMF) runs on a few
// shard goroutines (GOMAXPROCS by default). Each shard has ONE 20 ms ticker
// serving every leg assigned to it, and stops it when none of them is
// playing. When RTP timeouts are configured, each shard also checks its own
// legs once a second (no timer per leg) and closes MediaTimeout of a leg
// that received nothing for too long.
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
// SetParams changes Remote or SignalIP. Ports are handed out in random order.
//
// # Hold
//
// A leg whose Params.Direction is RecvOnly or Inactive, or whose remote is
// c=0.0.0.0, sends nothing (no forwarded audio, prompts or DTMF) but still
// receives; on resume its stream continues with the marker bit set.
package media
