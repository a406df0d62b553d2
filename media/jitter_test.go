package media

import (
	"math/rand/v2"
	"testing"
	"time"
)

// jbFeed is a sender and a playout clock for the jitter buffer: packets of
// ptime ms of a tone, 20 ms frames pulled on a steady clock.
type jbFeed struct {
	b     *jitterBuffer
	tone  []byte // PCMU
	ts    uint32
	start time.Time
	out   []int16
}

func newJBFeed(hz float64) *jbFeed {
	tone := Tone(hz, 10*time.Second, 0.3)
	enc := make([]byte, len(tone))
	EncodeFrame(PCMU, enc, tone)
	return &jbFeed{b: newJitterBuffer(PCMU), tone: enc, ts: 1000, start: time.Unix(1000, 0)}
}

// packet returns packet k (of n samples) and when it was sent.
func (f *jbFeed) packet(k, n int) (uint32, []byte, time.Time) {
	at := f.start.Add(time.Duration(k*n) * samplePeriod)
	return f.ts + uint32(k*n), f.tone[k*n : (k+1)*n], at
}

func (f *jbFeed) pull(frames int) {
	var pcm [160]int16
	for range frames {
		f.b.frame(pcm[:])
		f.out = append(f.out, pcm[:]...)
	}
}

func TestJitterBufferInOrderIsTheTone(t *testing.T) {
	f := newJBFeed(1000)
	for k := range 100 {
		ts, p, at := f.packet(k, 160)
		f.b.put(7, ts, p, at)
		f.pull(1)
	}
	st := f.b.snapshot()
	if st.ChunksLost != 0 || st.Late != 0 || st.Resets != 1 {
		t.Errorf("in-order stream: %+v", st)
	}
	if hz := DominantFrequency(f.out[800:], 500, 1000, 2000); hz != 1000 {
		t.Errorf("played %v Hz, want 1000", hz)
	}
	if st.DelayMS != 20 {
		t.Errorf("delay %d ms with no jitter, want the 20 ms minimum", st.DelayMS)
	}
}

// Reordered packets come out as if they had arrived in order.
func TestJitterBufferReorders(t *testing.T) {
	inOrder, swapped := newJBFeed(700), newJBFeed(700)
	for k := 0; k < 100; k += 2 {
		for _, f := range []*jbFeed{inOrder, swapped} {
			a, b := k, k+1
			if f == swapped && k > 0 { // both start alike
				a, b = b, a
			}
			for _, i := range []int{a, b} {
				ts, p, at := f.packet(i, 160)
				f.b.put(1, ts, p, at)
			}
			f.pull(2)
		}
	}
	for i := range inOrder.out {
		if inOrder.out[i] != swapped.out[i] {
			t.Fatalf("sample %d differs: %d in order, %d swapped", i, inOrder.out[i], swapped.out[i])
		}
	}
	if st := swapped.b.snapshot(); st.ChunksLost != 0 {
		t.Errorf("reordering lost audio: %+v", st)
	}
}

// One packet in ten lost: each loss is concealed (two 10 ms chunks), the
// tone goes on with power, nothing else is counted lost.
func TestJitterBufferConcealsLoss(t *testing.T) {
	f := newJBFeed(1000)
	for k := range 200 {
		if k%10 != 5 {
			ts, p, at := f.packet(k, 160)
			f.b.put(1, ts, p, at)
		}
		f.pull(1)
	}
	st := f.b.snapshot()
	if st.ChunksLost != 40 {
		t.Errorf("%d chunks lost for 20 lost packets of 20 ms, want 40", st.ChunksLost)
	}
	if hz := DominantFrequency(f.out[800:], 500, 1000, 2000); hz != 1000 {
		t.Errorf("played %v Hz, want 1000", hz)
	}
}

// 30 ms packets come out as steady 20 ms frames.
func TestJitterBufferRepacketises30ms(t *testing.T) {
	f := newJBFeed(440)
	k := 0
	for tick := range 150 { // 3 s of 20 ms frames, 2 s... fed 30 ms at a time
		for int32(uint32((k+1)*240)-uint32((tick+2)*160)) <= 0 {
			ts, p, at := f.packet(k, 240)
			f.b.put(1, ts, p, at)
			k++
		}
		f.pull(1)
	}
	if st := f.b.snapshot(); st.ChunksLost != 0 || st.Late != 0 {
		t.Errorf("30 ms input: %+v", st)
	}
	if hz := DominantFrequency(f.out[1600:], 300, 440, 1000); hz != 440 {
		t.Errorf("played %v Hz, want 440", hz)
	}
}

// Arrival jitter of up to ±15 ms grows the playout delay from 20 ms; the
// audio that arrives in time is all played.
func TestJitterBufferAdaptsToJitter(t *testing.T) {
	f := newJBFeed(1000)
	rng := rand.New(rand.NewPCG(1, 2))
	type arrival struct {
		k  int
		at time.Time
	}
	var queue []arrival
	for k := range 500 {
		_, _, at := f.packet(k, 160)
		queue = append(queue, arrival{k, at.Add(time.Duration(rng.IntN(30)) * time.Millisecond)})
	}
	clock := f.start
	for tick := range 520 {
		clock = f.start.Add(time.Duration(tick) * 20 * time.Millisecond)
		rest := queue[:0]
		for _, a := range queue {
			if !a.at.After(clock) {
				ts, p, _ := f.packet(a.k, 160)
				f.b.put(1, ts, p, a.at)
			} else {
				rest = append(rest, a)
			}
		}
		queue = rest
		f.pull(1)
	}
	st := f.b.snapshot()
	if st.DelayMS < 40 || st.DelayMS > 60 {
		t.Errorf("delay %d ms for 30 ms of arrival spread, want 40-60", st.DelayMS)
	}
	if st.JitterMS < 5 {
		t.Errorf("jitter measured %.1f ms for up to 30 ms of spread", st.JitterMS)
	}
	if lost := float64(st.Late) / (500 * 160); lost > 0.02 {
		t.Errorf("%.1f%% of the audio came too late for the adapted delay (%+v)", 100*lost, st)
	}
	if hz := DominantFrequency(f.out[len(f.out)-8000:], 500, 1000, 2000); hz != 1000 {
		t.Errorf("played %v Hz, want 1000", hz)
	}
}

// A new SSRC or a far timestamp restarts the buffer; nothing is put: silence.
func TestJitterBufferRestartsAndStartsSilent(t *testing.T) {
	b := newJitterBuffer(PCMA)
	var pcm [160]int16
	if b.frame(pcm[:]) {
		t.Error("a buffer nothing was put in says it played audio")
	}
	tone := make([]byte, 160)
	EncodeFrame(PCMA, tone, Tone(1000, 20*time.Millisecond, 0.3))
	now := time.Unix(1, 0)
	b.put(1, 100, tone, now)
	b.put(2, 100, tone, now) // another SSRC
	b.put(2, 100+1_000_000, tone, now)
	if st := b.snapshot(); st.Resets != 3 {
		t.Errorf("%d restarts, want 3 (first, new SSRC, timestamp jump)", st.Resets)
	}
}

func FuzzJitterBuffer(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8}, uint8(3))
	f.Fuzz(func(t *testing.T, ops []byte, pulls uint8) {
		b := newJitterBuffer(PCMU)
		var pcm [160]int16
		now := time.Unix(1, 0)
		for i := 0; i+4 <= len(ops); i += 4 {
			ts := uint32(ops[i])<<16 | uint32(ops[i+1])<<8 | uint32(ops[i+2])
			n := int(ops[i+3])
			payload := make([]byte, n)
			b.put(uint32(ops[i]&1), ts, payload, now.Add(time.Duration(i)*time.Millisecond))
			for range pulls % 4 {
				b.frame(pcm[:])
			}
		}
	})
}

func BenchmarkJitterBuffer(b *testing.B) {
	f := newJBFeed(1000)
	var pcm [160]int16
	b.ReportAllocs()
	for i := range b.N {
		k := i % 400
		ts, p, at := f.packet(k, 160)
		f.b.put(1, ts+uint32(i/400)*400*160, p, at)
		f.b.frame(pcm[:])
	}
}
