package media

import (
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/hotline-pbx/hotline/media/wav"
)

// Prompt is audio ready to play: encoded once to PCMU and PCMA at load, then
// shared read-only by every call (a frame is a sub-slice, nothing is copied
// except the padded last frame).
type Prompt struct {
	name string
	pcmu []byte
	pcma []byte
}

// NewPrompt encodes 8 kHz linear PCM into a prompt.
func NewPrompt(name string, pcm []int16) *Prompt {
	p := &Prompt{name: name, pcmu: make([]byte, len(pcm)), pcma: make([]byte, len(pcm))}
	EncodeFrame(PCMU, p.pcmu, pcm)
	EncodeFrame(PCMA, p.pcma, pcm)
	return p
}

// Name returns the name the prompt was loaded with.
func (p *Prompt) Name() string { return p.name }

// Duration returns the playing time of the prompt.
func (p *Prompt) Duration() time.Duration {
	return time.Duration(len(p.pcmu)) * time.Second / SampleRate
}

// Samples returns the length of the prompt in 8 kHz samples.
func (p *Prompt) Samples() int { return len(p.pcmu) }

// encoded returns the whole prompt in codec c (PCMU for anything but PCMA).
func (p *Prompt) encoded(c Codec) []byte {
	if c == PCMA {
		return p.pcma
	}
	return p.pcmu
}

// frame returns n bytes of the prompt in codec c starting at sample pos. Past
// the end it pads with silence, or wraps to the start when loop is set; only
// then is scratch (len >= n) used.
func (p *Prompt) frame(c Codec, pos, n int, loop bool, scratch []byte) []byte {
	data := p.encoded(c)
	if pos+n <= len(data) {
		return data[pos : pos+n]
	}
	out := scratch[:n]
	filled := 0
	if pos < len(data) {
		filled = copy(out, data[pos:])
	}
	for loop && len(data) > 0 && filled < n {
		filled += copy(out[filled:], data)
	}
	silence := c.silenceByte()
	for i := filled; i < n; i++ {
		out[i] = silence
	}
	return out
}

// LoadWAV reads a RIFF/WAVE prompt and converts it to 8 kHz mono once, here:
// 8- or 16-bit PCM, µ-law or A-law, mono or stereo (mixed down), at 8000 to
// 48000 Hz (low-pass filtered and resampled). 8 kHz mono G.711 keeps its
// bytes. Anything else is an error naming the prompt, what was found and
// what is expected.
func LoadWAV(name string, r io.Reader) (*Prompt, error) {
	p, err := decodePrompt(name, r)
	if err != nil {
		return nil, fmt.Errorf("prompt %q: %w", name, err)
	}
	return p, nil
}

// OpenPrompt loads the prompt name from the file name.wav in fsys (see
// LoadWAV). Its errors read like `prompt "welcome" (welcome.wav): ...`,
// which is also how `hotline check` reports a prompt it cannot load.
func OpenPrompt(fsys fs.FS, name string) (*Prompt, error) {
	file := name + ".wav"
	f, err := fsys.Open(file)
	if err == nil {
		var p *Prompt
		p, err = decodePrompt(name, f)
		f.Close()
		if err == nil {
			return p, nil
		}
	}
	return nil, fmt.Errorf("prompt %q (%s): %w", name, file, err)
}

func decodePrompt(name string, r io.Reader) (*Prompt, error) {
	format, data, err := wav.Decode(r)
	if err != nil {
		return nil, err
	}
	if err := format.Supported(); err != nil {
		return nil, err
	}
	if format.Channels == 1 && format.SampleRate == SampleRate {
		switch format.Tag {
		case wav.TagALaw:
			return promptFromG711(name, PCMA, data), nil
		case wav.TagMuLaw:
			return promptFromG711(name, PCMU, data), nil
		}
	}
	return NewPrompt(name, toPCM8k(format, data)), nil
}

// toPCM8k converts the samples of a supported format to 8 kHz mono linear
// PCM. 16-bit mono at 8 kHz comes through unchanged.
func toPCM8k(f wav.Format, data []byte) []int16 {
	width := f.BytesPerSample()
	frames := len(data) / (width * f.Channels)
	if f.SampleRate == SampleRate && f.Channels == 1 && f.Tag == wav.TagPCM && width == 2 {
		pcm := make([]int16, frames)
		for i := range pcm {
			pcm[i] = int16(binary.LittleEndian.Uint16(data[2*i:]))
		}
		return pcm
	}
	mono := make([]float32, frames)
	scale := 1 / float32(32768*f.Channels)
	for i := range mono {
		var sum int32
		for ch := range f.Channels {
			sum += int32(sampleAt(f.Tag, width, data[(i*f.Channels+ch)*width:]))
		}
		mono[i] = float32(sum) * scale
	}
	if f.SampleRate == SampleRate {
		pcm := make([]int16, frames)
		for i, x := range mono {
			pcm[i] = toInt16(x)
		}
		return pcm
	}
	return resampleTo8k(mono, f.SampleRate)
}

// sampleAt decodes one sample at the start of b as 16-bit linear PCM.
func sampleAt(tag uint16, width int, b []byte) int16 {
	switch {
	case tag == wav.TagALaw:
		return alawDecodeTable[b[0]]
	case tag == wav.TagMuLaw:
		return ulawDecodeTable[b[0]]
	case width == 1: // 8-bit PCM is unsigned, 128 is silence
		return (int16(b[0]) - 128) << 8
	}
	return int16(binary.LittleEndian.Uint16(b))
}

// promptFromG711 keeps the original bytes for their own codec and converts
// them with the direct G.711 table for the other.
func promptFromG711(name string, c Codec, encoded []byte) *Prompt {
	own := append([]byte(nil), encoded...)
	other := make([]byte, len(encoded))
	p := &Prompt{name: name}
	if c == PCMA {
		TranscodeFrame(PCMA, PCMU, other, own)
		p.pcma, p.pcmu = own, other
	} else {
		TranscodeFrame(PCMU, PCMA, other, own)
		p.pcmu, p.pcma = own, other
	}
	return p
}
