package media

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"testing"
)

// Prompts recorded in other formats are converted to 8 kHz at load; what a
// caller hears is checked by frequency and level after G.711 encoding.

// extensibleWAV is a WAVE_FORMAT_EXTENSIBLE file whose sub-format GUID
// starts with tag; a non-zero spoil changes a byte of its standard tail.
func extensibleWAV(tag, channels uint16, rate uint32, bits uint16, data []byte, spoil byte) []byte {
	ext := binary.LittleEndian.AppendUint16(nil, 22)           // cbSize
	ext = binary.LittleEndian.AppendUint16(ext, bits)          // valid bits
	ext = binary.LittleEndian.AppendUint32(ext, 1<<channels-1) // channel mask
	ext = binary.LittleEndian.AppendUint16(ext, tag)           // the GUID: tag, then the standard tail
	ext = append(ext, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, spoil^0x71)
	return wavFileExt(0xFFFE, channels, rate, bits, data, ext)
}

// toneAt is seconds of a sine at rate Hz, full scale ±1.
func toneAt(rate int, freq, seconds, amplitude float64) []float64 {
	out := make([]float64, int(float64(rate)*seconds))
	for i := range out {
		out[i] = amplitude * math.Sin(2*math.Pi*freq*float64(i)/float64(rate))
	}
	return out
}

// sampleFormat encodes one sample of full scale ±1 for a WAV data chunk.
type sampleFormat struct {
	name string
	tag  uint16
	bits uint16
	put  func(*bytes.Buffer, float64)
}

var sampleFormats = []sampleFormat{
	{"16-bit", 1, 16, func(b *bytes.Buffer, x float64) {
		_ = binary.Write(b, binary.LittleEndian, toInt16(float32(x)))
	}},
	{"8-bit", 1, 8, func(b *bytes.Buffer, x float64) { b.WriteByte(byte(math.Round(x*127) + 128)) }},
	{"µ-law", 7, 8, func(b *bytes.Buffer, x float64) {
		var enc [1]byte
		EncodeFrame(PCMU, enc[:], []int16{toInt16(float32(x))})
		b.WriteByte(enc[0])
	}},
	{"A-law", 6, 8, func(b *bytes.Buffer, x float64) {
		var enc [1]byte
		EncodeFrame(PCMA, enc[:], []int16{toInt16(float32(x))})
		b.WriteByte(enc[0])
	}},
}

// encodeSamples interleaves the channels (all of one length) in format sf.
func encodeSamples(sf sampleFormat, channels ...[]float64) []byte {
	var b bytes.Buffer
	for i := range channels[0] {
		for _, ch := range channels {
			sf.put(&b, ch[i])
		}
	}
	return b.Bytes()
}

// heardPCM is the prompt as a caller on codec c hears it.
func heardPCM(p *Prompt, c Codec) []int16 {
	pcm := make([]int16, p.Samples())
	DecodeFrame(c, pcm, p.encoded(c))
	return pcm
}

// dB is the ratio of two Goertzel powers in decibels.
func dB(power, reference float64) float64 { return 10 * math.Log10(power/reference) }

// A 1 kHz tone keeps its frequency, its level (within 1 dB) and its length
// from every supported rate, sample format and channel count.
func TestLoadWAVConvertsToneFromEveryFormat(t *testing.T) {
	const amplitude, seconds = 0.5, 0.5
	for _, rate := range []int{8000, 11025, 16000, 22050, 32000, 44100, 48000} {
		for _, sf := range sampleFormats {
			for _, channels := range []uint16{1, 2} {
				name := fmt.Sprintf("%s %d ch %d Hz", sf.name, channels, rate)
				tone := toneAt(rate, 1000, seconds, amplitude)
				chans := [][]float64{tone}
				if channels == 2 {
					chans = append(chans, tone)
				}
				data := encodeSamples(sf, chans...)
				files := map[string][]byte{"plain": wavFile(sf.tag, channels, uint32(rate), sf.bits, data)}
				if rate == 48000 || rate == 8000 {
					files["extensible"] = extensibleWAV(sf.tag, channels, uint32(rate), sf.bits, data, 0)
				}
				for kind, file := range files {
					p, err := LoadWAV(name, bytes.NewReader(file))
					if err != nil {
						t.Errorf("%s (%s): %v", name, kind, err)
						continue
					}
					if want := int(seconds * SampleRate); p.Samples() < want-1 || p.Samples() > want {
						t.Errorf("%s (%s): %d samples, want %d", name, kind, p.Samples(), want)
					}
					for _, c := range []Codec{PCMU, PCMA} {
						pcm := heardPCM(p, c)
						if f := DominantFrequency(pcm, 500, 900, 1000, 1100, 2000); f != 1000 {
							t.Errorf("%s (%s) as %s: dominant %v Hz, want 1000", name, kind, c, f)
						}
						if level := dB(Goertzel(pcm, 1000), amplitude*amplitude); math.Abs(level) > 1 {
							t.Errorf("%s (%s) as %s: 1 kHz at %+.2f dB, want within 1 dB of the original", name, kind, c, level)
						}
					}
				}
			}
		}
	}
}

// The low-pass before resampling: a 3.5 kHz tone at 48 kHz passes, a 6 kHz
// one (which plain decimation would fold onto 2 kHz) is gone.
func TestLoadWAVResamplingFiltersWhatWouldAlias(t *testing.T) {
	const amplitude = 0.5
	ref := amplitude * amplitude
	for _, rate := range []int{48000, 44100, 32000, 22050, 16000} {
		load := func(freq float64) []int16 {
			tone := toneAt(rate, freq, 0.5, amplitude)
			p, err := LoadWAV("t", bytes.NewReader(wavFile(1, 1, uint32(rate), 16, encodeSamples(sampleFormats[0], tone))))
			if err != nil {
				t.Fatal(err)
			}
			pcm := make([]int16, p.Samples())
			DecodeFrame(PCMA, pcm, p.encoded(PCMA))
			return pcm
		}
		if level := dB(Goertzel(load(3500), 3500), ref); math.Abs(level) > 1 {
			t.Errorf("%d Hz: 3.5 kHz comes out at %+.2f dB, want within 1 dB", rate, level)
		}
		if rate/2 <= 6000 {
			continue // the file cannot hold 6 kHz
		}
		alias := 8000 - 6000.0 // where 6 kHz folds at 8 kHz
		pcm := load(6000)
		if level := dB(Goertzel(pcm, alias), ref); level > -30 {
			t.Errorf("%d Hz: 6 kHz folds to %v Hz at %+.1f dB, want at most -30 dB", rate, alias, level)
		} else {
			t.Logf("%d Hz: 6 kHz tone folds to 2 kHz at %.1f dB", rate, level)
		}
		var energy float64
		for _, s := range pcm {
			energy += float64(s) * float64(s)
		}
		if level := dB(energy/float64(len(pcm))/(32768*32768), ref/2); level > -30 {
			t.Errorf("%d Hz: 6 kHz leaves %+.1f dB of energy, want at most -30 dB", rate, level)
		}
	}
}

// Stereo is mixed down: one channel's tone with a silent other comes out
// at half the amplitude, and opposite channels cancel.
func TestLoadWAVMixesStereoDown(t *testing.T) {
	tone := toneAt(16000, 1000, 0.5, 0.5)
	silent := make([]float64, len(tone))
	inverted := make([]float64, len(tone))
	for i, x := range tone {
		inverted[i] = -x
	}
	p, err := LoadWAV("left", bytes.NewReader(wavFile(1, 2, 16000, 16, encodeSamples(sampleFormats[0], tone, silent))))
	if err != nil {
		t.Fatal(err)
	}
	if level := dB(Goertzel(heardPCM(p, PCMU), 1000), 0.25*0.25); math.Abs(level) > 1 {
		t.Errorf("left only: 1 kHz at %+.2f dB of half amplitude, want within 1 dB", level)
	}
	p, err = LoadWAV("cancel", bytes.NewReader(wavFile(1, 2, 16000, 16, encodeSamples(sampleFormats[0], tone, inverted))))
	if err != nil {
		t.Fatal(err)
	}
	if power := Goertzel(heardPCM(p, PCMU), 1000); power > 1e-6 {
		t.Errorf("opposite channels: 1 kHz power %.2g, want silence", power)
	}
}

func BenchmarkLoadWAV(b *testing.B) {
	for _, tc := range []struct {
		rate     uint32
		channels uint16
	}{{8000, 1}, {16000, 1}, {44100, 2}, {48000, 2}} {
		tone := toneAt(int(tc.rate), 1000, 10, 0.5)
		chans := [][]float64{tone, tone}[:tc.channels]
		file := wavFile(1, tc.channels, tc.rate, 16, encodeSamples(sampleFormats[0], chans...))
		b.Run(fmt.Sprintf("10s-%dHz-%dch", tc.rate, tc.channels), func(b *testing.B) {
			b.SetBytes(int64(len(file)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := LoadWAV("bench", bytes.NewReader(file)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
