package media

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestToneLengthAndPeak(t *testing.T) {
	pcm := Tone(1000, 50*time.Millisecond, 0.5)
	if len(pcm) != 400 {
		t.Fatalf("50 ms at 8 kHz = %d samples, want 400", len(pcm))
	}
	// 1000 Hz at 8 kHz: sample 2 is a quarter period, the peak.
	if want := int16(math.Round(0.5 * 32767)); pcm[2] != want {
		t.Errorf("peak sample = %d, want %d", pcm[2], want)
	}
	if pcm[0] != 0 || pcm[4] != 0 {
		t.Errorf("zero crossings = %d, %d, want 0, 0", pcm[0], pcm[4])
	}
}

func TestGoertzelLevelAndSelectivity(t *testing.T) {
	pcm := Tone(440, 200*time.Millisecond, 0.5)
	on := Goertzel(pcm, 440)
	if math.Abs(on-0.25) > 0.01 {
		t.Errorf("power of a 0.5 amplitude tone = %.4f, want about 0.25", on)
	}
	if off := Goertzel(pcm, 1000); off > on/1000 {
		t.Errorf("power at 1000 Hz = %.6f, want far below %.4f", off, on)
	}
	if got := Goertzel(nil, 440); got != 0 {
		t.Errorf("Goertzel(nil) = %v, want 0", got)
	}
}

func TestDominantFrequency(t *testing.T) {
	mix := Tone(1000, 100*time.Millisecond, 0.6)
	quiet := Tone(440, 100*time.Millisecond, 0.2)
	for i := range mix {
		mix[i] += quiet[i]
	}
	if got := DominantFrequency(mix, 440, 1000, 2000); got != 1000 {
		t.Errorf("DominantFrequency = %v, want 1000", got)
	}
	if got := DominantFrequency(mix); got != 0 {
		t.Errorf("DominantFrequency without candidates = %v, want 0", got)
	}
}

// Silence and noise must never pass as a tone; a tone above the floor does,
// however quiet the rest of the signal.
func TestDominantFrequencyNeedsPowerAboveTheFloor(t *testing.T) {
	const n = 2000 // 250 ms, as the end-to-end tests hear
	noise := func(peak int) []int16 {
		rng := rand.New(rand.NewPCG(1, 2))
		pcm := make([]int16, n)
		for i := range pcm {
			pcm[i] = int16(rng.IntN(2*peak+1) - peak)
		}
		return pcm
	}
	tests := []struct {
		name string
		pcm  []int16
		want float64
	}{
		{"silence", make([]int16, n), 0},
		{"noise at -40 dBFS", noise(328), 0},
		{"noise at -20 dBFS", noise(3277), 0},
		{"tone at -40 dBFS", Tone(440, 250*time.Millisecond, 0.01), 0},
		{"tone at -20 dBFS", Tone(440, 250*time.Millisecond, 0.1), 440},
		{"tone at -6 dBFS", Tone(1000, 250*time.Millisecond, 0.5), 1000},
	}
	for _, tt := range tests {
		if got := DominantFrequency(tt.pcm, 440, 1000); got != tt.want {
			t.Errorf("%s: DominantFrequency = %v, want %v (power at 440 Hz %.2g, 1000 Hz %.2g)",
				tt.name, got, tt.want, Goertzel(tt.pcm, 440), Goertzel(tt.pcm, 1000))
		}
	}
}
