package media

import "math"

// Converting prompts recorded at other rates to 8 kHz: a Kaiser-windowed sinc
// low-pass evaluated at each output instant (band-limited interpolation), so
// that what lies above 4 kHz is removed before it could fold back into the
// telephone band. Decimating without the filter would turn a 6 kHz hiss at
// 48 kHz into a 2 kHz whistle. It runs once per prompt at load, never per
// packet.
const (
	// The passband ends at 3.5 kHz and the stopband starts at 4.4 kHz: what
	// lies between folds to 3.6-4 kHz, above the telephone band.
	resamplePassHz = 3500
	resampleStopHz = 4400
	// resampleAttenuationDB is the stopband rejection the window is built for.
	resampleAttenuationDB = 80
	// resampleMaxPhases bounds the table of precomputed filter phases; rates
	// whose ratio to 8 kHz needs more use the nearest phase (a timing error
	// under 1/2048 of an input sample).
	resampleMaxPhases = 1024
)

// resampleTo8k converts mono samples at rate Hz (> 8000; full scale ±1) to
// 8 kHz linear PCM.
func resampleTo8k(in []float32, rate int) []int16 {
	k := newResampleKernel(rate)
	out := make([]int16, int(int64(len(in))*SampleRate/int64(rate)))
	for n := range out {
		// Output sample n lies at input position n*rate/8000 = i + phase/phases.
		pos := int64(n) * int64(rate)
		i, rem := int(pos/SampleRate), pos%SampleRate
		phase := int((rem*int64(k.phases) + SampleRate/2) / SampleRate)
		if phase == k.phases {
			i, phase = i+1, 0
		}
		taps := k.taps[phase*k.width : (phase+1)*k.width]
		first := i - k.half // input index of taps[0]
		lo, hi := max(0, -first), min(len(taps), len(in)-first)
		var acc float32
		for j := lo; j < hi; j++ {
			acc += taps[j] * in[first+j]
		}
		out[n] = toInt16(acc)
	}
	return out
}

// resampleKernel holds the filter taps for each fractional input position:
// taps[p*width+j] weighs input sample i-half+j for an output at i+p/phases.
type resampleKernel struct {
	phases, half, width int
	taps                []float32
}

func newResampleKernel(rate int) resampleKernel {
	fs := float64(rate)
	// Kaiser's estimates of the window's length and shape for the
	// attenuation and the transition band.
	transition := 2 * math.Pi * (resampleStopHz - resamplePassHz) / fs
	length := (resampleAttenuationDB - 8) / (2.285 * transition)
	beta := 0.1102 * (resampleAttenuationDB - 8.7)
	halfSpan := length / 2                               // in input samples
	cutoff := (resamplePassHz + resampleStopHz) / 2 / fs // cycles per input sample

	k := resampleKernel{phases: min(SampleRate/gcd(rate, SampleRate), resampleMaxPhases)}
	k.half = int(math.Ceil(halfSpan))
	k.width = 2*k.half + 1
	k.taps = make([]float32, k.phases*k.width)
	norm := besselI0(beta)
	weights := make([]float64, k.width)
	for p := range k.phases {
		frac := float64(p) / float64(k.phases)
		row := k.taps[p*k.width : (p+1)*k.width]
		var sum float64
		clear(weights)
		for j := range row {
			t := float64(j-k.half) - frac // input sample's distance from the output instant
			if math.Abs(t) >= halfSpan {
				continue
			}
			r := t / halfSpan
			w := 2 * cutoff * sinc(2*cutoff*t) * besselI0(beta*math.Sqrt(1-r*r)) / norm
			weights[j] = w
			sum += w
		}
		// Each phase passes DC at exactly unity gain.
		for j, w := range weights {
			row[j] = float32(w / sum)
		}
	}
	return k
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

// besselI0 is the modified Bessel function of the first kind, order 0, by its
// power series (converges fast for the arguments a Kaiser window uses).
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; term > 1e-12*sum; k++ {
		half := x / (2 * float64(k))
		term *= half * half
		sum += term
	}
	return sum
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// toInt16 converts a sample of full scale ±1 to 16-bit PCM, rounding and
// clipping.
func toInt16(x float32) int16 {
	v := math.Round(float64(x) * 32768)
	return int16(max(math.MinInt16, min(math.MaxInt16, v)))
}
