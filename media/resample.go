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
		taps := k.row(phase)
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
// row(p)[j] weighs input sample i-half+j for an output at i+p/phases. Rows
// are computed when first used: a short prompt at an odd rate needs few.
type resampleKernel struct {
	phases, half, width int
	halfSpan, cutoff    float64 // in input samples, cycles per input sample
	beta, norm          float64 // Kaiser window shape and I0(beta)
	taps                []float32
	ready               []bool
}

func newResampleKernel(rate int) *resampleKernel {
	fs := float64(rate)
	// Kaiser's estimates of the window's length and shape for the
	// attenuation and the transition band.
	transition := 2 * math.Pi * (resampleStopHz - resamplePassHz) / fs
	length := (resampleAttenuationDB - 8) / (2.285 * transition)
	k := &resampleKernel{
		phases:   min(SampleRate/gcd(rate, SampleRate), resampleMaxPhases),
		halfSpan: length / 2,
		cutoff:   (resamplePassHz + resampleStopHz) / 2 / fs,
		beta:     0.1102 * (resampleAttenuationDB - 8.7),
	}
	k.norm = besselI0(k.beta)
	k.half = int(math.Ceil(k.halfSpan))
	k.width = 2*k.half + 1
	k.taps = make([]float32, k.phases*k.width)
	k.ready = make([]bool, k.phases)
	return k
}

// row returns the taps of phase p, computing them the first time.
func (k *resampleKernel) row(p int) []float32 {
	row := k.taps[p*k.width : (p+1)*k.width]
	if k.ready[p] {
		return row
	}
	k.ready[p] = true
	frac := float64(p) / float64(k.phases)
	var sum float64
	for j := range row {
		t := float64(j-k.half) - frac // the input sample's distance from the output instant
		if math.Abs(t) >= k.halfSpan {
			continue
		}
		r := t / k.halfSpan
		w := 2 * k.cutoff * sinc(2*k.cutoff*t) * besselI0(k.beta*math.Sqrt(1-r*r)) / k.norm
		row[j] = float32(w)
		sum += w
	}
	// Each phase passes DC at exactly unity gain.
	for j := range row {
		row[j] = float32(float64(row[j]) / sum)
	}
	return row
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
