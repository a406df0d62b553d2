package media

import "time"

// timeoutCheckInterval is how often a shard looks for legs without RTP.
// Timeouts are tens of seconds: a second of slack costs nothing, and an
// idle shard wakes once a second instead of fifty times.
const timeoutCheckInterval = time.Second

// timeouts are the RTP timeouts of Config; 0 disables one.
type timeouts struct {
	active, held time.Duration
}

func (t timeouts) enabled() bool { return t.active > 0 || t.held > 0 }

// limit returns the timeout of a leg under p (0: none).
func (t timeouts) limit(p *Params) time.Duration {
	if p.Direction != SendRecv { // a held peer often sends nothing
		return t.held
	}
	return t.active
}

// addLeg makes l's timeout this shard's business.
func (s *shard) addLeg(l *Leg) {
	s.mu.Lock()
	l.shardSlot = len(s.legs)
	s.legs = append(s.legs, l)
	s.mu.Unlock()
}

// removeLeg forgets l in O(1): the last leg takes its slot.
func (s *shard) removeLeg(l *Leg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := l.shardSlot
	if i < 0 || i >= len(s.legs) || s.legs[i] != l {
		return
	}
	last := len(s.legs) - 1
	s.legs[i] = s.legs[last]
	s.legs[i].shardSlot = i
	s.legs[last] = nil
	s.legs = s.legs[:last]
	l.shardSlot = -1
}

// checkTimeouts reports, once, every negotiated leg that accepted no RTP
// for its timeout. It runs on the shard goroutine.
func (s *shard) checkTimeouts(now time.Time) {
	s.mu.Lock()
	for _, l := range s.legs {
		if l.timeoutReported {
			continue
		}
		st := l.state.Load()
		limit := s.timeouts.limit(&st.params)
		if !st.negotiated || limit <= 0 {
			continue
		}
		since := max(l.stats.lastReceived.Load(), l.stats.paramsAt.Load())
		if now.Sub(time.Unix(0, since)) >= limit {
			l.timeoutReported = true
			close(l.timedOut)
			l.log.Info("rtp timeout", "silent_for", now.Sub(time.Unix(0, since)).Round(time.Millisecond), "limit", limit, "direction", st.params.Direction)
		}
	}
	s.mu.Unlock()
	s.checks.Add(1)
}
