package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/hotline-pbx/hotline/media/wav"
)

// wavFile builds a RIFF/WAVE file with one fmt and one data chunk.
func wavFile(tag, channels uint16, rate uint32, bits uint16, data []byte) []byte {
	return wavFileExt(tag, channels, rate, bits, data, nil)
}

// wavFileExt is wavFile with ext appended to the 16 bytes of the fmt chunk.
func wavFileExt(tag, channels uint16, rate uint32, bits uint16, data, ext []byte) []byte {
	var b bytes.Buffer
	le := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("RIFF")
	le(uint32(4 + 8 + 16 + len(ext) + 8 + len(data)))
	b.WriteString("WAVEfmt ")
	le(uint32(16 + len(ext)))
	le(tag)
	le(channels)
	le(rate)
	le(rate * uint32(channels) * uint32(bits) / 8)
	le(channels * bits / 8)
	le(bits)
	b.Write(ext)
	b.WriteString("data")
	le(uint32(len(data)))
	b.Write(data)
	return b.Bytes()
}

func pcmBytes(pcm []int16) []byte {
	out := make([]byte, 2*len(pcm))
	for i, s := range pcm {
		binary.LittleEndian.PutUint16(out[2*i:], uint16(s))
	}
	return out
}

func TestLoadWAVPCM(t *testing.T) {
	tone := Tone(440, 100*time.Millisecond, 0.5)
	p, err := LoadWAV("tone.wav", bytes.NewReader(wavFile(1, 1, 8000, 16, pcmBytes(tone))))
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != "tone.wav" || p.Duration() != 100*time.Millisecond || p.Samples() != 800 {
		t.Fatalf("got %q %v %d samples, want tone.wav 100ms 800", p.Name(), p.Duration(), p.Samples())
	}
	for _, c := range []Codec{PCMU, PCMA} {
		pcm := make([]int16, p.Samples())
		DecodeFrame(c, pcm, p.encoded(c))
		if got := DominantFrequency(pcm, 440, 1000); got != 440 {
			t.Errorf("%s: dominant %v Hz, want 440", c, got)
		}
	}
}

func TestLoadWAVG711KeepsOriginalBytes(t *testing.T) {
	alaw := make([]byte, 160)
	EncodeFrame(PCMA, alaw, Tone(1000, 20*time.Millisecond, 0.3))
	p, err := LoadWAV("a.wav", bytes.NewReader(wavFile(6, 1, 8000, 8, alaw)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.encoded(PCMA), alaw) {
		t.Error("A-law bytes changed on load")
	}
	want := make([]byte, 160)
	TranscodeFrame(PCMA, PCMU, want, alaw)
	if !bytes.Equal(p.encoded(PCMU), want) {
		t.Error("µ-law version is not the direct transcode of the A-law bytes")
	}
}

func TestLoadWAVRejectsWithWhatWasFound(t *testing.T) {
	const expected = "expected 8/16-bit PCM, µ-law or A-law, mono or stereo, 8000-48000 Hz"
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"hifi", wavFile(1, 1, 96000, 24, make([]byte, 6)), "24-bit PCM mono at 96000 Hz is not supported; " + expected},
		{"surround", wavFile(1, 6, 48000, 16, make([]byte, 24)), "16-bit PCM 6 channels at 48000 Hz is not supported"},
		{"slow", wavFile(1, 1, 4000, 16, make([]byte, 8)), "16-bit PCM mono at 4000 Hz is not supported"},
		{"float", wavFile(3, 1, 8000, 32, make([]byte, 8)), "32-bit floating point mono at 8000 Hz is not supported"},
		{"wide-alaw", wavFile(6, 1, 8000, 16, make([]byte, 8)), "16-bit A-law mono at 8000 Hz is not supported"},
		{"adpcm", wavFile(0x11, 1, 8000, 4, make([]byte, 8)), "format tag 0x0011 mono at 8000 Hz is not supported"},
		{"odd-guid", extensibleWAV(1, 1, 8000, 16, make([]byte, 8), 0x42), "an unknown WAVE_FORMAT_EXTENSIBLE sub-format mono at 8000 Hz is not supported"},
		{"ext-float", extensibleWAV(3, 2, 48000, 32, make([]byte, 8), 0), "32-bit floating point stereo at 48000 Hz is not supported"},
		{"text", []byte("hello, world"), "not a RIFF/WAVE file; expected a WAV file"},
		{"nodata", wavFile(1, 1, 8000, 16, nil)[:36], `no "data" chunk`},
		{"nofmt", []byte("RIFF\x04\x00\x00\x00WAVE"), `no "fmt " chunk`},
		{"short-fmt", []byte("RIFF\x10\x00\x00\x00WAVEfmt \x04\x00\x00\x00\x01\x00\x01\x00"), `"fmt " chunk is 4 bytes`},
		{"short-ext", wavFile(0xFFFE, 1, 8000, 16, make([]byte, 8)), `"fmt " chunk of WAVE_FORMAT_EXTENSIBLE is 16 bytes, want 40`},
	}
	for _, tt := range tests {
		_, err := OpenPrompt(fstest.MapFS{tt.name + ".wav": {Data: tt.data}}, tt.name)
		want := fmt.Sprintf("prompt %q (%s.wav): %s", tt.name, tt.name, tt.want)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: error %v\nwant %s", tt.name, err, want)
		}
		_, err = LoadWAV(tt.name, bytes.NewReader(tt.data))
		if want := fmt.Sprintf("prompt %q: %s", tt.name, tt.want); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: LoadWAV error %v\nwant %s", tt.name, err, want)
		}
	}
	_, err := OpenPrompt(fstest.MapFS{}, "gone")
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), `prompt "gone" (gone.wav): `) {
		t.Errorf("missing file: %v, want a not-exist error naming the prompt and file", err)
	}
}

// Streaming writers put 0xFFFFFFFF in the data size; the samples present count.
func TestLoadWAVClampsOversizedDataChunk(t *testing.T) {
	data := wavFile(1, 1, 8000, 16, pcmBytes(make([]int16, 80)))
	binary.LittleEndian.PutUint32(data[40:], 0xFFFFFFFF)
	p, err := LoadWAV("stream.wav", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if p.Samples() != 80 {
		t.Errorf("samples = %d, want 80", p.Samples())
	}
}

// loadDemoPrompts loads every demo prompt and returns them with their
// file sizes, by file name.
func loadDemoPrompts(t *testing.T) (prompts map[string]*Prompt, sizes map[string]int) {
	t.Helper()
	const dir = "../config/demo/prompts"
	files, err := filepath.Glob(dir + "/*.wav")
	if err != nil || len(files) < 5 {
		t.Fatalf("demo prompts: %v, %d files", err, len(files))
	}
	prompts, sizes = map[string]*Prompt{}, map[string]int{}
	for _, f := range files {
		name := filepath.Base(f)
		p, err := OpenPrompt(os.DirFS(dir), strings.TrimSuffix(name, ".wav"))
		if err != nil {
			t.Fatal(err)
		}
		info, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		prompts[name], sizes[name] = p, int(info.Size())
	}
	return prompts, sizes
}

func TestLoadWAVDemoPrompts(t *testing.T) {
	prompts, sizes := loadDemoPrompts(t)
	for name, p := range prompts {
		if want := (sizes[name] - 44) / 2; p.Samples() != want {
			t.Errorf("%s: %d samples, want %d", name, p.Samples(), want)
		}
	}
}

func TestPromptFramePadsAndLoops(t *testing.T) {
	pcm := make([]int16, 250)
	for i := range pcm {
		pcm[i] = 1000
	}
	p := NewPrompt("p", pcm)
	scratch := make([]byte, 160)
	one := p.encoded(PCMU)[0]

	f := p.frame(PCMU, 160, 160, false, scratch)
	for i, b := range f {
		if want := map[bool]byte{true: one, false: ulawSilence}[i < 90]; b != want {
			t.Fatalf("padded frame[%d] = %#x, want %#x", i, b, want)
		}
	}
	f = p.frame(PCMU, 160, 160, true, scratch)
	for i, b := range f {
		if b != one {
			t.Fatalf("looped frame[%d] = %#x, want %#x (wrapped audio)", i, b, one)
		}
	}
	if f := p.frame(PCMA, 0, 160, false, scratch); &f[0] != &p.encoded(PCMA)[0] {
		t.Error("a whole frame should be a sub-slice of the prompt, not a copy")
	}
}

// FuzzLoadWAV: nothing panics, both codec versions have one length, and
// the header check `hotline check` runs (wav.DecodeHeader, Supported)
// accepts exactly the files that load.
func FuzzLoadWAV(f *testing.F) {
	f.Add(wavFile(1, 1, 8000, 16, pcmBytes(Tone(440, 10*time.Millisecond, 0.5))))
	f.Add(wavFile(7, 1, 8000, 8, []byte{1, 2, 3}))
	f.Add(wavFile(0xFFFE, 1, 8000, 16, []byte{1, 2, 3}))
	f.Add(extensibleWAV(1, 2, 44100, 16, make([]byte, 64), 0))
	f.Add(wavFile(1, 2, 48000, 8, make([]byte, 50)))
	f.Add(wavFile(6, 2, 22050, 8, make([]byte, 50)))
	f.Add([]byte("RIFF\xff\xff\xff\xffWAVEdata\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := LoadWAV("fuzz.wav", bytes.NewReader(data))
		if err == nil && len(p.encoded(PCMU)) != len(p.encoded(PCMA)) {
			t.Fatal("codec versions differ in length")
		}
		format, headerErr := wav.DecodeHeader(bytes.NewReader(data))
		if headerErr == nil {
			headerErr = format.Supported()
		}
		if (err == nil) != (headerErr == nil) {
			t.Fatalf("LoadWAV: %v, but the header check: %v", err, headerErr)
		}
	})
}
