// Package wav reads the RIFF/WAVE files hotline takes as prompts: the format
// chunk, whether hotline can play that format, and the sample data. It is a
// package of its own so that config can check a prompt's header without
// pulling in the media engine.
package wav

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Format tags (the fmt chunk's wFormatTag, or the first two bytes of an
// extensible file's sub-format GUID).
const (
	TagPCM        = 1
	TagFloat      = 3
	TagALaw       = 6
	TagMuLaw      = 7
	tagExtensible = 0xFFFE
)

// The sample rates a prompt may have; it is converted to 8 kHz at load.
const (
	MinSampleRate = 8000
	MaxSampleRate = 48000
)

// MaxBytes bounds what Decode reads: 64 MiB is over an hour of 8 kHz audio
// and about six minutes of 48 kHz stereo.
const MaxBytes = 64 << 20

// Format is what a file's fmt chunk says about its samples.
type Format struct {
	Tag           uint16 // for WAVE_FORMAT_EXTENSIBLE, the sub-format's tag
	Extensible    bool
	UnknownGUID   bool // extensible with a sub-format outside the standard audio GUIDs
	Channels      int
	SampleRate    int
	BitsPerSample int
}

// Expected is what hotline plays, for "expected ..." in messages.
const Expected = "expected 8/16-bit PCM, µ-law or A-law, mono or stereo, 8000-48000 Hz"

// String describes the format the way a person would, like
// "24-bit PCM mono at 96000 Hz".
func (f Format) String() string {
	var enc string
	switch {
	case f.UnknownGUID:
		enc = "an unknown WAVE_FORMAT_EXTENSIBLE sub-format"
	case f.Tag == TagPCM:
		enc = fmt.Sprintf("%d-bit PCM", f.BitsPerSample)
	case f.Tag == TagFloat:
		enc = fmt.Sprintf("%d-bit floating point", f.BitsPerSample)
	case f.Tag == TagALaw || f.Tag == TagMuLaw:
		enc = "A-law"
		if f.Tag == TagMuLaw {
			enc = "µ-law"
		}
		if f.BitsPerSample != 8 {
			enc = fmt.Sprintf("%d-bit %s", f.BitsPerSample, enc)
		}
	default:
		enc = fmt.Sprintf("format tag 0x%04x", f.Tag)
	}
	channels := fmt.Sprintf("%d channels", f.Channels)
	switch f.Channels {
	case 1:
		channels = "mono"
	case 2:
		channels = "stereo"
	}
	return fmt.Sprintf("%s %s at %d Hz", enc, channels, f.SampleRate)
}

// Supported returns nil for a format hotline converts and plays, and otherwise
// an error saying what was found and what is expected.
func (f Format) Supported() error {
	ok := !f.UnknownGUID &&
		(f.Channels == 1 || f.Channels == 2) &&
		f.SampleRate >= MinSampleRate && f.SampleRate <= MaxSampleRate
	switch f.Tag {
	case TagPCM:
		ok = ok && (f.BitsPerSample == 8 || f.BitsPerSample == 16)
	case TagALaw, TagMuLaw:
		ok = ok && f.BitsPerSample == 8
	default:
		ok = false
	}
	if !ok {
		return fmt.Errorf("%s is not supported; %s", f, Expected)
	}
	return nil
}

// BytesPerSample is the size of one sample of one channel (8-bit PCM and
// G.711: 1; 16-bit PCM: 2).
func (f Format) BytesPerSample() int { return (f.BitsPerSample + 7) / 8 }

// ErrNotWAV is returned for a file that does not start like a RIFF/WAVE file.
var ErrNotWAV = errors.New("not a RIFF/WAVE file; expected a WAV file")

// Decode reads a whole RIFF/WAVE file (at most MaxBytes) and returns its
// format and the bytes of its data chunk, cut to whole sample frames. A data
// size larger than the file (streaming writers put 0xFFFFFFFF there) is
// clamped to what is there. It does not check the format is Supported.
func Decode(r io.Reader) (Format, []byte, error) {
	return walk(r, true)
}

// DecodeHeader reads a file up to the start of its data chunk and returns
// the format, without reading the samples.
func DecodeHeader(r io.Reader) (Format, error) {
	f, _, err := walk(r, false)
	return f, err
}

// fmtChunkMax is the most of a fmt chunk that is read; the fields that
// matter are in the first 40 bytes.
const fmtChunkMax = 64

// walk reads the chunks in order up to the data chunk, and that one too
// when withData is set.
func walk(r io.Reader, withData bool) (Format, []byte, error) {
	var format Format
	var head [12]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return format, nil, readError(err, ErrNotWAV)
	}
	if string(head[0:4]) != "RIFF" || string(head[8:12]) != "WAVE" {
		return format, nil, ErrNotWAV
	}
	haveFormat := false
	read := int64(len(head))
	for {
		var chunk [8]byte
		if _, err := io.ReadFull(r, chunk[:]); err != nil {
			return format, nil, readError(err, missingChunk(haveFormat))
		}
		read += 8
		id, size := string(chunk[0:4]), int64(binary.LittleEndian.Uint32(chunk[4:8]))
		// Chunks are padded to an even size.
		skip := size + size%2
		switch id {
		case "fmt ":
			body := make([]byte, min(size, fmtChunkMax))
			n, err := io.ReadFull(r, body)
			if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
				return format, nil, readError(err, nil)
			}
			f, err := parseFormat(body[:n])
			if err != nil {
				return format, nil, err
			}
			format, haveFormat = f, true
			skip -= int64(n)
			read += int64(n)
		case "data":
			if !haveFormat {
				return format, nil, errors.New(`"data" chunk before "fmt " chunk`)
			}
			if !withData {
				return format, nil, nil
			}
			data, err := readData(r, size, MaxBytes-read)
			if err != nil {
				return format, nil, err
			}
			if frame := format.BytesPerSample() * format.Channels; frame > 0 {
				data = data[:len(data)-len(data)%frame]
			}
			return format, data, nil
		}
		n, err := io.CopyN(io.Discard, r, min(skip, MaxBytes-read+1))
		read += n
		switch {
		case err != nil:
			return format, nil, readError(err, missingChunk(haveFormat))
		case n < skip:
			return format, nil, tooLarge()
		}
	}
}

// readData reads a data chunk of size bytes (fewer if the file ends first),
// refusing more than room.
func readData(r io.Reader, size, room int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, min(size, room+1)))
	if err != nil {
		return nil, readError(err, nil)
	}
	if int64(len(data)) > room {
		return nil, tooLarge()
	}
	return data, nil
}

func tooLarge() error { return fmt.Errorf("larger than %d MiB", MaxBytes>>20) }

func missingChunk(haveFormat bool) error {
	if haveFormat {
		return errors.New(`no "data" chunk`)
	}
	return errors.New(`no "fmt " chunk`)
}

// readError maps the end of the file to atEOF (when not nil) and wraps any
// other read error.
func readError(err, atEOF error) error {
	if atEOF != nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
		return atEOF
	}
	return fmt.Errorf("read: %w", err)
}

// extensibleGUIDTail is bytes 2-15 of every standard audio sub-format GUID
// (KSDATAFORMAT_SUBTYPE_*: xxxxxxxx-0000-0010-8000-00aa00389b71); the first
// two bytes are the format tag.
var extensibleGUIDTail = []byte{0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71}

func parseFormat(chunk []byte) (Format, error) {
	if len(chunk) < 16 {
		return Format{}, fmt.Errorf(`"fmt " chunk is %d bytes, want at least 16`, len(chunk))
	}
	f := Format{
		Tag:           binary.LittleEndian.Uint16(chunk[0:2]),
		Channels:      int(binary.LittleEndian.Uint16(chunk[2:4])),
		SampleRate:    int(binary.LittleEndian.Uint32(chunk[4:8])),
		BitsPerSample: int(binary.LittleEndian.Uint16(chunk[14:16])),
	}
	if f.Tag == tagExtensible {
		// cbSize, wValidBitsPerSample, dwChannelMask, then the sub-format
		// GUID at offset 24.
		f.Extensible = true
		if len(chunk) < 40 {
			return Format{}, fmt.Errorf(`"fmt " chunk of WAVE_FORMAT_EXTENSIBLE is %d bytes, want 40`, len(chunk))
		}
		f.Tag = binary.LittleEndian.Uint16(chunk[24:26])
		f.UnknownGUID = string(chunk[26:40]) != string(extensibleGUIDTail)
	}
	return f, nil
}
