package media

import (
	"math"
	"testing"

	"github.com/zaf/g711"
)

func TestEncodeMatchesReferenceForEverySample(t *testing.T) {
	src := make([]int16, 1<<16)
	for i := range src {
		src[i] = int16(uint16(i))
	}
	ulaw := make([]byte, len(src))
	alaw := make([]byte, len(src))
	EncodeFrame(PCMU, ulaw, src)
	EncodeFrame(PCMA, alaw, src)
	for i, s := range src {
		if want := g711.EncodeUlawFrame(s); ulaw[i] != want {
			t.Fatalf("PCMU encode %d = %#x, reference %#x", s, ulaw[i], want)
		}
		if want := g711.EncodeAlawFrame(s); alaw[i] != want {
			t.Fatalf("PCMA encode %d = %#x, reference %#x", s, alaw[i], want)
		}
	}
}

func TestDecodeAndTranscodeMatchReferenceForEveryByte(t *testing.T) {
	src := make([]byte, 256)
	for i := range src {
		src[i] = byte(i)
	}
	ulawPCM := make([]int16, 256)
	alawPCM := make([]int16, 256)
	DecodeFrame(PCMU, ulawPCM, src)
	DecodeFrame(PCMA, alawPCM, src)
	toAlaw := make([]byte, 256)
	toUlaw := make([]byte, 256)
	TranscodeFrame(PCMU, PCMA, toAlaw, src)
	TranscodeFrame(PCMA, PCMU, toUlaw, src)
	for i, b := range src {
		if want := g711.DecodeUlawFrame(b); ulawPCM[i] != want {
			t.Errorf("PCMU decode %#x = %d, reference %d", b, ulawPCM[i], want)
		}
		if want := g711.DecodeAlawFrame(b); alawPCM[i] != want {
			t.Errorf("PCMA decode %#x = %d, reference %d", b, alawPCM[i], want)
		}
		if want := g711.Ulaw2AlawFrame(b); toAlaw[i] != want {
			t.Errorf("PCMU->PCMA %#x = %#x, reference %#x", b, toAlaw[i], want)
		}
		if want := g711.Alaw2UlawFrame(b); toUlaw[i] != want {
			t.Errorf("PCMA->PCMU %#x = %#x, reference %#x", b, toUlaw[i], want)
		}
	}
}

// Decoding, encoding and decoding again must give the same sample: every
// decoded value is exactly representable.
func TestRoundTripIsStable(t *testing.T) {
	for _, c := range []Codec{PCMU, PCMA} {
		for b := range 256 {
			var pcm, again [1]int16
			var enc [1]byte
			DecodeFrame(c, pcm[:], []byte{byte(b)})
			EncodeFrame(c, enc[:], pcm[:])
			DecodeFrame(c, again[:], enc[:])
			if again[0] != pcm[0] {
				t.Errorf("%s %#x: decoded %d, re-encoded %#x decodes to %d", c, b, pcm[0], enc[0], again[0])
			}
		}
	}
}

// The quantisation error of G.711 stays within its segment step: at most
// 1/16 of the magnitude plus a small floor.
func TestRoundTripErrorIsBounded(t *testing.T) {
	for _, c := range []Codec{PCMU, PCMA} {
		for i := range 1 << 16 {
			s := int16(uint16(i))
			var enc [1]byte
			var dec [1]int16
			EncodeFrame(c, enc[:], []int16{s})
			DecodeFrame(c, dec[:], enc[:])
			diff := math.Abs(float64(dec[0]) - float64(s))
			limit := math.Abs(float64(s))/16 + 140 // µ-law clips above 32124
			if s > 32000 || s < -32000 {
				limit += 700
			}
			if diff > limit {
				t.Fatalf("%s: %d -> %#x -> %d, error %.0f > %.0f", c, s, enc[0], dec[0], diff, limit)
			}
		}
	}
}

func TestShortBuffersDoNotPanic(t *testing.T) {
	DecodeFrame(PCMU, make([]int16, 2), make([]byte, 10))
	EncodeFrame(PCMA, make([]byte, 2), make([]int16, 10))
	TranscodeFrame(PCMU, PCMA, make([]byte, 2), make([]byte, 10))
}

func TestCodecString(t *testing.T) {
	for c, want := range map[Codec]string{PCMU: "PCMU", PCMA: "PCMA", 18: "Codec(18)"} {
		if got := c.String(); got != want {
			t.Errorf("Codec(%d).String() = %q, want %q", uint8(c), got, want)
		}
	}
}
