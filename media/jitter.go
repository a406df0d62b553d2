package media

import (
	"sync"
	"time"
)

// The jitter buffer turns the audio a leg receives into a steady stream of
// 20 ms frames on the shard's clock, for whatever consumes it: a recording,
// a mixer, an in-band DTMF detector. Pass-through forwarding never goes
// through it.
//
// Packets go in on the leg's reader goroutine: their G.711 bytes are placed
// by RTP timestamp into 10 ms slots, so any packet time (10, 20, 30 ms...)
// and reordering within the window come out right. Frames come out on the
// shard goroutine a playout delay behind the newest audio; the delay
// follows the measured interarrival jitter (RFC 3550 §6.4.1) between 20 and
// 60 ms. A missing 10 ms is concealed by repeating the last one, fading, and
// after a few becomes silence.

const (
	jbChunk    = 80 // samples per slot: 10 ms at 8 kHz
	jbSlots    = 64 // 640 ms of window
	jbMinDelay = 160
	jbMaxDelay = 480
	// jbConceal is how many missing chunks repeat the last one (fading)
	// before concealment turns to silence.
	jbConceal = 3
)

type jbSlot struct {
	ts     uint32 // timestamp of the slot's first sample
	filled bool
	data   [jbChunk]byte
}

// jitterStats are what a jitter buffer counted.
type jitterStats struct {
	Late       uint64 // audio that came after its playout time, dropped
	Concealed  uint64 // 10 ms chunks made up for missing audio
	Resets     uint64 // restarts: first audio, new SSRC, timestamp jump
	Trimmed    uint64 // chunks skipped because audio piled up beyond the delay
	DelayMS    int    // current playout delay
	JitterMS   float64
	FramesOut  uint64
	ChunksLost uint64 // concealed chunks whose audio never came
}

// jitterBuffer is safe for one writer (put) and one reader (frame) at once.
type jitterBuffer struct {
	mu    sync.Mutex
	codec Codec
	slots [jbSlots]jbSlot

	started bool
	ssrc    uint32
	readTS  uint32 // timestamp of the next sample to play out
	base    uint32 // timestamp of the first audio since the restart
	phase   uint32 // slots start at timestamps phase + k*jbChunk (the stream's own)
	newest  uint32 // end (timestamp after the last sample) of the newest audio put
	delay   uint32 // playout delay being aimed at, in samples

	// RFC 3550 interarrival jitter, in timestamp units (samples).
	jitter      float64
	lastTransit int64
	haveTransit bool

	last     [jbChunk]int16 // the last chunk played, for concealment
	missing  int            // chunks concealed in a row
	underrun bool           // playout caught up with the newest audio and waits
	// The least audio buffered ahead of playout over the current second:
	// when it stays above the target, playout is trimmed by a chunk.
	minAhead   int32
	trimWindow int
	stats      jitterStats
}

func newJitterBuffer(c Codec) *jitterBuffer {
	return &jitterBuffer{codec: c, delay: jbMinDelay}
}

// setCodec follows a renegotiation; what is buffered was in the old codec,
// so it is dropped.
func (b *jitterBuffer) setCodec(c Codec) {
	b.mu.Lock()
	if b.codec != c {
		b.codec = c
		b.started = false
	}
	b.mu.Unlock()
}

// put stores one packet's audio. It runs on the reader goroutine and
// allocates nothing.
func (b *jitterBuffer) put(ssrc, ts uint32, payload []byte, arrival time.Time) {
	if len(payload) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	end := ts + uint32(len(payload))
	if !b.started || ssrc != b.ssrc || b.jumped(ts) {
		b.restart(ssrc, ts)
	}
	b.measureJitter(ts, arrival)
	if int32(ts-b.base) < 0 && int32(ts-b.readTS) >= 0 {
		b.base = ts // the first packets came out of order
	}
	if b.underrun && int32(ts-b.readTS) > int32(b.delay) {
		// Audio resumes after a pause (or its sender's clock ran on while
		// we waited): play it after the usual delay, not after the pause.
		b.readTS = ts - (ts-b.phase)%jbChunk - b.delay
		b.underrun = false
	}
	for len(payload) > 0 {
		into := (ts - b.phase) % jbChunk
		n := min(len(payload), jbChunk-int(into))
		if int32(ts+uint32(n)-b.readTS) <= 0 {
			b.stats.Late++ // wholly before what we play next: too late
		} else {
			start := ts - into
			s := b.slot(start)
			if s.ts != start || !s.filled {
				s.ts, s.filled = start, true
				fillSilence(b.codec, s.data[:])
			}
			copy(s.data[into:], payload[:n])
		}
		ts += uint32(n)
		payload = payload[n:]
	}
	if int32(end-b.newest) > 0 {
		b.newest = end
	}
}

// jumped reports a timestamp far outside the window: a new talk spurt after
// a long silence, or a sender that reset its clock.
func (b *jitterBuffer) jumped(ts uint32) bool {
	d := int32(ts - b.readTS)
	return d < -jbSlots*jbChunk || d > jbSlots*jbChunk
}

// slot is where the chunk starting at ts (on the stream's phase) goes.
func (b *jitterBuffer) slot(ts uint32) *jbSlot {
	return &b.slots[((ts-b.phase)/jbChunk)%jbSlots]
}

func (b *jitterBuffer) restart(ssrc, ts uint32) {
	b.started, b.ssrc, b.phase = true, ssrc, ts%jbChunk
	b.readTS = ts - b.delay
	b.base, b.newest = ts, ts
	b.haveTransit = false
	for i := range b.slots {
		b.slots[i].filled = false
	}
	b.stats.Resets++
}

// measureJitter updates the RFC 3550 estimate: J += (|D| - J) / 16, D the
// change in transit time between two packets, in timestamp units.
func (b *jitterBuffer) measureJitter(ts uint32, arrival time.Time) {
	transit := arrival.UnixNano()/int64(samplePeriod) - int64(ts)
	if b.haveTransit {
		d := transit - b.lastTransit
		if d < 0 {
			d = -d
		}
		b.jitter += (float64(d) - b.jitter) / 16
	}
	b.lastTransit, b.haveTransit = transit, true
}

// targetDelay is the playout delay for the jitter measured: three times the
// jitter over one 10 ms chunk, between 20 and 60 ms, in whole chunks.
func (b *jitterBuffer) targetDelay() uint32 {
	d := uint32(3*b.jitter) + jbChunk
	d = (d + jbChunk - 1) / jbChunk * jbChunk
	return min(max(d, jbMinDelay), jbMaxDelay)
}

// frame fills pcm (one 20 ms frame, 160 samples) with the audio due now.
// It reports false while nothing was ever put (pcm is then silence). It
// runs on the shard goroutine and allocates nothing.
func (b *jitterBuffer) frame(pcm []int16) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.started {
		clear(pcm)
		return false
	}
	b.adapt()
	for off := 0; off+jbChunk <= len(pcm); off += jbChunk {
		b.chunk(pcm[off : off+jbChunk])
	}
	b.stats.FramesOut++
	return true
}

// adapt sets the delay from the jitter and, once a second, trims a chunk
// when more than the delay stayed buffered all that second (after a burst,
// or a delay that has come down). Growing the delay needs no step here: a
// chunk that is not there yet is waited for (see chunk).
func (b *jitterBuffer) adapt() {
	b.delay = b.targetDelay()
	ahead := int32(b.newest - b.readTS)
	if b.trimWindow == 0 || ahead < b.minAhead {
		b.minAhead = ahead
	}
	if b.trimWindow++; b.trimWindow < SampleRate/frame20 {
		return
	}
	b.trimWindow = 0
	if b.minAhead > int32(b.delay)+2*jbChunk {
		b.drop(b.readTS)
		b.readTS += jbChunk
		b.stats.Trimmed++
	}
}

func (b *jitterBuffer) drop(ts uint32) {
	if s := b.slot(ts); s.ts == ts {
		s.filled = false
	}
}

// chunk plays out the 10 ms at readTS into pcm, concealing a gap.
func (b *jitterBuffer) chunk(pcm []int16) {
	s := b.slot(b.readTS)
	switch {
	case s.filled && s.ts == b.readTS:
		DecodeFrame(b.codec, pcm, s.data[:])
		copy(b.last[:], pcm)
		s.filled = false
		b.missing = 0
		b.underrun = false
	case int32(b.readTS-b.base) < 0:
		clear(pcm) // the playout delay before the first audio
	case int32(b.newest-b.readTS) <= 0:
		// Nothing at or after this point has come yet: the sender is late
		// (jitter) or paused. Wait for it rather than skip it: the delay
		// grows by this chunk.
		b.conceal(pcm)
		b.underrun = true
		return
	default: // later audio came, this did not: lost (or too late)
		b.conceal(pcm)
		b.stats.ChunksLost++
	}
	b.readTS += jbChunk
}

// conceal fills pcm for a missing chunk: the last chunk repeated, 6 dB
// quieter each time (a lost packet sounds like a short smear, not a click),
// then silence.
func (b *jitterBuffer) conceal(pcm []int16) {
	b.stats.Concealed++
	if b.missing >= jbConceal {
		clear(pcm)
		return
	}
	for i, v := range b.last {
		b.last[i] = v / 2
	}
	copy(pcm, b.last[:])
	b.missing++
}

// snapshot returns the counters.
func (b *jitterBuffer) snapshot() jitterStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.stats
	st.DelayMS = int(b.delay) * 1000 / SampleRate
	st.JitterMS = b.jitter * 1000 / SampleRate
	return st
}

// fillSilence writes c's silence into dst.
func fillSilence(c Codec, dst []byte) {
	s := c.silenceByte()
	for i := range dst {
		dst[i] = s
	}
}
