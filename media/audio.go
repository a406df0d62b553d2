package media

import (
	"slices"
	"time"
)

// Clocked audio on a shard. A leg that has taps (a recording, a DTMF
// detector, a test's capture) or belongs to a mixer keeps a jitter buffer:
// its reader puts the audio in, and every shard tick plays one 20 ms frame
// out of it, hands the frame to its taps and leaves it for the shard's
// mixers. A tap is thus called on the shard goroutine, once per 20 ms,
// whatever the sender's packet time, reordering or loss: no goroutine is
// woken per packet, and the legs of one call (put on one shard) are played
// out in the same tick.

// audioSet is what a shard's tick plays out: replaced whole on a change
// (rare), read without a lock by the shard goroutine.
type audioSet struct {
	legs   []*Leg
	mixers []*Mixer
}

func (a *audioSet) empty() bool { return a == nil || len(a.legs)+len(a.mixers) == 0 }

// changeAudio swaps in a changed copy of the shard's audio set and wakes the
// shard, whose ticker runs while the set is not empty.
func (s *shard) changeAudio(change func(*audioSet)) {
	s.mu.Lock()
	next := &audioSet{}
	if cur := s.audio.Load(); cur != nil {
		next.legs, next.mixers = slices.Clone(cur.legs), slices.Clone(cur.mixers)
	}
	change(next)
	s.audio.Store(next)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// tickAudio plays out the frames due at now: frame k of the shard's audio
// clock is due at start + k*20ms. After a late tick it catches up by up to
// maxBurst frames; a longer stall is skipped, not replayed.
func (s *shard) tickAudio(now time.Time) {
	set := s.audio.Load()
	if set.empty() {
		s.audioStart = time.Time{}
		return
	}
	if s.audioStart.IsZero() {
		s.audioStart, s.audioFrames = now, 0
	}
	due := int64(now.Sub(s.audioStart)/tickInterval) + 1 - s.audioFrames
	if due > maxBurst {
		s.audioFrames += due - maxBurst // behind after a stall: skip the backlog
		due = maxBurst
	}
	for range due {
		for _, l := range set.legs {
			l.playout()
		}
		for _, m := range set.mixers {
			m.mix(now, s)
		}
		s.audioFrames++
	}
}

// playout takes the leg's next frame out of its jitter buffer and hands it
// to its taps. It runs on the shard goroutine.
func (l *Leg) playout() {
	l.playedMu.Lock()
	l.jb.frame(l.played[:])
	l.playedMu.Unlock()
	for _, t := range l.state.Load().taps {
		t.WriteAudio(l.played[:]) // only this goroutine writes played
	}
}

// lastPlayed copies the frame played out last into dst (a mixer on another
// shard than the leg reads it from there; on the same shard, in step).
func (l *Leg) lastPlayed(dst []int16) {
	l.playedMu.Lock()
	copy(dst, l.played[:])
	l.playedMu.Unlock()
}

// AddTap hands the audio received on this leg to t, one 20 ms frame of
// 8 kHz linear PCM every 20 ms, de-jittered, with losses concealed (silence
// before any audio came). Several taps get the same frames. t is called on
// the leg's shard goroutine: it must not block, must not keep pcm after
// returning, and of the leg's methods may call only InjectDTMF.
func (l *Leg) AddTap(t Tap) {
	l.update(func(st *legState) { st.taps = append(slices.Clone(st.taps), t) })
	l.syncAudio()
}

// RemoveTap stops handing audio to t.
func (l *Leg) RemoveTap(t Tap) {
	l.update(func(st *legState) {
		st.taps = slices.DeleteFunc(slices.Clone(st.taps), func(x Tap) bool { return x == t })
	})
	l.syncAudio()
}

// syncAudio puts the leg into its shard's audio set, or takes it out, as it
// now needs a jitter buffer or not.
func (l *Leg) syncAudio() {
	l.audioMu.Lock()
	defer l.audioMu.Unlock()
	st := l.state.Load()
	want := !l.closed.Load() && (len(st.taps) > 0 || st.mixer != nil)
	if want == l.inAudio {
		return
	}
	l.inAudio = want
	l.update(func(st *legState) { st.buffered = want })
	l.shard.changeAudio(func(set *audioSet) {
		if want {
			set.legs = append(set.legs, l)
		} else {
			set.legs = slices.DeleteFunc(set.legs, func(x *Leg) bool { return x == l })
		}
	})
}
