package recording

import (
	"bytes"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

const frame20ms = 20 * time.Millisecond

func TestStereoTonesWithJitter(t *testing.T) {
	rec, clock := newTestRecorder(t)
	// 2 s each side. The agent's packets arrive with up to 40 ms of jitter,
	// less than the allowance, so no silence may be inserted.
	left := toneFrames(leftSide, 440, 160, 100, frame20ms, nil)
	right := toneFrames(rightSide, 1000, 160, 100, frame20ms, func(k int) time.Duration {
		return time.Duration(k*37%40) * time.Millisecond
	})
	feed(rec, clock, left, right)
	closeRecorder(t, rec)

	w := readWAV(t, rec.Path())
	checkHeader(t, w)
	if got := dominant(w.left); got != 440 {
		t.Errorf("left channel dominant frequency = %v, want 440", got)
	}
	if got := dominant(w.right); got != 1000 {
		t.Errorf("right channel dominant frequency = %v, want 1000", got)
	}
	duration := float64(len(w.left)) / SampleRate
	if math.Abs(duration-2.0) > 0.05*2.0 {
		t.Errorf("duration = %.3f s, want 2 s ± 5%%", duration)
	}
	if gaps := silentBlocks(w.left, 0, 16000); len(gaps) > 0 {
		t.Errorf("left channel has silent 20 ms blocks at samples %v", gaps)
	}
	if gaps := silentBlocks(w.right, 0, 16000); len(gaps) > 0 {
		t.Errorf("jitter inserted silence in the right channel at samples %v", gaps)
	}
	if rec.Dropped() != 0 {
		t.Errorf("Dropped = %d, want 0", rec.Dropped())
	}
}

func TestLateSideHasLeadingSilence(t *testing.T) {
	rec, clock := newTestRecorder(t)
	left := toneFrames(leftSide, 440, 160, 100, frame20ms, nil)
	// The agent answers 1 s into the recording: its first frame (covering
	// 1.00-1.02 s) arrives at 1.02 s.
	right := toneFrames(rightSide, 1000, 160, 50, time.Second+frame20ms, nil)
	feed(rec, clock, left, right)
	closeRecorder(t, rec)

	w := readWAV(t, rec.Path())
	checkHeader(t, w)
	if got := firstLoud(w.left, 0); got != 0 {
		t.Errorf("left audio starts at sample %d, want 0", got)
	}
	if got := firstLoud(w.right, 0); math.Abs(float64(got-8000)) > 80 {
		t.Errorf("right audio starts at sample %d (%.3f s), want 8000 (1 s)", got, float64(got)/SampleRate)
	}
	if got := dominant(w.right[8000:]); got != 1000 {
		t.Errorf("right channel after 1 s: dominant %v, want 1000", got)
	}
	if duration := float64(len(w.left)) / SampleRate; math.Abs(duration-2.0) > 0.1 {
		t.Errorf("duration = %.3f s, want 2 s", duration)
	}
}

func TestGapLongerThanAllowanceIsSilence(t *testing.T) {
	rec, clock := newTestRecorder(t)
	// The caller talks 0-1 s, sends nothing 1-1.5 s (silence suppression),
	// then talks 1.5-2.5 s; the agent sends throughout.
	first := toneFrames(leftSide, 440, 160, 50, frame20ms, nil)
	second := toneFrames(leftSide, 440, 160, 50, 1500*time.Millisecond+frame20ms, nil)
	right := toneFrames(rightSide, 1000, 160, 125, frame20ms, nil)
	feed(rec, clock, first, second, right)
	closeRecorder(t, rec)

	w := readWAV(t, rec.Path())
	checkHeader(t, w)
	if got := silentBlocks(w.left, 0, 8000); len(got) > 0 {
		t.Errorf("left silent during its first talk spurt at %v", got)
	}
	if got := firstLoud(w.left, 8000); math.Abs(float64(got-12000)) > 80 {
		t.Errorf("left resumes at sample %d (%.3f s), want 12000 (1.5 s)", got, float64(got)/SampleRate)
	}
	if got := silentBlocks(w.left, 8000, 12000); len(got) < 24 {
		t.Errorf("only %d silent 20 ms blocks in the 0.5 s gap, want 25", len(got))
	}
	if got := silentBlocks(w.right, 0, 20000); len(got) > 0 {
		t.Errorf("right channel has silent blocks at %v", got)
	}
	if duration := float64(len(w.left)) / SampleRate; math.Abs(duration-2.5) > 0.05*2.5 {
		t.Errorf("duration = %.3f s, want 2.5 s ± 5%%", duration)
	}
}

func TestLongFrameIsSplitWithoutLoss(t *testing.T) {
	rec, clock := newTestRecorder(t)
	frame := toneFrames(leftSide, 440, 1000, 1, 125*time.Millisecond, nil)
	feed(rec, clock, frame)
	closeRecorder(t, rec)

	w := readWAV(t, rec.Path())
	checkHeader(t, w)
	if len(w.left) != 1000 {
		t.Fatalf("recorded %d samples, want 1000", len(w.left))
	}
	for i, want := range frame[0].pcm {
		if w.left[i] != want || w.right[i] != 0 {
			t.Fatalf("sample %d = (%d, %d), want (%d, 0)", i, w.left[i], w.right[i], want)
		}
	}
}

func TestFloodIsDroppedNotBuffered(t *testing.T) {
	rec, clock := newTestRecorder(t)
	// 250 frames (5 s of audio) arriving within 25 ms: a side may run at
	// most 1 s ahead of real time, the rest is dropped.
	flood := toneFrames(leftSide, 440, 160, 250, 0, nil)
	for k := range flood {
		flood[k].arrival = time.Duration(k) * 100 * time.Microsecond
	}
	feed(rec, clock, flood)
	closeRecorder(t, rec)

	w := readWAV(t, rec.Path())
	if len(w.left) > SampleRate+2*160 {
		t.Errorf("recorded %d samples from a flood, want at most about 1 s (%d)", len(w.left), SampleRate)
	}
	if want := uint64(250 - (SampleRate+2*160)/160); rec.Dropped() < want {
		t.Errorf("Dropped = %d, want at least %d", rec.Dropped(), want)
	}
}

// stalledWriter blocks every write until release is closed, like a disk
// that has stopped responding.
type stalledWriter struct {
	w       io.Writer
	release chan struct{}
}

func (s *stalledWriter) Write(p []byte) (int, error) {
	<-s.release
	return s.w.Write(p)
}

func TestDroppedWhenWriterStalled(t *testing.T) {
	clock := newFakeClock()
	stall := &stalledWriter{release: make(chan struct{})}
	path := filepath.Join(t.TempDir(), "stalled.wav")
	rec, err := create(path, quietLogger(), options{
		now:      clock.now,
		wrapSink: func(w io.Writer) io.Writer { stall.w = w; return stall },
	})
	if err != nil {
		t.Fatal(err)
	}
	const perSide = 400
	// WriteAudio must return even though the writer is stuck; a block here
	// would hang the test.
	feed(rec, clock,
		toneFrames(leftSide, 440, 160, perSide, frame20ms, nil),
		toneFrames(rightSide, 1000, 160, perSide, frame20ms, nil))

	// Before the first write stalls, the writer can take about one output
	// buffer of frames; then the queue fills. Everything else was dropped.
	framesBeforeStall := 2 * (outBufferBytes/bytesPerFrame/160 + 2)
	minDropped := uint64(2*perSide - defaultQueueFrames - framesBeforeStall)
	maxDropped := uint64(2*perSide - defaultQueueFrames)
	if got := rec.Dropped(); got < minDropped || got > maxDropped {
		t.Errorf("Dropped = %d while stalled, want %d..%d", got, minDropped, maxDropped)
	}
	close(stall.release)
	closeRecorder(t, rec)
	checkHeader(t, readWAV(t, path))
}

func TestCloseIsIdempotentAndLateFramesAreIgnored(t *testing.T) {
	rec, clock := newTestRecorder(t)
	feed(rec, clock, toneFrames(leftSide, 440, 160, 10, frame20ms, nil))
	closeRecorder(t, rec)
	before, err := os.ReadFile(rec.Path())
	if err != nil {
		t.Fatal(err)
	}
	closeRecorder(t, rec)
	rec.Left().WriteAudio(make([]int16, 160)) // must not panic or write
	after, err := os.ReadFile(rec.Path())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("file changed after Close")
	}
	if len(before) != 44+10*160*4 {
		t.Errorf("file size %d, want %d", len(before), 44+10*160*4)
	}
}

func TestCreateNeverOverwrites(t *testing.T) {
	rec, _ := newTestRecorder(t)
	closeRecorder(t, rec)
	if again, err := Create(rec.Path(), quietLogger()); err == nil {
		again.Close()
		t.Fatal("Create overwrote an existing recording")
	}
}

func TestEmptyRecordingIsValid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "empty.wav")
	rec, err := Create(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	closeRecorder(t, rec)
	w := readWAV(t, path)
	checkHeader(t, w)
	if len(w.left) != 0 {
		t.Errorf("empty recording has %d samples", len(w.left))
	}
}

// BenchmarkWriteAudio is the per-packet cost on an RTP reader goroutine:
// both sides at 20 ms per frame, the real writer goroutine writing to disk.
// The timer stops now and then to let the writer catch up, so the figure is
// the accepting path, not the (cheaper) dropping one.
func BenchmarkWriteAudio(b *testing.B) {
	clock := newFakeClock()
	rec, err := create(filepath.Join(b.TempDir(), "bench.wav"), quietLogger(), options{now: clock.now})
	if err != nil {
		b.Fatal(err)
	}
	defer rec.Close()
	pcm := make([]int16, 160)
	for i := range pcm {
		pcm[i] = int16(i * 100)
	}
	left, right := rec.Left(), rec.Right()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		clock.set(time.Duration(i/2+1) * frame20ms)
		if i&1 == 0 {
			left.WriteAudio(pcm)
		} else {
			right.WriteAudio(pcm)
		}
		i++
		if i%(defaultQueueFrames/2) == 0 {
			b.StopTimer()
			for len(rec.frames) > 0 {
				runtime.Gosched()
			}
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(rec.Dropped())/float64(i), "dropped/op")
}

// BenchmarkTimelinePlace is the writer goroutine's cost per frame: placing,
// interleaving and buffering (sink discards).
func BenchmarkTimelinePlace(b *testing.B) {
	tl := newTimeline(io.Discard)
	pcm := make([]int16, 160)
	b.ReportAllocs()
	k := 0
	for b.Loop() {
		side := k & 1
		arrival := time.Duration(k/2+1) * frame20ms
		tl.place(side, pcm, arrival)
		k++
	}
}

// TestSilentSideDoesNotHoldBack: with only the caller sending (agent not yet
// answered), audio still reaches the file during the call instead of piling
// up in memory until Close.
func TestSilentSideDoesNotHoldBack(t *testing.T) {
	var file bytes.Buffer
	tl := newTimeline(&file)
	for _, e := range toneFrames(leftSide, 440, 160, 150, frame20ms, nil) { // 3 s
		tl.place(e.side, e.pcm, e.arrival)
	}
	tl.writeOut()
	written := file.Len() / bytesPerFrame
	if want := 3*SampleRate - int(allowanceSamples) - 160; written < want {
		t.Errorf("%d samples written during the call, want at least %d", written, want)
	}
	if held := len(tl.tracks[leftSide].pending); held > int(allowanceSamples)+160 {
		t.Errorf("%d samples held in memory for the caller, want at most %d", held, allowanceSamples+160)
	}
	if got := dominant(readLeft(file.Bytes())); got != 440 {
		t.Errorf("left dominant = %v, want 440", got)
	}
}

func readLeft(interleaved []byte) []int16 {
	left := make([]int16, 0, len(interleaved)/bytesPerFrame)
	for i := 0; i+bytesPerFrame <= len(interleaved); i += bytesPerFrame {
		left = append(left, int16(uint16(interleaved[i])|uint16(interleaved[i+1])<<8))
	}
	return left
}
