package media

import (
	"fmt"

	"github.com/zaf/g711"
)

// Codec is a static RTP payload type of an audio codec this package speaks.
type Codec uint8

// The G.711 codecs. The values are their static RTP payload numbers.
const (
	PCMU Codec = 0
	PCMA Codec = 8
)

// String returns the SDP encoding name ("PCMU", "PCMA").
func (c Codec) String() string {
	switch c {
	case PCMU:
		return "PCMU"
	case PCMA:
		return "PCMA"
	}
	return fmt.Sprintf("Codec(%d)", uint8(c))
}

// silenceByte is the encoding of linear 0, used to pad the last frame of a prompt.
func (c Codec) silenceByte() byte {
	if c == PCMA {
		return alawSilence
	}
	return ulawSilence
}

// Lookup tables, built once from zaf/g711's per-sample reference functions.
// µ-law encoding depends only on the top 14 bits of a sample and A-law on the
// top 12, so these indexes are exact (the tests check all 65536 inputs).
const (
	ulawEncodeShift = 2
	alawEncodeShift = 4
)

var (
	ulawDecodeTable [256]int16
	alawDecodeTable [256]int16
	ulawEncodeTable [1 << (16 - ulawEncodeShift)]byte
	alawEncodeTable [1 << (16 - alawEncodeShift)]byte
	ulawToAlawTable [256]byte
	alawToUlawTable [256]byte

	ulawSilence byte
	alawSilence byte
)

func init() {
	for i := range 256 {
		ulawDecodeTable[i] = g711.DecodeUlawFrame(uint8(i))
		alawDecodeTable[i] = g711.DecodeAlawFrame(uint8(i))
		ulawToAlawTable[i] = g711.Ulaw2AlawFrame(uint8(i))
		alawToUlawTable[i] = g711.Alaw2UlawFrame(uint8(i))
	}
	for i := range ulawEncodeTable {
		ulawEncodeTable[i] = g711.EncodeUlawFrame(int16(uint16(i) << ulawEncodeShift))
	}
	for i := range alawEncodeTable {
		alawEncodeTable[i] = g711.EncodeAlawFrame(int16(uint16(i) << alawEncodeShift))
	}
	ulawSilence = g711.EncodeUlawFrame(0)
	alawSilence = g711.EncodeAlawFrame(0)
}

// DecodeFrame decodes G.711 bytes of codec c into linear PCM. It converts
// min(len(dst), len(src)) samples; callers pass len(dst) >= len(src).
// Any codec other than PCMA is decoded as PCMU.
func DecodeFrame(c Codec, dst []int16, src []byte) {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	table := &ulawDecodeTable
	if c == PCMA {
		table = &alawDecodeTable
	}
	for i, b := range src {
		dst[i] = table[b]
	}
}

// EncodeFrame encodes linear PCM into G.711 bytes of codec c. It converts
// min(len(dst), len(src)) samples. Any codec other than PCMA encodes as PCMU.
func EncodeFrame(c Codec, dst []byte, src []int16) {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	if c == PCMA {
		for i, s := range src {
			dst[i] = alawEncodeTable[uint16(s)>>alawEncodeShift]
		}
		return
	}
	for i, s := range src {
		dst[i] = ulawEncodeTable[uint16(s)>>ulawEncodeShift]
	}
}

// TranscodeFrame converts G.711 bytes from one codec to the other through the
// ITU-T G.711 direct µ-law<->A-law tables (no trip through linear PCM). When
// from == to it copies. It converts min(len(dst), len(src)) bytes; dst and src
// may be the same slice.
func TranscodeFrame(from, to Codec, dst, src []byte) {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	switch {
	case from == to || (from != PCMA && to != PCMA):
		copy(dst, src)
	case to == PCMA:
		for i, b := range src {
			dst[i] = ulawToAlawTable[b]
		}
	default:
		for i, b := range src {
			dst[i] = alawToUlawTable[b]
		}
	}
}
