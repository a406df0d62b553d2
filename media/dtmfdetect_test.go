package media

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

const allKeys = "123A456B789C*0#D"

// keyTone is d of the key's two tones. level is the pair's peak in dB below
// full scale; twist is the column tone's level relative to the row tone's;
// deviation scales both frequencies (0.015: 1.5% high).
func keyTone(key byte, d time.Duration, level, twist, deviation float64) []int16 {
	i := strings.IndexByte(allKeys, key)
	rowHz, colHz := dtmfRowHz[i/4]*(1+deviation), dtmfColHz[i%4]*(1+deviation)
	peak := math.Pow(10, level/20)
	colGain := math.Pow(10, twist/20)
	rowAmp := peak / (1 + colGain)
	row, col := Tone(rowHz, d, rowAmp), Tone(colHz, d, rowAmp*colGain)
	for j := range row {
		row[j] += col[j]
	}
	return row
}

func silence(d time.Duration) []int16 { return make([]int16, int(d*SampleRate/time.Second)) }

// addNoise adds white Gaussian noise at rmsDB below full scale.
func addNoise(pcm []int16, rmsDB float64, seed uint64) []int16 {
	r := rand.New(rand.NewPCG(seed, 1))
	sigma := math.Pow(10, rmsDB/20) * 32768
	out := make([]int16, len(pcm))
	for i, s := range pcm {
		out[i] = int16(max(math.MinInt16, min(math.MaxInt16, float64(s)+r.NormFloat64()*sigma)))
	}
	return out
}

// detect runs a new detector over pcm, frame samples at a time (the last
// frame may be short), and returns the keys it reported.
func detect(pcm []int16, frame int) string {
	var got []byte
	d := NewDTMFDetector(func(k byte) { got = append(got, k) })
	for len(pcm) > 0 {
		n := min(frame, len(pcm))
		d.WriteAudio(pcm[:n])
		pcm = pcm[n:]
	}
	return string(got)
}

// Every key, loud and faint, short and long, in noise and through G.711,
// starting anywhere within a block: each press is reported exactly once.
func TestDTMFDetectorHearsEveryKeyOnce(t *testing.T) {
	for _, level := range []float64{-3, -20} {
		for _, length := range []time.Duration{40 * time.Millisecond, 100 * time.Millisecond} {
			for offset := 0; offset < dtmfBlockSamples; offset += 17 {
				pcm := make([]int16, offset)
				for i := range len(allKeys) {
					pcm = append(pcm, keyTone(allKeys[i], length, level, 0, 0)...)
					pcm = append(pcm, silence(50*time.Millisecond)...)
				}
				pcm = addNoise(pcm, -50, uint64(offset))
				for _, c := range []Codec{PCMU, PCMA} {
					heard := throughG711(c, pcm)
					for _, frame := range []int{160, 240, 37} {
						if got := detect(heard, frame); got != allKeys {
							t.Errorf("%v dB, %v, offset %d, %s, %d-sample frames: heard %q, want %q",
								level, length, offset, c, frame, got, allKeys)
						}
					}
				}
			}
		}
	}
}

func throughG711(c Codec, pcm []int16) []int16 {
	enc := make([]byte, len(pcm))
	EncodeFrame(c, enc, pcm)
	out := make([]int16, len(pcm))
	DecodeFrame(c, out, enc)
	return out
}

// Q.24 tolerances: a key 1.5% off frequency is accepted; twist is accepted
// up to 8 dB normal (column weaker) and 4 dB reverse, refused beyond.
func TestDTMFDetectorTwistAndFrequencyLimits(t *testing.T) {
	for _, tt := range []struct {
		twist, deviation float64
		accept           bool
	}{
		{0, 0.015, true}, {0, -0.015, true},
		{-6, 0, true}, {-7, 0.01, true}, {-10, 0, false}, {-14, 0, false},
		{3, 0, true}, {6, 0, false}, {10, 0, false},
	} {
		for i := range len(allKeys) {
			key := allKeys[i]
			pcm := append(keyTone(key, 100*time.Millisecond, -6, tt.twist, tt.deviation), silence(50*time.Millisecond)...)
			want := ""
			if tt.accept {
				want = string(key)
			}
			if got := detect(addNoise(pcm, -50, uint64(i)), 160); got != want {
				t.Errorf("key %c, twist %+v dB, %+.1f%% off: heard %q, want %q", key, tt.twist, 100*tt.deviation, got, want)
			}
		}
	}
}

// A press needs about 20 ms of tone; a dropout shorter than two blocks does
// not split it; a pause of 40 ms between presses of the same key separates
// them; too faint a tone is not a key.
func TestDTMFDetectorTimingAndLevel(t *testing.T) {
	join := func(parts ...[]int16) []int16 {
		var out []int16
		for _, p := range parts {
			out = append(out, p...)
		}
		return append(out, silence(60*time.Millisecond)...)
	}
	five := func(d time.Duration) []int16 { return keyTone('5', d, -6, 0, 0) }
	for _, tt := range []struct {
		name string
		pcm  []int16
		want string
	}{
		{"15 ms blip", join(five(15 * time.Millisecond)), ""},
		{"40 ms", join(five(40 * time.Millisecond)), "5"},
		{"a 10 ms dropout", join(five(60*time.Millisecond), silence(10*time.Millisecond), five(60*time.Millisecond)), "5"},
		{"two presses 40 ms apart", join(five(60*time.Millisecond), silence(40*time.Millisecond), five(60*time.Millisecond)), "55"},
		{"-45 dB", join(keyTone('5', 100*time.Millisecond, -45, 0, 0)), ""},
		{"-24 dB", join(keyTone('5', 100*time.Millisecond, -24, 0, 0)), "5"},
		{"one tone only", join(Tone(770, 100*time.Millisecond, 0.5)), ""},
	} {
		for offset := 0; offset < dtmfBlockSamples; offset += 11 {
			pcm := append(silence(time.Duration(offset)*samplePeriod), tt.pcm...)
			if got := detect(addNoise(pcm, -55, uint64(offset)), 160); got != tt.want {
				t.Errorf("%s, offset %d: heard %q, want %q", tt.name, offset, got, tt.want)
			}
		}
	}
	// Key 5 (770 + 1336 Hz, 0.25 each) with another tone beside it, as in
	// speech or music, is not a key.
	for _, extra := range []struct {
		hz, amplitude float64
	}{
		{500, 0.3},              // a strong third tone
		{852, 0.25 / 2},         // a second row tone, 6 dB down (keys 5 and 8 at once)
		{2 * 1336, 0.25 / 3.3},  // the column tone's second harmonic, 10 dB down
		{2 * 770, 0.25 / 1.125}, // the row tone's second harmonic, 1 dB down
	} {
		pcm := five(100 * time.Millisecond)
		for i, s := range Tone(extra.hz, 100*time.Millisecond, extra.amplitude) {
			pcm[i] += s
		}
		if got := detect(append(pcm, silence(60*time.Millisecond)...), 160); got != "" {
			t.Errorf("key 5 with %v Hz at %.3f: heard %q, want nothing", extra.hz, extra.amplitude, got)
		}
	}
}

// It is a Tap: a leg hands it decoded audio and it reports on the leg's
// DTMF channel.
func TestDTMFDetectorOnALeg(t *testing.T) {
	e := newDTMFEngine(t, "127.0.12.1")
	x := newTestLeg(t, e, "trunk-leg")
	carrier := newRawPeer(t, "127.0.12.2")
	x.SetParams(Params{Remote: carrier.addr(), Codec: PCMA, PayloadType: 8})
	x.AddTap(NewDTMFDetector(func(d byte) { _ = x.InjectDTMF(d) }))

	stream := rtpStream{ssrc: 0xD7, seq: 1, ts: 160}
	pcm := append(keyTone('7', 80*time.Millisecond, -10, 0, 0), silence(80*time.Millisecond)...)
	pcm = append(pcm, keyTone('#', 80*time.Millisecond, -10, 0, 0)...)
	pcm = append(pcm, silence(80*time.Millisecond)...)
	for i := 0; i+160 <= len(pcm); i += 160 {
		payload := make([]byte, 160)
		EncodeFrame(PCMA, payload, pcm[i:i+160])
		carrier.send(x.LocalAddr(), rtpPacket(8, i == 0, stream.seq, stream.ts, stream.ssrc, payload))
		stream.seq++
		stream.ts += 160
		time.Sleep(20 * time.Millisecond) // a carrier sends in real time; the tap plays out on the clock
	}
	var got string
	eventually(t, "two keys heard", func() bool { got += drainDigits(x); return len(got) >= 2 })
	if got != "7#" {
		t.Errorf("leg reported %q, want \"7#\"", got)
	}
}

func BenchmarkDTMFDetector(b *testing.B) {
	for _, tc := range []struct {
		name string
		pcm  []int16
	}{
		{"silence", make([]int16, 160)},
		{"key", keyTone('5', 20*time.Millisecond, -6, 0, 0)},
	} {
		b.Run(fmt.Sprintf("%s-20ms", tc.name), func(b *testing.B) {
			keys := 0
			d := NewDTMFDetector(func(byte) { keys++ })
			b.SetBytes(2 * 160)
			b.ReportAllocs()
			for b.Loop() {
				d.WriteAudio(tc.pcm)
			}
		})
	}
}
