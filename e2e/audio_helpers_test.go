package e2e

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"testing"
)

// The audio checks of the end-to-end test are only as good as these helpers, so
// they are tested on signals whose answers are known by construction.

func sine(freq, amplitude float64, rate, n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = amplitude * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)+0.3)
	}
	return x
}

func TestToneShare(t *testing.T) {
	tone := sine(1000, 8000, 8000, 8000)
	other := sine(1200, 8000, 8000, 8000)
	both := make([]float64, len(tone))
	for i := range both {
		both[i] = tone[i] + other[i]
	}
	for _, tc := range []struct {
		name     string
		x        []float64
		rate     int
		min, max float64
	}{
		{"1000 Hz alone", tone, 8000, 0.999, 1.001},
		{"1200 Hz alone", other, 8000, 0, 1e-9},
		{"equal mix", both, 8000, 0.499, 0.501}, // bins 10 and 12 are orthogonal over 10 ms
		{"1000 Hz at 16 kHz", sine(1000, 3000, 16000, 16000), 16000, 0.999, 1.001},
	} {
		if got := toneShare(tc.x, 1000, tc.rate); got < tc.min || got > tc.max {
			t.Errorf("%s: toneShare = %.6f, want %.3f..%.3f", tc.name, got, tc.min, tc.max)
		}
	}
}

func TestEnvelopeRemovesTheTone(t *testing.T) {
	x := sine(1000, 8000, 8000, 800)
	burst := sine(300, 2000, 8000, 800) // 300 Hz is bin 3 of a 10 ms frame
	for i := 400; i < 800; i++ {
		x[i] += burst[i]
	}
	env := envelope(x, 8000, 1000)
	if len(env) != 10 {
		t.Fatalf("len(envelope) = %d, want 10 frames of 10 ms", len(env))
	}
	want := 2000 / math.Sqrt2 // RMS of the 300 Hz burst
	for i, v := range env {
		expect := 0.0
		if i >= 5 {
			expect = want
		}
		if math.Abs(v-expect) > 1 {
			t.Errorf("frame %d: envelope %.2f, want %.2f", i, v, expect)
		}
	}
}

func TestBestAlignmentFindsTheLag(t *testing.T) {
	ref := make([]float64, 300)
	seed := uint32(7)
	for i := range ref {
		seed = seed*1664525 + 1013904223
		ref[i] = float64(seed >> 20)
	}
	got := make([]float64, 500)
	for i := range got {
		got[i] = 40 // a floor: correlation ignores offset and scale
	}
	for i, v := range ref {
		got[100+i] += 0.5 * v
	}
	a := bestAlignment(ref, got, 200)
	if a.Lag != 100 || a.Overlap != 300 || a.Corr < 0.999 {
		t.Errorf("bestAlignment = %+v, want lag 100, overlap 300, corr 1", a)
	}
	// Cut the end off: the reference still aligns, over fewer frames.
	a = bestAlignment(ref, got[:350], 200)
	if a.Lag != 100 || a.Overlap != 250 || a.Corr < 0.999 {
		t.Errorf("truncated: bestAlignment = %+v, want lag 100, overlap 250, corr 1", a)
	}
}

// wavBytes builds a 16-bit PCM WAV; dataSize overrides the data chunk's size field.
func wavBytes(rate, channels int, samples []int16, dataSize uint32) []byte {
	var b bytes.Buffer
	w := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("RIFF")
	w(uint32(36 + 2*len(samples)))
	b.WriteString("WAVEfmt ")
	w(uint32(16))
	w(uint16(1))
	w(uint16(channels))
	w(uint32(rate))
	w(uint32(rate * channels * 2))
	w(uint16(channels * 2))
	w(uint16(16))
	b.WriteString("LIST") // a chunk the reader must skip
	w(uint32(3))
	b.WriteString("abc\x00") // odd size, one pad byte
	b.WriteString("data")
	w(dataSize)
	w(samples)
	return b.Bytes()
}

func TestParseWAV(t *testing.T) {
	stereo := []int16{100, -40, 200, 50, -300, 300}
	for _, tc := range []struct {
		name     string
		dataSize uint32
	}{
		{"finished header", 12},
		{"header never fixed", 0},
		{"size past the end", 0xFFFFFFFF},
	} {
		path := t.TempDir() + "/x.wav"
		if err := os.WriteFile(path, wavBytes(16000, 2, stereo, tc.dataSize), 0o644); err != nil {
			t.Fatal(err)
		}
		mono, rate, err := readWAVMono(path)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		want := []float64{60, 250, 0}
		if rate != 16000 || len(mono) != 3 || mono[0] != want[0] || mono[1] != want[1] || mono[2] != want[2] {
			t.Errorf("%s: rate %d samples %v, want 16000 %v", tc.name, rate, mono, want)
		}
	}
	if _, err := parseWAV([]byte("RIFF\x00\x00\x00\x00WAVEdata\x04\x00\x00\x00abcd")); err == nil {
		t.Error("data before fmt: no error")
	}
}

// pcapBytes builds a little-endian Ethernet pcap holding one IPv4/UDP/RTP packet.
func pcapBytes(payloadType uint8, payload []byte) []byte {
	rtp := append([]byte{0x80, payloadType, 0, 1, 0, 0, 0, 240, 1, 2, 3, 4}, payload...)
	udp := append([]byte{0x13, 0x88, 0x07, 0xd6, 0, byte(8 + len(rtp)), 0, 0}, rtp...)
	ip := append([]byte{0x45, 0, 0, byte(20 + len(udp)), 0, 0, 0, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1}, udp...)
	frame := append(make([]byte, 12), 0x08, 0x00)
	frame = append(frame, ip...)
	var b bytes.Buffer
	w := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	w(uint32(0xa1b2c3d4))
	w(uint16(2))
	w(uint16(4))
	w(int32(0))
	w(uint32(0))
	w(uint32(65535))
	w(uint32(1))
	w(uint32(1)) // seconds
	w(uint32(0)) // microseconds
	w(uint32(len(frame)))
	w(uint32(len(frame)))
	b.Write(frame)
	return b.Bytes()
}

func TestPcapRTPDecodesALaw(t *testing.T) {
	// A-law 0xD5 is the smallest positive step (+8), 0x55 the smallest negative (-8).
	packets, err := pcapRTP(pcapBytes(8, []byte{0xD5, 0x55}))
	if err != nil {
		t.Fatal(err)
	}
	if len(packets) != 1 || packets[0].PayloadType != 8 {
		t.Fatalf("packets = %+v, want one PCMA packet", packets)
	}
	if got := alawSpeech(packets); len(got) != 2 || got[0] != 8 || got[1] != -8 {
		t.Errorf("decoded %v, want [8 -8]", got)
	}
	if packets, _ := pcapRTP(pcapBytes(101, []byte{1, 10, 0, 160})); len(alawSpeech(packets)) != 0 {
		t.Error("a telephone-event packet was decoded as speech")
	}
}

func FuzzParseWAV(f *testing.F) {
	f.Add(wavBytes(8000, 1, []int16{1, 2, 3}, 6))
	f.Add(wavBytes(8000, 2, []int16{1, 2}, 0xFFFFFFFF))
	f.Add([]byte("RIFF\x04\x00\x00\x00WAVE"))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := parseWAV(b)
		if err == nil && len(w.Data)%(2*w.Channels) != 0 {
			t.Errorf("data of %d bytes is not whole frames of %d channels", len(w.Data), w.Channels)
		}
	})
}

func FuzzPcapRTP(f *testing.F) {
	f.Add(pcapBytes(8, []byte{0xD5, 0x55}))
	f.Add(pcapBytes(101, []byte{1, 10, 0, 160}))
	f.Add([]byte{0xd4, 0xc3, 0xb2, 0xa1})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = pcapRTP(b) // must not panic
	})
}
