package media

import (
	"math"
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
