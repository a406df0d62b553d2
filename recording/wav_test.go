package recording

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// crashedRecording is what a recording looks like after kill -9: the header
// from Create (zero sizes) followed by audio, possibly with a torn frame.
func crashedRecording(frames int, tornBytes int) []byte {
	header := wavHeader(0)
	file := append([]byte(nil), header[:]...)
	for i := range frames {
		file = binary.LittleEndian.AppendUint16(file, uint16(i))
		file = binary.LittleEndian.AppendUint16(file, uint16(-i))
	}
	return append(file, make([]byte, tornBytes)...)
}

func writeTemp(t *testing.T, name string, content []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRepairFixesZeroSizes(t *testing.T) {
	path := writeTemp(t, "crashed.wav", crashedRecording(1000, 3))
	if err := Repair(path); err != nil {
		t.Fatalf("Repair: %v", err)
	}
	w := readWAV(t, path)
	checkHeader(t, w)
	if w.dataSize != 4000 || w.riffSize != 4036 || w.fileSize != 4044 {
		t.Errorf("after repair: data %d, RIFF %d, file %d; want 4000, 4036, 4044 (torn frame cut)",
			w.dataSize, w.riffSize, w.fileSize)
	}
	if w.left[999] != 999 || w.right[999] != -999 {
		t.Errorf("last frame = (%d, %d), want (999, -999)", w.left[999], w.right[999])
	}
}

func TestRepairLeavesGoodRecordingUnchanged(t *testing.T) {
	rec, _ := newTestRecorder(t)
	for _, f := range tone(440, 20) {
		rec.Left().WriteAudio(f)
		rec.Right().WriteAudio(f)
	}
	closeRecorder(t, rec)
	before, err := os.ReadFile(rec.Path())
	if err != nil {
		t.Fatal(err)
	}
	if err := Repair(rec.Path()); err != nil {
		t.Fatalf("Repair: %v", err)
	}
	after, err := os.ReadFile(rec.Path())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("Repair changed a good recording")
	}
}

func TestRepairSkipsOtherChunks(t *testing.T) {
	// RIFF, fmt, a LIST chunk of odd size (padded), then data with zero size.
	header := wavHeader(0)
	file := append([]byte(nil), header[:36]...)
	file = append(file, "LIST"...)
	file = binary.LittleEndian.AppendUint32(file, 5)
	file = append(file, "INFOx"...)
	file = append(file, 0) // pad byte
	file = append(file, "data"...)
	file = binary.LittleEndian.AppendUint32(file, 0)
	dataOffset := len(file)
	file = append(file, make([]byte, 400)...)
	path := writeTemp(t, "list.wav", file)

	if err := Repair(path); err != nil {
		t.Fatalf("Repair: %v", err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := binary.LittleEndian.Uint32(raw[dataOffset-4:]); got != 400 {
		t.Errorf("data size = %d, want 400", got)
	}
	if got := binary.LittleEndian.Uint32(raw[4:]); int(got) != len(raw)-8 {
		t.Errorf("RIFF size = %d, want %d", got, len(raw)-8)
	}
}

func TestRepairRejectsNonWAV(t *testing.T) {
	for name, content := range map[string][]byte{
		"empty":   nil,
		"text":    []byte("hello, this is not audio at all"),
		"no data": wavHeaderWithoutData(),
	} {
		path := writeTemp(t, "bad.wav", content)
		if err := Repair(path); err == nil {
			t.Errorf("%s: Repair succeeded, want an error", name)
		}
		after, _ := os.ReadFile(path)
		if !bytes.Equal(after, content) {
			t.Errorf("%s: Repair modified a file it rejected", name)
		}
	}
	if err := Repair(filepath.Join(t.TempDir(), "missing.wav")); err == nil {
		t.Error("Repair of a missing file succeeded")
	}
}

func wavHeaderWithoutData() []byte {
	h := wavHeader(0)
	return append([]byte(nil), h[:36]...)
}

// FuzzRepair: Repair reads files left on disk; whatever they hold it must
// not panic, and when it succeeds the sizes must describe the file.
func FuzzRepair(f *testing.F) {
	f.Add(crashedRecording(10, 0))
	f.Add(crashedRecording(3, 2))
	f.Add(wavHeaderWithoutData())
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVEdata\xff\xff\xff\xff"))
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x02\x00\x40\x1f\x00\x00\x00\x7d\x00\x00\x00\x00\x10\x00data"))
	path := filepath.Join(f.TempDir(), "fuzz.wav")
	f.Fuzz(func(t *testing.T, content []byte) {
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := Repair(path); err != nil {
			return
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := binary.LittleEndian.Uint32(raw[4:]); int(got) != len(raw)-8 {
			t.Errorf("RIFF size = %d, file is %d bytes", got, len(raw))
		}
		dataOffset, _, err := dataChunk(bytes.NewReader(raw), int64(len(raw)))
		if err != nil {
			t.Fatalf("repaired file has no data chunk: %v", err)
		}
		if got := binary.LittleEndian.Uint32(raw[dataOffset-4:]); int64(got) > int64(len(raw))-dataOffset {
			t.Errorf("data size %d exceeds the %d bytes after the header", got, int64(len(raw))-dataOffset)
		}
	})
}
