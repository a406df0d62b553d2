package media

import (
	"testing"
	"time"
)

// mixRig is three phones (a, b, c) talking through three legs (x, y, z) of
// one mixer: each phone plays its own tone and taps what it hears.
type mixRig struct {
	phones, legs []*Leg
	heard        []*recorder
	mixer        *Mixer
}

func newMixRig(t *testing.T, tones []float64, ptimes []int, codecs []Codec) *mixRig {
	t.Helper()
	e := newEngineAt(t, "127.0.5.30", Config{Shards: 1})
	r := &mixRig{}
	first := newTestLeg(t, e, "leg-0")
	r.mixer = e.NewMixer(first)
	for i, hz := range tones {
		phone := newTestLeg(t, e, "phone")
		leg := first
		if i > 0 {
			var err error
			if leg, err = e.NewLegNear("leg", first); err != nil {
				t.Fatal(err)
			}
		}
		connect(phone, leg, codecs[i], 101, ptimes[i])
		rec := newRecorder(8000)
		phone.AddTap(rec)
		r.phones, r.legs, r.heard = append(r.phones, phone), append(r.legs, leg), append(r.heard, rec)
		phone.PlayLoop(NewPrompt("tone", Tone(hz, time.Second, 0.2)))
	}
	return r
}

// Three parties: each hears the other two and not itself, whatever its
// codec and packet time (the mix is cut into each leg's own packets).
func TestMixerEachHearsTheOthers(t *testing.T) {
	tones := []float64{440, 1000, 1700}
	r := newMixRig(t, tones, []int{20, 30, 20}, []Codec{PCMU, PCMA, PCMU})
	for _, leg := range r.legs {
		r.mixer.Add(leg, Talk)
	}
	for i, rec := range r.heard {
		pcm, _ := rec.wait(t)
		pcm = pcm[2000:] // past the start of the mix
		for j, hz := range tones {
			p := Goertzel(pcm, hz)
			switch {
			case i == j && p > MinTonePower:
				t.Errorf("party %d hears its own %v Hz (power %.4f)", i, hz, p)
			case i != j && p < 0.02:
				t.Errorf("party %d hears %v Hz at power %.4f, want the other's tone (about 0.04)", i, hz, p)
			}
		}
	}
	// The 30 ms party got 30 ms packets of the mix.
	st := r.phones[1].Stats()
	if st.PacketsIn == 0 || st.BytesIn != st.PacketsIn*(12+240) {
		t.Errorf("the 30 ms party got %d packets of %d bytes in all, want packets of 240 samples", st.PacketsIn, st.BytesIn)
	}
}

// A listener (a supervisor listening in) hears everyone and is heard by
// nobody.
func TestMixerListenerIsNotHeard(t *testing.T) {
	tones := []float64{440, 1000, 2500}
	r := newMixRig(t, tones, []int{20, 20, 20}, []Codec{PCMU, PCMU, PCMA})
	r.mixer.Add(r.legs[0], Talk)
	r.mixer.Add(r.legs[1], Talk)
	r.mixer.Add(r.legs[2], Listen)
	caller, _ := r.heard[0].wait(t)
	supervisor, _ := r.heard[2].wait(t)
	if p := Goertzel(caller[2000:], 2500); p > MinTonePower {
		t.Errorf("the caller hears the listener's 2500 Hz (power %.4f)", p)
	}
	for _, hz := range []float64{440, 1000} {
		if p := Goertzel(supervisor[2000:], hz); p < 0.02 {
			t.Errorf("the listener hears %v Hz at power %.4f, want both parties", hz, p)
		}
	}
	// Taking a party out: the mix goes on for the others.
	r.mixer.Remove(r.legs[1])
	if r.legs[1].state.Load().mixer != nil {
		t.Error("a removed leg still names the mixer")
	}
	r.mixer.Close()
	if set := r.legs[0].shard.audio.Load(); len(set.mixers) != 0 {
		t.Errorf("a closed mixer is still clocked: %d mixers", len(set.mixers))
	}
}

func TestClip16(t *testing.T) {
	for _, c := range []struct {
		in   int32
		want int16
	}{{0, 0}, {32767, 32767}, {40000, 32767}, {-32768, -32768}, {-70000, -32768}, {-5, -5}} {
		if got := clip16(c.in); got != c.want {
			t.Errorf("clip16(%d) = %d, want %d", c.in, got, c.want)
		}
	}
}

// countTap counts the frames it gets.
type countTap struct{ frames int }

func (c *countTap) WriteAudio([]int16) { c.frames++ }

// The shard's audio clock: one frame per 20 ms, up to three after a late
// tick, and a longer stall skipped rather than replayed.
func TestAudioClockCatchesUpAndSkips(t *testing.T) {
	s := newShard(timeouts{})
	l := &Leg{jb: newJitterBuffer(PCMU)}
	tap := &countTap{}
	l.state.Store(&legState{taps: []Tap{tap}})
	s.audio.Store(&audioSet{legs: []*Leg{l}})
	t0 := time.Unix(100, 0)
	for _, step := range []struct {
		at   time.Duration
		want int
	}{
		{0, 1},
		{20 * time.Millisecond, 2},
		{85 * time.Millisecond, 5}, // late: frames 2, 3, 4
		{2 * time.Second, 8},       // a stall: three frames, the rest skipped
		{2020 * time.Millisecond, 9},
	} {
		s.tickAudio(t0.Add(step.at))
		if tap.frames != step.want {
			t.Errorf("at %v: %d frames, want %d", step.at, tap.frames, step.want)
		}
	}
}

func BenchmarkMixThree(b *testing.B) {
	s := newShard(timeouts{})
	m := &Mixer{shard: s}
	var parts []*mixPart
	for range 3 {
		l := &Leg{jb: newJitterBuffer(PCMU)}
		l.state.Store(&legState{params: Params{PtimeMS: 20}}) // not negotiated: nothing is sent
		copy(l.played[:], Tone(440, 20*time.Millisecond, 0.2))
		parts = append(parts, &mixPart{leg: l})
	}
	m.cur.Store(&parts)
	now := time.Unix(1, 0)
	b.ReportAllocs()
	for range b.N {
		m.mix(now, s)
	}
}
