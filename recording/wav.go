package recording

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// Format of every recording.
const (
	SampleRate    = 8000
	Channels      = 2
	BitsPerSample = 16
)

const (
	bytesPerFrame = Channels * BitsPerSample / 8 // one stereo sample
	wavHeaderSize = 44                           // canonical PCM header: RIFF, fmt, data
	riffSizeAt    = 4                            // offset of the RIFF chunk size
)

// wavHeader is the canonical 44-byte header of a PCM WAV file whose data
// chunk holds dataBytes bytes.
func wavHeader(dataBytes uint32) [wavHeaderSize]byte {
	var h [wavHeaderSize]byte
	le := binary.LittleEndian
	copy(h[0:], "RIFF")
	le.PutUint32(h[4:], wavHeaderSize-8+dataBytes)
	copy(h[8:], "WAVE")
	copy(h[12:], "fmt ")
	le.PutUint32(h[16:], 16) // fmt chunk size
	le.PutUint16(h[20:], 1)  // PCM
	le.PutUint16(h[22:], Channels)
	le.PutUint32(h[24:], SampleRate)
	le.PutUint32(h[28:], SampleRate*bytesPerFrame) // byte rate
	le.PutUint16(h[32:], bytesPerFrame)            // block align
	le.PutUint16(h[34:], BitsPerSample)
	copy(h[36:], "data")
	le.PutUint32(h[40:], dataBytes)
	return h
}

// writeSizes sets the RIFF and data chunk sizes of a file whose data chunk
// body starts at dataOffset and is dataBytes long.
func writeSizes(f io.WriterAt, dataOffset, dataBytes int64) error {
	var size [4]byte
	binary.LittleEndian.PutUint32(size[:], uint32(dataOffset+dataBytes-8))
	if _, err := f.WriteAt(size[:], riffSizeAt); err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(size[:], uint32(dataBytes))
	_, err := f.WriteAt(size[:], dataOffset-4)
	return err
}

var errNotWAV = errors.New("not a RIFF/WAVE file")

// dataChunk locates the data chunk of a WAV file of the given size: the
// offset of its body and the block alignment from the fmt chunk (1 if
// unknown). The data chunk's own size field is not trusted: after a crash it
// is zero.
func dataChunk(r io.ReaderAt, size int64) (dataOffset, blockAlign int64, err error) {
	var riff [12]byte
	if _, err := r.ReadAt(riff[:], 0); err != nil {
		return 0, 0, fmt.Errorf("read RIFF header: %w", errNotWAV)
	}
	if string(riff[0:4]) != "RIFF" || string(riff[8:12]) != "WAVE" {
		return 0, 0, errNotWAV
	}
	blockAlign = 1
	for offset := int64(12); offset+8 <= size; {
		var chunkHeader [8]byte
		if _, err := r.ReadAt(chunkHeader[:], offset); err != nil {
			return 0, 0, fmt.Errorf("read chunk header at %d: %w", offset, err)
		}
		id := string(chunkHeader[0:4])
		chunkSize := int64(binary.LittleEndian.Uint32(chunkHeader[4:]))
		body := offset + 8
		switch id {
		case "data":
			return body, blockAlign, nil
		case "fmt ":
			if chunkSize >= 16 && body+16 <= size {
				var format [16]byte
				if _, err := r.ReadAt(format[:], body); err != nil {
					return 0, 0, fmt.Errorf("read fmt chunk: %w", err)
				}
				if align := int64(binary.LittleEndian.Uint16(format[12:])); align > 0 {
					blockAlign = align
				}
			}
		}
		offset = body + chunkSize + chunkSize&1 // chunks are padded to even sizes
	}
	return 0, 0, errors.New("no data chunk")
}

// Repair fixes the RIFF and data sizes of a WAV file left by a crash (the
// header written at creation has zero sizes), deriving them from the file
// length, as recordings end with their data chunk. A torn last sample frame
// is cut off. Repairing a good recording changes nothing.
func Repair(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("repair recording: %w", err)
	}
	if err := repairFile(f); err != nil {
		f.Close()
		return fmt.Errorf("repair recording %q: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("repair recording %q: %w", path, err)
	}
	return nil
}

func repairFile(f *os.File) error {
	info, err := f.Stat()
	if err != nil {
		return err
	}
	size := info.Size()
	dataOffset, blockAlign, err := dataChunk(f, size)
	if err != nil {
		return err
	}
	dataBytes := size - dataOffset
	dataBytes -= dataBytes % blockAlign
	if limit := int64(0xFFFFFFFF) - (dataOffset - 8); dataBytes > limit {
		dataBytes = limit - limit%blockAlign
	}
	if end := dataOffset + dataBytes; end < size && size-end < blockAlign {
		if err := f.Truncate(end); err != nil {
			return fmt.Errorf("cut torn frame: %w", err)
		}
	}
	if err := writeSizes(f, dataOffset, dataBytes); err != nil {
		return fmt.Errorf("write sizes: %w", err)
	}
	return f.Sync()
}
