package recording

import (
	"encoding/binary"
	"errors"
	"io"
	"time"
)

const (
	// samplePeriod is the duration of one sample at 8 kHz.
	samplePeriod = time.Second / SampleRate
	// jitterAllowance: a frame later than this after the end of the previous
	// one starts a new talk spurt and the gap is recorded as silence; normal
	// jitter is absorbed by playing frames back to back.
	jitterAllowance  = 60 * time.Millisecond
	allowanceSamples = int64(jitterAllowance / samplePeriod)
	// maxLeadSamples: a side whose recorded position runs more than this
	// ahead of its arrival times (a flood, or a sender clock faster than ours)
	// has frames dropped, which bounds the memory held for alignment.
	maxLeadSamples = SampleRate
	// padStep bounds how much silence is queued at once, so a long silence is
	// streamed to disk rather than held in memory.
	padStep = 4000
	// outBufferBytes: audio is written to the file in chunks of this size
	// (about one second of stereo audio).
	outBufferBytes = 32 << 10
	// maxDataBytes is the largest data chunk a WAV header can describe.
	maxDataBytes = (0xFFFFFFFF - (wavHeaderSize - 8)) &^ (bytesPerFrame - 1)
)

var silence [padStep]int16

var errTooLong = errors.New("recording reached the 4 GiB WAV size limit")

// timeline aligns the two channels by arrival time and writes them
// interleaved. Sample index s of the file is s/8000 seconds after the
// recording started. Only the writer goroutine touches it.
type timeline struct {
	sink    io.Writer
	tracks  [2]track
	written int64  // samples per channel already interleaved into out or the file
	out     []byte // interleaved audio waiting to be written
	// dataBytes counts audio bytes the sink accepted.
	dataBytes   int64
	err         error // first write failure; later audio is discarded
	errReported bool
}

type track struct {
	pending []int16 // samples from timeline.written onwards
	// idle: the track ends in silence (or has had nothing yet), so the next
	// frame starts a talk spurt and is placed exactly at its arrival time.
	idle bool
}

func newTimeline(sink io.Writer) timeline {
	tl := timeline{sink: sink, out: make([]byte, 0, outBufferBytes)}
	for i := range tl.tracks {
		tl.tracks[i] = track{pending: make([]int16, 0, 2*chunkSamples), idle: true}
	}
	return tl
}

// position is where the next sample of a side goes.
func (tl *timeline) position(side int) int64 {
	return tl.written + int64(len(tl.tracks[side].pending))
}

// place puts one frame on its side's track and writes out what both sides
// have reached. It reports false when the frame was dropped because the side
// is too far ahead of real time.
func (tl *timeline) place(side int, samples []int16, arrival time.Duration) bool {
	end := int64(arrival / samplePeriod)
	start := end - int64(len(samples))
	pos := tl.position(side)
	if pos-start > maxLeadSamples {
		return false
	}
	var targets [2]int64
	targets[side] = pos
	// Back to back while the side is talking and within the allowance; at
	// its arrival time when a talk spurt starts or after a longer gap.
	if start > pos && (tl.tracks[side].idle || start-pos > allowanceSamples) {
		targets[side] = start
	}
	// Nothing from the other side for longer than the allowance: it is
	// silent, so fill it up to now so this side is not held back.
	other := 1 - side
	targets[other] = end - allowanceSamples
	if targets[other] > tl.position(other) {
		tl.tracks[other].idle = true
	}
	tl.padTo(targets)
	t := &tl.tracks[side]
	t.pending = append(t.pending, samples...)
	t.idle = false
	tl.flushCommon()
	return true
}

// padTo appends silence to each track below its target, in steps, writing
// out as it goes.
func (tl *timeline) padTo(targets [2]int64) {
	for {
		padded := false
		for side := range tl.tracks {
			if gap := targets[side] - tl.position(side); gap > 0 {
				t := &tl.tracks[side]
				t.pending = append(t.pending, silence[:min(gap, padStep)]...)
				padded = true
			}
		}
		if !padded {
			return
		}
		tl.flushCommon()
	}
}

// flushCommon interleaves the samples both tracks have and moves them to the
// output buffer, writing it to the sink whenever it fills.
func (tl *timeline) flushCommon() {
	left, right := &tl.tracks[leftSide], &tl.tracks[rightSide]
	n := min(len(left.pending), len(right.pending))
	if n == 0 {
		return
	}
	for done := 0; done < n; {
		if len(tl.out) == cap(tl.out) {
			tl.writeOut()
		}
		// Interleave as many frames as fit into the output buffer's free space.
		count := min(n-done, (cap(tl.out)-len(tl.out))/bytesPerFrame)
		dst := tl.out[len(tl.out) : len(tl.out)+count*bytesPerFrame]
		l, r := left.pending[done:done+count], right.pending[done:done+count]
		for i := range l {
			binary.LittleEndian.PutUint16(dst[4*i:], uint16(l[i]))
			binary.LittleEndian.PutUint16(dst[4*i+2:], uint16(r[i]))
		}
		tl.out = tl.out[:len(tl.out)+len(dst)]
		done += count
	}
	left.pending = left.pending[:copy(left.pending, left.pending[n:])]
	right.pending = right.pending[:copy(right.pending, right.pending[n:])]
	tl.written += int64(n)
}

// writeOut hands the output buffer to the sink. After a failure (or at the
// WAV size limit) audio is discarded so the writer keeps draining frames.
func (tl *timeline) writeOut() {
	out := tl.out
	tl.out = tl.out[:0]
	if tl.err != nil || len(out) == 0 {
		return
	}
	if room := maxDataBytes - tl.dataBytes; int64(len(out)) > room {
		out = out[:room]
		tl.err = errTooLong
	}
	n, err := tl.sink.Write(out)
	tl.dataBytes += int64(n)
	if err != nil && tl.err == nil {
		tl.err = err
	}
}

// takeWriteErr returns a write failure once, for logging.
func (tl *timeline) takeWriteErr() error {
	if tl.err == nil || tl.errReported {
		return nil
	}
	tl.errReported = true
	return tl.err
}

// finish pads the shorter track with silence, writes everything out and
// returns the size of the data chunk.
func (tl *timeline) finish() (dataBytes int64, err error) {
	end := max(tl.position(leftSide), tl.position(rightSide))
	tl.padTo([2]int64{end, end})
	tl.writeOut()
	// A short write may have left a partial stereo frame; the header must
	// describe whole frames.
	return tl.dataBytes &^ (bytesPerFrame - 1), tl.err
}
