package media

import (
	"net/netip"
	"sync"
	"time"
)

// Writer identities of a leg's outgoing stream. Playback jobs use their own
// ids (from 2 up), so a new prompt counts as a switch too.
const (
	writerNone    uint64 = 0
	writerForward uint64 = 1
)

// samplePeriod is the duration of one 8 kHz sample (and RTP clock tick).
const samplePeriod = time.Second / SampleRate

// outStream is the RTP stream a leg sends: one SSRC with continuous sequence
// numbers and timestamps, whoever writes to it (the shard playing a prompt or
// the bridged peer's reader forwarding). All fields are guarded by mu, which
// is only held to compute a header, never across a socket write.
type outStream struct {
	mu sync.Mutex

	ssrc    uint32
	nextSeq uint16
	// nextTS continues the last packet sent (its timestamp plus its length).
	nextTS uint32
	// refTS was the timestamp of the audio sent at refTime; together they
	// tell how far the RTP clock has run when a new writer takes over.
	refTS   uint32
	refTime time.Time
	writer  uint64

	dest    netip.AddrPort
	latched bool
	gen     uint64 // source generation dest belongs to
	sending bool   // the negotiated direction lets this side send

	// Forwarding map from the peer's incoming stream to ours.
	inSSRC    uint32
	seqOffset uint16
	tsOffset  uint32
}

// open reports whether a packet may go out now. While it may not (on hold,
// c=0.0.0.0, not negotiated) nothing is stamped and the writer is forgotten,
// so the first packet afterwards continues the sequence numbers, takes its
// timestamp from the clock and carries the marker.
func (o *outStream) open() bool {
	if o.sending && sendable(o.dest) {
		return true
	}
	o.writer = writerNone
	return false
}

// anchorTS returns the timestamp for the first packet of a new writer: the
// RTP clock kept running while nothing (or someone else) was sending, but it
// never goes back before the end of the last packet.
func (o *outStream) anchorTS(now time.Time) uint32 {
	if o.refTime.IsZero() {
		return o.nextTS
	}
	elapsed := max(now.Sub(o.refTime), 0)
	byClock := o.refTS + uint32(int64(elapsed/samplePeriod))
	if int32(byClock-o.nextTS) > 0 {
		return byClock
	}
	return o.nextTS
}

// stamp reserves the next sequence number for a packet of writer carrying
// samples of audio and returns its header fields. A change of writer
// re-anchors the timestamp and sets the marker. keepRef leaves the clock
// reference alone (the later packets of one DTMF event repeat its timestamp).
func (o *outStream) stamp(writer uint64, now time.Time, samples uint32, keepRef bool) (seq uint16, ts uint32, marker bool) {
	if o.writer != writer {
		o.writer = writer
		o.nextTS = o.anchorTS(now)
		marker = true
		keepRef = false
	}
	ts = o.nextTS
	seq = o.nextSeq
	o.nextSeq++
	o.nextTS = ts + samples
	if !keepRef {
		o.refTS, o.refTime = ts, now
	}
	return seq, ts, marker
}

// forward maps a packet of the peer's incoming stream (inSSRC, inSeq, inTS)
// onto this stream. samples is the audio length, 0 for events; only audio
// moves the clock reference.
func (o *outStream) forward(inSSRC uint32, inSeq uint16, inTS uint32, now time.Time, samples uint32) (seq uint16, ts uint32, marker bool) {
	if o.writer != writerForward || o.inSSRC != inSSRC {
		o.writer = writerForward
		o.inSSRC = inSSRC
		o.tsOffset = o.anchorTS(now) - inTS
		o.seqOffset = o.nextSeq - inSeq
		marker = true
	}
	seq = inSeq + o.seqOffset
	ts = inTS + o.tsOffset
	// Reordered or duplicate packets keep their place; only newer ones
	// advance the stream.
	if int16(seq-o.nextSeq) >= 0 {
		o.nextSeq = seq + 1
	}
	if samples > 0 && (o.refTime.IsZero() || int32(ts-o.refTS) >= 0) {
		o.refTS, o.refTime = ts, now
		o.nextTS = ts + samples
	}
	return seq, ts, marker
}
