package recording

import (
	"encoding/binary"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hotline-pbx/hotline/media"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// tone is count 20 ms frames of a tone at amplitude 0.25.
func tone(hz float64, count int) [][]int16 {
	pcm := media.Tone(hz, time.Duration(count)*20*time.Millisecond, 0.25)
	frames := make([][]int16, count)
	for i := range frames {
		frames[i] = pcm[i*160 : (i+1)*160]
	}
	return frames
}

// newTestRecorder is a recording in a temporary directory on a sink that
// flushes every 10 ms.
func newTestRecorder(t *testing.T) (*Recorder, *Sink) {
	t.Helper()
	sink := newSink(quietLogger(), 10*time.Millisecond)
	t.Cleanup(func() { sink.Close() })
	rec, err := sink.Create(filepath.Join(t.TempDir(), "2026", "11", "25", "call.wav"))
	if err != nil {
		t.Fatal(err)
	}
	return rec, sink
}

// dominant is the strongest of 440 and 1000 Hz, 0 for silence.
func dominant(samples []int16) float64 { return media.DominantFrequency(samples, 440, 1000) }

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

const loud = 1000 // tones are recorded at amplitude 8192; silence is 0

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
