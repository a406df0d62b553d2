package media

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Mixer joins three or more legs (a supervisor listening in, whispering or
// barging), or two legs that cannot simply forward to each other (different
// packet times). Every 20 ms, on its shard's tick, it takes each
// participant's de-jittered frame, sums those that speak in int32, and
// sends each participant that hears the sum of the others (N-1), clipped,
// in the participant's own codec and packet time. Participants should live
// on the mixer's shard (Engine.NewLegNear) so that all frames of a tick are
// played out together.
type Mixer struct {
	engine *Engine
	shard  *shard
	writer uint64 // the mixer's identity on its participants' outgoing streams

	mu    sync.Mutex // serialises changes
	parts []*mixPart // copy-on-write; the shard reads the current slice
	cur   atomic.Pointer[[]*mixPart]
}

// Role says what a participant does in a mix.
type Role uint8

const (
	// Talk: hears the others and is heard by them (a caller, an agent, a
	// supervisor who barged in).
	Talk Role = iota
	// Listen: hears everyone, is heard by nobody (a supervisor listening in).
	Listen
)

// mixPart is one participant: its leg, its role, and the mixed audio not
// yet sent (a 30 ms leg gets its packets every other tick or so).
type mixPart struct {
	leg     *Leg
	role    Role
	pending [2 * maxFrameSamples]int16
	queued  int
	scratch [maxFrameSamples]int16
}

// maxFrameSamples is the longest packet a mix is cut into (120 ms).
const maxFrameSamples = maxPtimeMS * SampleRate / 1000

// NewMixer returns an empty mixer on near's shard (or the next shard when
// near is nil).
func (e *Engine) NewMixer(near *Leg) *Mixer {
	s := e.pickShard(near)
	return &Mixer{engine: e, shard: s, writer: e.nextJobID.Add(1)}
}

// Add makes l a participant with role; a leg already in another mixer or
// bridge is taken out of it first. Playback on l stops.
func (m *Mixer) Add(l *Leg, role Role) {
	l.detach()
	l.StopPlay()
	m.mu.Lock()
	parts := slices.Clone(m.parts)
	parts = append(parts, &mixPart{leg: l, role: role})
	m.parts = parts
	m.cur.Store(&parts)
	first := len(parts) == 1
	m.mu.Unlock()
	l.update(func(st *legState) { st.mixer = m })
	l.out.mu.Lock()
	l.out.writer = writerNone // the mix starts a new talk spurt
	l.out.mu.Unlock()
	l.syncAudio()
	if first {
		m.shard.changeAudio(func(set *audioSet) { set.mixers = append(set.mixers, m) })
	}
}

// Remove takes l out of the mix; the mixer stops when nobody is left.
func (m *Mixer) Remove(l *Leg) {
	m.mu.Lock()
	parts := slices.DeleteFunc(slices.Clone(m.parts), func(p *mixPart) bool { return p.leg == l })
	if len(parts) == len(m.parts) {
		m.mu.Unlock()
		return
	}
	m.parts = parts
	m.cur.Store(&parts)
	empty := len(parts) == 0
	m.mu.Unlock()
	l.update(func(st *legState) {
		if st.mixer == m {
			st.mixer = nil
		}
	})
	l.syncAudio()
	if empty {
		m.shard.changeAudio(func(set *audioSet) {
			set.mixers = slices.DeleteFunc(set.mixers, func(x *Mixer) bool { return x == m })
		})
	}
}

// Close takes every participant out.
func (m *Mixer) Close() {
	m.mu.Lock()
	parts := slices.Clone(m.parts)
	m.mu.Unlock()
	for _, p := range parts {
		m.Remove(p.leg)
	}
}

// mix makes one 20 ms frame of mixed audio for every participant that
// hears, and sends what is due. It runs on the shard goroutine, after the
// participants' frames were played out, and allocates nothing.
func (m *Mixer) mix(now time.Time, s *shard) {
	parts := m.cur.Load()
	if parts == nil {
		return
	}
	var sum [frame20]int32
	for _, p := range *parts {
		p.leg.lastPlayed(p.scratch[:frame20])
		if p.role == Talk {
			for i, v := range p.scratch[:frame20] {
				sum[i] += int32(v)
			}
		}
	}
	for _, p := range *parts {
		own := p.role == Talk
		out := p.pending[p.queued : p.queued+frame20]
		for i := range out {
			v := sum[i]
			if own {
				v -= int32(p.scratch[i])
			}
			out[i] = clip16(v)
		}
		p.queued += frame20
		p.flush(m.writer, now, s)
	}
}

// flush sends the whole packets of the participant's packet time that the
// pending audio holds, and keeps the rest for the next tick.
func (p *mixPart) flush(writer uint64, now time.Time, s *shard) {
	st := p.leg.state.Load()
	n := st.params.frameSamples()
	if !st.negotiated || n > maxFrameSamples {
		p.queued = 0
		return
	}
	for p.queued >= n {
		if p.leg.job.Load() == nil { // a prompt being played owns the stream
			payload := s.frame[:n]
			EncodeFrame(st.params.Codec, payload, p.pending[:n])
			p.leg.sendClocked(writer, st.params.PayloadType, payload, uint32(n), false, now, s.packet[:])
		}
		p.queued = copy(p.pending[:], p.pending[n:p.queued])
	}
}

// frame20 is the samples in one 20 ms frame, the unit of clocked audio.
const frame20 = 160

func clip16(v int32) int16 {
	switch {
	case v > 32767:
		return 32767
	case v < -32768:
		return -32768
	}
	return int16(v)
}
