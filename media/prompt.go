package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
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

// WAV format tags this loader accepts.
const (
	wavFormatPCM        = 1
	wavFormatALaw       = 6
	wavFormatMuLaw      = 7
	wavFormatExtensible = 0xFFFE
)

// maxWAVBytes bounds what LoadWAV reads: 64 MiB is over an hour of 8 kHz audio.
const maxWAVBytes = 64 << 20

// wavFormat is the part of a "fmt " chunk that matters here.
type wavFormat struct {
	tag           uint16
	channels      uint16
	sampleRate    uint32
	bitsPerSample uint16
}

func (f wavFormat) String() string {
	enc := fmt.Sprintf("format %d", f.tag)
	switch f.tag {
	case wavFormatPCM:
		enc = fmt.Sprintf("%d-bit PCM", f.bitsPerSample)
	case wavFormatALaw:
		enc = "A-law"
	case wavFormatMuLaw:
		enc = "µ-law"
	}
	return fmt.Sprintf("%s, %d channel(s), %d Hz", enc, f.channels, f.sampleRate)
}

// LoadWAV reads a RIFF/WAVE file: 16-bit PCM, mono, 8000 Hz (also A-law or
// µ-law, 8 kHz mono). Anything else is an error naming the file, what was
// found and what is expected.
func LoadWAV(name string, r io.Reader) (*Prompt, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxWAVBytes+1))
	if err != nil {
		return nil, fmt.Errorf("prompt %q: read: %w", name, err)
	}
	if len(data) > maxWAVBytes {
		return nil, fmt.Errorf("prompt %q: larger than %d MiB", name, maxWAVBytes>>20)
	}
	format, samples, err := parseWAV(data)
	if err != nil {
		return nil, fmt.Errorf("prompt %q: %w", name, err)
	}
	if format.channels != 1 || format.sampleRate != SampleRate || !supportedEncoding(format) {
		return nil, fmt.Errorf("prompt %q: found %s, want 16-bit PCM, 1 channel, 8000 Hz (or A-law/µ-law 8000 Hz mono)", name, format)
	}
	switch format.tag {
	case wavFormatALaw:
		return promptFromG711(name, PCMA, samples), nil
	case wavFormatMuLaw:
		return promptFromG711(name, PCMU, samples), nil
	}
	pcm := make([]int16, len(samples)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(samples[2*i:]))
	}
	return NewPrompt(name, pcm), nil
}

func supportedEncoding(f wavFormat) bool {
	switch f.tag {
	case wavFormatPCM:
		return f.bitsPerSample == 16
	case wavFormatALaw, wavFormatMuLaw:
		return f.bitsPerSample == 8
	}
	return false
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

var errNotWAV = errors.New("not a RIFF/WAVE file")

// parseWAV walks the RIFF chunks and returns the format and the raw bytes of
// the data chunk. A data size larger than the file (streamed WAVs write
// 0xFFFFFFFF) is clamped to what is there.
func parseWAV(data []byte) (wavFormat, []byte, error) {
	var format wavFormat
	if len(data) < 12 || string(data[0:4]) != "RIFF" || string(data[8:12]) != "WAVE" {
		return format, nil, errNotWAV
	}
	haveFormat := false
	rest := data[12:]
	for len(rest) >= 8 {
		id := string(rest[0:4])
		size := uint64(binary.LittleEndian.Uint32(rest[4:8]))
		body := rest[8:]
		if size > uint64(len(body)) {
			size = uint64(len(body))
		}
		chunk := body[:size]
		switch id {
		case "fmt ":
			f, err := parseFormatChunk(chunk)
			if err != nil {
				return format, nil, err
			}
			format, haveFormat = f, true
		case "data":
			if !haveFormat {
				return format, nil, errors.New(`"data" chunk before "fmt " chunk`)
			}
			if format.tag == wavFormatPCM && len(chunk)%2 == 1 {
				chunk = chunk[:len(chunk)-1]
			}
			return format, chunk, nil
		}
		// Chunks are padded to an even size.
		next := size + size%2
		if next > uint64(len(body)) {
			break
		}
		rest = body[next:]
	}
	if !haveFormat {
		return format, nil, errors.New(`no "fmt " chunk`)
	}
	return format, nil, errors.New(`no "data" chunk`)
}

func parseFormatChunk(chunk []byte) (wavFormat, error) {
	if len(chunk) < 16 {
		return wavFormat{}, fmt.Errorf(`"fmt " chunk is %d bytes, want at least 16`, len(chunk))
	}
	f := wavFormat{
		tag:           binary.LittleEndian.Uint16(chunk[0:2]),
		channels:      binary.LittleEndian.Uint16(chunk[2:4]),
		sampleRate:    binary.LittleEndian.Uint32(chunk[4:8]),
		bitsPerSample: binary.LittleEndian.Uint16(chunk[14:16]),
	}
	// WAVE_FORMAT_EXTENSIBLE keeps the real tag in the first two bytes of
	// the sub-format GUID, at offset 24.
	if f.tag == wavFormatExtensible && len(chunk) >= 26 {
		f.tag = binary.LittleEndian.Uint16(chunk[24:26])
	}
	return f, nil
}
