package sip

import (
	"context"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Qualify: every interval expired bindings are dropped and each
// registered agent gets an OPTIONS over its
// own flow. Any response proves the phone (and its NAT pinhole) alive; an
// agent whose phone misses qualifyMisses probes in a row is dropped, so
// the ACD stops ringing a phone that is gone.

const (
	defaultQualifyInterval = 30 * time.Second
	qualifyMisses          = 2
)

func (s *Server) qualifyLoop(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = defaultQualifyInterval
	}
	missed := make(map[string]int)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.reg.Expire()
		bindings := s.reg.Bindings()
		var mu sync.Mutex
		var wg sync.WaitGroup
		alive := make(map[string]bool, len(bindings))
		source := make(map[string]string, len(bindings))
		for _, b := range bindings {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok := s.probe(ctx, b, min(interval, 5*time.Second))
				mu.Lock()
				alive[b.User], source[b.User] = ok, b.Source
				mu.Unlock()
			}()
		}
		wg.Wait()
		for user := range missed {
			if _, still := alive[user]; !still {
				delete(missed, user)
			}
		}
		for user, ok := range alive {
			if ok {
				delete(missed, user)
				continue
			}
			missed[user]++
			if missed[user] >= qualifyMisses {
				s.log.Warn("agent unreachable; registration dropped", "agent", user, "missed_probes", missed[user])
				delete(missed, user)
				s.reg.RemoveFlow(user, source[user])
			}
		}
	}
}

// probe sends one OPTIONS to b's flow and reports whether anything answered.
func (s *Server) probe(ctx context.Context, b Binding, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req := sip.NewRequest(sip.OPTIONS, b.Contact)
	s.toFlow(req, b)
	_, err := s.client.Do(ctx, req)
	return err == nil
}
