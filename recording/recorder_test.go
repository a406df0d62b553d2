package recording

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Both sides, frame by frame as the shards feed them: the caller's 440 Hz on
// the left, the agent's 1000 Hz on the right, 2 s exactly.
func TestStereoTones(t *testing.T) {
	rec, _ := newTestRecorder(t)
	left, right := tone(440, 100), tone(1000, 100)
	for i := range left {
		rec.Left().WriteAudio(left[i])
		rec.Right().WriteAudio(right[i])
		if i%7 == 0 {
			time.Sleep(time.Millisecond) // let the sink write part of it meanwhile
		}
	}
	closeRecorder(t, rec)
	w := readWAV(t, rec.Path())
	checkHeader(t, w)
	if got := dominant(w.left); got != 440 {
		t.Errorf("left channel %v Hz, want 440", got)
	}
	if got := dominant(w.right); got != 1000 {
		t.Errorf("right channel %v Hz, want 1000", got)
	}
	if len(w.left) != 16000 {
		t.Errorf("%d stereo samples, want 16000 (2 s)", len(w.left))
	}
	if gaps := silentBlocks(w.left, 0, len(w.left)); len(gaps) > 0 {
		t.Errorf("left channel has silent 20 ms blocks at %v", gaps)
	}
	if gaps := silentBlocks(w.right, 0, len(w.right)); len(gaps) > 0 {
		t.Errorf("right channel has silent 20 ms blocks at %v", gaps)
	}
	if rec.Dropped() != 0 {
		t.Errorf("Dropped = %d, want 0", rec.Dropped())
	}
}

// A side that stops (its leg hung up first) does not hold the other back:
// more than a second behind, it is padded with silence.
func TestSilentSideDoesNotHoldBack(t *testing.T) {
	rec, _ := newTestRecorder(t)
	left := tone(440, 200)
	right := tone(1000, 50) // the agent's leg stops after 1 s
	for i := range left {
		rec.Left().WriteAudio(left[i])
		if i < len(right) {
			rec.Right().WriteAudio(right[i])
		}
	}
	time.Sleep(50 * time.Millisecond) // several flushes
	st, err := os.Stat(rec.Path())
	if err != nil {
		t.Fatal(err)
	}
	// 4 s of left, the right padded up to a second behind: 3 s written.
	if written := (st.Size() - wavHeaderSize) / 4; written < 3*SampleRate {
		t.Errorf("%d samples written while one side was silent, want at least %d", written, 3*SampleRate)
	}
	closeRecorder(t, rec)
	w := readWAV(t, rec.Path())
	if len(w.left) != 32000 {
		t.Errorf("%d samples, want 32000 (4 s)", len(w.left))
	}
	if got := dominant(w.right[:8000]); got != 1000 {
		t.Errorf("right's first second %v Hz, want 1000", got)
	}
	if got := firstLoud(w.right, 8000); got >= 0 {
		t.Errorf("right channel loud at %d after its side stopped", got)
	}
}

// stalledDisk blocks writes until released, as a disk that stopped.
type stalledDisk struct {
	w       io.Writer
	stuck   chan struct{} // a write has begun and hangs
	release chan struct{}
}

func (s *stalledDisk) Write(p []byte) (int, error) {
	select {
	case s.stuck <- struct{}{}:
	default:
	}
	<-s.release
	return s.w.Write(p)
}

// A disk that stops drops recording frames once 5 s are held, counted;
// WriteAudio never waits for it.
func TestSlowDiskDropsFramesNotCalls(t *testing.T) {
	disk := &stalledDisk{stuck: make(chan struct{}, 1), release: make(chan struct{})}
	sink := newSink(quietLogger(), 5*time.Millisecond)
	sink.wrap = func(w io.Writer) io.Writer { disk.w = w; return disk }
	rec, err := sink.Create(filepath.Join(t.TempDir(), "slow.wav"))
	if err != nil {
		t.Fatal(err)
	}
	frames := tone(440, 401) // 8 s per side, more than the 5 s a recording may hold
	rec.Left().WriteAudio(frames[0])
	rec.Right().WriteAudio(frames[0])
	<-disk.stuck // the sink hangs writing the first frame
	for _, f := range frames[1:] {
		rec.Left().WriteAudio(f)
		rec.Right().WriteAudio(f)
	}
	if rec.Dropped() == 0 {
		t.Error("8 s of audio against a stalled disk: nothing dropped")
	}
	close(disk.release)
	closeRecorder(t, rec)
	sink.Close()
}

func TestCloseIsIdempotentAndLateFramesAreIgnored(t *testing.T) {
	rec, _ := newTestRecorder(t)
	for _, f := range tone(440, 10) {
		rec.Left().WriteAudio(f)
		rec.Right().WriteAudio(f)
	}
	closeRecorder(t, rec)
	rec.Left().WriteAudio(tone(440, 1)[0])
	if err := rec.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	w := readWAV(t, rec.Path())
	checkHeader(t, w)
	if len(w.left) != 1600 {
		t.Errorf("%d samples, want 1600", len(w.left))
	}
}

func TestCreateNeverOverwrites(t *testing.T) {
	rec, sink := newTestRecorder(t)
	if _, err := sink.Create(rec.Path()); err == nil {
		t.Error("Create over an existing recording succeeded")
	}
}

func TestEmptyRecordingIsValid(t *testing.T) {
	rec, _ := newTestRecorder(t)
	closeRecorder(t, rec)
	w := readWAV(t, rec.Path())
	checkHeader(t, w)
	if len(w.left) != 0 {
		t.Errorf("%d samples in an empty recording", len(w.left))
	}
}

// Closing the sink closes what is still open.
func TestSinkCloseClosesRecordings(t *testing.T) {
	rec, sink := newTestRecorder(t)
	for _, f := range tone(1000, 5) {
		rec.Left().WriteAudio(f)
		rec.Right().WriteAudio(f)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	w := readWAV(t, rec.Path())
	checkHeader(t, w)
	if len(w.left) != 800 {
		t.Errorf("%d samples, want 800", len(w.left))
	}
}

// BenchmarkWriteAudio is one 20 ms frame per side, with the sink's write
// every 12 frames (its 250 ms) included: the whole cost of recording.
func BenchmarkWriteAudio(b *testing.B) {
	sink := newSink(quietLogger(), 10*time.Millisecond)
	defer sink.Close()
	rec, err := sink.Create(filepath.Join(b.TempDir(), "bench.wav"))
	if err != nil {
		b.Fatal(err)
	}
	frame := tone(440, 1)[0]
	b.ReportAllocs()
	for i := range b.N {
		rec.Left().WriteAudio(frame)
		rec.Right().WriteAudio(frame)
		if i%12 == 11 {
			rec.flush(false)
		}
	}
	b.StopTimer()
	if rec.Dropped() != 0 {
		b.Fatalf("%d frames dropped", rec.Dropped())
	}
	rec.Close()
}
