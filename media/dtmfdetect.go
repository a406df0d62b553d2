package media

import "math"

// In-band DTMF: some trunks send the caller's keys only as tones in the audio.
// DTMFDetector finds them with Goertzel filters over 8 kHz linear PCM, the way
// ITU-T Q.24 receivers do: a key is a row tone plus a column tone, both loud
// enough, neither more than a few dB louder than the other (twist), each well
// above its neighbours, with little energy at their second harmonics and
// together holding most of the signal's energy. Speech and music spread their
// energy over many harmonics and fail those checks.

// The keypad: row tones (low group) and column tones (high group), in Hz.
var (
	dtmfRowHz = [4]float64{697, 770, 852, 941}
	dtmfColHz = [4]float64{1209, 1336, 1477, 1633}
)

const dtmfKeypad = "123A456B789C*0#D" // [row*4+col]

const (
	// dtmfBlockSamples is one analysis block, 12.75 ms: short enough that a
	// 40 ms tone always fills two whole blocks, long enough to tell 697 Hz
	// from 770 Hz.
	dtmfBlockSamples = 102
	// A key is reported after dtmfOnBlocks blocks in a row hear it (a tone
	// under about 20 ms never is) and ends after dtmfOffBlocks blocks in a row
	// do not: a dropout of 10 ms touches at most two blocks and does not make
	// a second key, while a pause of 40 ms always ends the first.
	dtmfOnBlocks  = 2
	dtmfOffBlocks = 3

	// dtmfMinPower: each tone at least -30 dBm0 (amplitude 0.022 of full scale).
	dtmfMinPower = 0.022 * 0.022
	// Twist: the column tone may be up to 8 dB weaker (normal twist) or 4 dB
	// stronger (reverse twist) than the row tone.
	dtmfNormalTwist  = 6.31 // 8 dB
	dtmfReverseTwist = 2.51 // 4 dB
	// dtmfRelativePeak: every other tone of the same group 8 dB below.
	dtmfRelativePeak = 6.31
	// Second harmonics must stay below their fundamental. The row tones'
	// harmonics (1394-1882 Hz) lie within a block's resolution of column
	// tones (1336-1633 Hz), which leak into them, so their limit is loose;
	// the column tones' harmonics (2418-3266 Hz) are clear of every key tone.
	dtmfRowHarmonic = 1.58 // 2 dB
	dtmfColHarmonic = 31.6 // 15 dB
	// dtmfToneShare is the least share of the block's energy the two tones
	// must hold.
	dtmfToneShare = 0.7
)

// dtmfCoeffs are the Goertzel coefficients: the 8 key tones, then their
// second harmonics in the same order.
var dtmfCoeffs = func() (c [16]float32) {
	for i := range 4 {
		c[i] = goertzelCoeff(dtmfRowHz[i])
		c[4+i] = goertzelCoeff(dtmfColHz[i])
		c[8+i] = goertzelCoeff(2 * dtmfRowHz[i])
		c[12+i] = goertzelCoeff(2 * dtmfColHz[i])
	}
	return c
}()

func goertzelCoeff(hz float64) float32 {
	return float32(2 * math.Cos(2*math.Pi*hz/SampleRate))
}

// DTMFDetector reports each key pressed in 8 kHz linear PCM once, by calling
// onDigit on the goroutine that calls WriteAudio. It implements Tap, so it
// can listen to a leg: leg.AddTap(NewDTMFDetector(func(d byte) {
// _ = leg.InjectDTMF(d) })). WriteAudio allocates nothing. A detector
// serves one stream: it is not safe for concurrent use.
type DTMFDetector struct {
	onDigit func(digit byte)
	block   [dtmfBlockSamples]float32
	filled  int
	last    byte // what the previous block heard; 0: no key
	run     int  // blocks in a row that heard last
	current byte // the key reported and still held; 0: none
	misses  int  // blocks in a row without current
}

// NewDTMFDetector returns a detector that calls onDigit with '0'-'9', '*',
// '#' or 'A'-'D' once per key press.
func NewDTMFDetector(onDigit func(digit byte)) *DTMFDetector {
	return &DTMFDetector{onDigit: onDigit}
}

// WriteAudio implements Tap: it takes the next samples of the stream.
func (d *DTMFDetector) WriteAudio(pcm []int16) {
	for len(pcm) > 0 {
		take := min(len(pcm), dtmfBlockSamples-d.filled)
		for i, s := range pcm[:take] {
			d.block[d.filled+i] = float32(s) * (1.0 / 32768)
		}
		d.filled += take
		pcm = pcm[take:]
		if d.filled == dtmfBlockSamples {
			d.filled = 0
			d.decide(d.analyse())
		}
	}
}

// decide follows the keys block by block and reports each new one.
func (d *DTMFDetector) decide(heard byte) {
	if heard != 0 && heard == d.last {
		d.run++
	} else {
		d.run = 1
	}
	d.last = heard
	if d.current != 0 {
		if heard == d.current {
			d.misses = 0
			return
		}
		if d.misses++; d.misses < dtmfOffBlocks {
			return
		}
		d.current = 0
	}
	if heard != 0 && d.run >= dtmfOnBlocks {
		d.current, d.misses = heard, 0
		d.onDigit(heard)
	}
}

// analyse returns the key the current block holds, or 0.
func (d *DTMFDetector) analyse() byte {
	var energy float32
	for _, x := range d.block {
		energy += x * x
	}
	var power [8]float32
	d.goertzel4(dtmfCoeffs[0:4], power[0:4])
	d.goertzel4(dtmfCoeffs[4:8], power[4:8])
	row, col := strongest(power[0:4]), strongest(power[4:8])
	rowPower, colPower := power[row], power[4+col]
	switch {
	case rowPower < dtmfMinPower || colPower < dtmfMinPower:
		return 0
	case colPower > rowPower*dtmfReverseTwist || colPower*dtmfNormalTwist < rowPower:
		return 0
	case rowPower+colPower < 2*dtmfToneShare*energy/dtmfBlockSamples:
		// A pure pair has rowPower+colPower = 2 * its mean square.
		return 0
	}
	for i := range 4 {
		if (i != row && power[i]*dtmfRelativePeak > rowPower) || (i != col && power[4+i]*dtmfRelativePeak > colPower) {
			return 0
		}
	}
	// Only a block that got this far pays for the second harmonics.
	harmonics := [4]float32{dtmfCoeffs[8+row], dtmfCoeffs[12+col]}
	var harmonic [4]float32
	d.goertzel4(harmonics[:], harmonic[:])
	if harmonic[0]*dtmfRowHarmonic > rowPower || harmonic[1]*dtmfColHarmonic > colPower {
		return 0
	}
	return dtmfKeypad[row*4+col]
}

// goertzel4 runs four Goertzel filters (coefficients c) over the block at
// once, so that their dependency chains overlap, and writes each one's power,
// scaled so that a tone of amplitude a has power a*a (as Goertzel does).
func (d *DTMFDetector) goertzel4(c, power []float32) {
	c0, c1, c2, c3 := c[0], c[1], c[2], c[3]
	var a1, a2, b1, b2, e1, e2, f1, f2 float32
	for _, x := range d.block {
		a1, a2 = x+c0*a1-a2, a1
		b1, b2 = x+c1*b1-b2, b1
		e1, e2 = x+c2*e1-e2, e1
		f1, f2 = x+c3*f1-f2, f1
	}
	const scale = 1 / float32(dtmfBlockSamples/2*dtmfBlockSamples/2)
	power[0] = (a1*a1 + a2*a2 - c0*a1*a2) * scale
	power[1] = (b1*b1 + b2*b2 - c1*b1*b2) * scale
	power[2] = (e1*e1 + e2*e2 - c2*e1*e2) * scale
	power[3] = (f1*f1 + f2*f2 - c3*f1*f2) * scale
}

// strongest returns the index of the largest of p.
func strongest(p []float32) int {
	best := 0
	for i, v := range p {
		if v > p[best] {
			best = i
		}
	}
	return best
}
