package recording

import (
	"encoding/binary"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"testing"
	"time"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// fakeClock drives arrival stamps so tests need not sleep.
type fakeClock struct {
	base    time.Time
	elapsed atomic.Int64
}

func newFakeClock() *fakeClock {
	return &fakeClock{base: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) now() time.Time          { return c.base.Add(time.Duration(c.elapsed.Load())) }
func (c *fakeClock) set(since time.Duration) { c.elapsed.Store(int64(since)) }

// frameEvent is one frame received on one side at a given time after the
// recording started.
type frameEvent struct {
	side    int
	arrival time.Duration
	pcm     []int16
}

// toneFrames makes count frames of a cosine tone (phase continuous), the
// first arriving at firstArrival and then every frame duration plus jitter(k).
func toneFrames(side int, freq float64, frameSamples, count int, firstArrival time.Duration,
	jitter func(k int) time.Duration) []frameEvent {
	events := make([]frameEvent, count)
	frameDuration := time.Duration(frameSamples) * samplePeriod
	var last time.Duration
	for k := range count {
		pcm := make([]int16, frameSamples)
		for i := range pcm {
			n := float64(k*frameSamples + i)
			pcm[i] = int16(8000 * math.Cos(2*math.Pi*freq*n/SampleRate))
		}
		arrival := firstArrival + time.Duration(k)*frameDuration
		if jitter != nil {
			arrival += jitter(k)
		}
		arrival = max(arrival, last) // one reader goroutine: arrivals never go back
		last = arrival
		events[k] = frameEvent{side: side, arrival: arrival, pcm: pcm}
	}
	return events
}

// feed delivers events in arrival order, as two reader goroutines would.
func feed(rec *Recorder, clock *fakeClock, events ...[]frameEvent) {
	var all []frameEvent
	for _, e := range events {
		all = append(all, e...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].arrival < all[j].arrival })
	for _, e := range all {
		clock.set(e.arrival)
		channel := rec.Left()
		if e.side == rightSide {
			channel = rec.Right()
		}
		channel.WriteAudio(e.pcm)
	}
}

// newTestRecorder records to a temp file with a fake clock and a queue big
// enough that the test's burst of frames is never dropped.
func newTestRecorder(t *testing.T) (*Recorder, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	path := filepath.Join(t.TempDir(), "2025", "01", "call.wav")
	rec, err := create(path, quietLogger(), options{now: clock.now, queueFrames: 8192})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	return rec, clock
}

// wavFile is a recording read back by a reader independent of the writer.
type wavFile struct {
	audioFormat, channels, bitsPerSample, blockAlign int
	sampleRate, byteRate                             int
	riffSize, dataSize                               int64
	fileSize                                         int64
	left, right                                      []int16
}

func readWAV(t *testing.T, path string) wavFile {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) < 44 || string(raw[0:4]) != "RIFF" || string(raw[8:12]) != "WAVE" ||
		string(raw[12:16]) != "fmt " || string(raw[36:40]) != "data" {
		t.Fatalf("%s: not a canonical WAV file (header % x)", path, raw[:min(len(raw), 44)])
	}
	le := binary.LittleEndian
	w := wavFile{
		riffSize:      int64(le.Uint32(raw[4:])),
		audioFormat:   int(le.Uint16(raw[20:])),
		channels:      int(le.Uint16(raw[22:])),
		sampleRate:    int(le.Uint32(raw[24:])),
		byteRate:      int(le.Uint32(raw[28:])),
		blockAlign:    int(le.Uint16(raw[32:])),
		bitsPerSample: int(le.Uint16(raw[34:])),
		dataSize:      int64(le.Uint32(raw[40:])),
		fileSize:      int64(len(raw)),
	}
	data := raw[44:]
	for i := 0; i+4 <= len(data); i += 4 {
		w.left = append(w.left, int16(le.Uint16(data[i:])))
		w.right = append(w.right, int16(le.Uint16(data[i+2:])))
	}
	return w
}

// checkHeader asserts a valid 8 kHz 16-bit stereo PCM header whose sizes
// match the file length.
func checkHeader(t *testing.T, w wavFile) {
	t.Helper()
	if w.audioFormat != 1 || w.channels != 2 || w.sampleRate != 8000 || w.bitsPerSample != 16 ||
		w.blockAlign != 4 || w.byteRate != 32000 {
		t.Errorf("format = %+v, want PCM stereo 8000 Hz 16-bit", w)
	}
	if w.riffSize != w.fileSize-8 {
		t.Errorf("RIFF size %d, want file size - 8 = %d", w.riffSize, w.fileSize-8)
	}
	if w.dataSize != w.fileSize-44 {
		t.Errorf("data size %d, want file size - 44 = %d", w.dataSize, w.fileSize-44)
	}
}

// goertzel returns the power of freq in samples (8 kHz).
func goertzel(samples []int16, freq float64) float64 {
	coeff := 2 * math.Cos(2*math.Pi*freq/SampleRate)
	var s1, s2 float64
	for _, x := range samples {
		s0 := float64(x) + coeff*s1 - s2
		s2, s1 = s1, s0
	}
	return s1*s1 + s2*s2 - coeff*s1*s2
}

// dominant says which of 440 Hz and 1000 Hz is stronger, or 0 if neither is
// at least ten times stronger than the other.
func dominant(samples []int16) float64 {
	p440, p1000 := goertzel(samples, 440), goertzel(samples, 1000)
	switch {
	case p440 > 10*p1000:
		return 440
	case p1000 > 10*p440:
		return 1000
	}
	return 0
}

const loud = 1000 // tones are recorded at amplitude 8000; silence is 0

// firstLoud returns the index of the first sample at or after from whose
// magnitude exceeds loud, or -1.
func firstLoud(samples []int16, from int) int {
	for i := from; i < len(samples); i++ {
		if samples[i] > loud || samples[i] < -loud {
			return i
		}
	}
	return -1
}

// silentBlocks lists the starts of 20 ms blocks within [from, to) holding
// no loud sample.
func silentBlocks(samples []int16, from, to int) []int {
	var silent []int
	for start := from; start+160 <= to; start += 160 {
		if firstLoud(samples[start:start+160], 0) < 0 {
			silent = append(silent, start)
		}
	}
	return silent
}

func closeRecorder(t *testing.T, rec *Recorder) {
	t.Helper()
	if err := rec.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}
