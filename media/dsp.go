package media

import (
	"math"
	"time"
)

// SampleRate is the G.711 sampling and RTP clock rate in Hz.
const SampleRate = 8000

// Tone returns d of an 8 kHz linear PCM sine at freqHz. amplitude is a
// fraction of full scale (clamped to 0..1).
func Tone(freqHz float64, d time.Duration, amplitude float64) []int16 {
	amplitude = math.Max(0, math.Min(1, amplitude))
	n := int(d * SampleRate / time.Second)
	if n <= 0 {
		return nil
	}
	pcm := make([]int16, n)
	step := 2 * math.Pi * freqHz / SampleRate
	for i := range pcm {
		pcm[i] = int16(math.Round(amplitude * math.MaxInt16 * math.Sin(step*float64(i))))
	}
	return pcm
}

// Goertzel returns the power of freqHz in pcm (8 kHz), normalised so that a
// Tone of that frequency with amplitude a gives about a*a (a full-scale tone
// about 1). Only ratios and rough levels are meaningful.
func Goertzel(pcm []int16, freqHz float64) float64 {
	if len(pcm) == 0 {
		return 0
	}
	coeff := 2 * math.Cos(2*math.Pi*freqHz/SampleRate)
	var s1, s2 float64
	for _, x := range pcm {
		s := float64(x)/32768 + coeff*s1 - s2
		s2, s1 = s1, s
	}
	power := s1*s1 + s2*s2 - coeff*s1*s2
	half := float64(len(pcm)) / 2
	return power / (half * half)
}

// MinTonePower is the least Goertzel power DominantFrequency takes for a
// tone: that of a tone 30 dB below full scale (amplitude about 0.03). Silence,
// line noise and a faint leak between streams stay below it, so they never
// pass as a tone.
const MinTonePower = 1e-3

// DominantFrequency returns the candidate with the most power in pcm, or 0
// when there are no candidates or even the strongest has less power than
// MinTonePower.
func DominantFrequency(pcm []int16, candidates ...float64) float64 {
	best, bestPower := 0.0, 0.0
	for _, f := range candidates {
		if p := Goertzel(pcm, f); p > bestPower {
			best, bestPower = f, p
		}
	}
	if bestPower < MinTonePower {
		return 0
	}
	return best
}
