package sip

import (
	"context"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/hotline-pbx/hotline/config"
)

// Qualify: each registered device gets an OPTIONS once per interval, at its
// own phase of the interval, so N devices cost about N/interval probes per
// second instead of one burst of N replies (which overflowed the socket's
// receive buffer at 1,000 agents). One scheduler goroutine wakes
// qualifyTicks times per interval; probes run in at most
// maxProbesInFlight goroutines. Any answer from the device proves it (and
// its NAT pinhole) alive; a device that misses qualifyMisses probes in a
// row is unreachable, not deleted, and back on its first answer.

const (
	qualifyMisses     = 2
	qualifyTicks      = 64
	maxProbesInFlight = 256
	maxProbeWait      = 5 * time.Second
)

func (s *Server) qualifyInterval() time.Duration {
	if s.opts.Qualify > 0 {
		return s.opts.Qualify
	}
	if d := s.opts.Config().SIP.QualifyInterval.Duration; d > 0 {
		return d
	}
	return config.DefaultQualifyInterval
}

// restoreBindings loads the persisted registrations at start-up; the
// qualify loop probes them at once.
func (s *Server) restoreBindings(ctx context.Context) {
	if s.opts.Bindings == nil {
		return
	}
	saved, err := s.opts.Bindings.LoadBindings(ctx)
	if err != nil {
		s.log.Error("registrations not restored; phones come back as they register again", "error", err)
		return
	}
	cfg := s.opts.Config()
	kept := saved[:0]
	for _, b := range saved {
		if cfg.Agent(b.User) == nil { // deleted from the config while we were down
			s.opts.Bindings.DeleteBinding(b.User, b.Key)
			continue
		}
		kept = append(kept, b)
	}
	n := s.reg.restore(kept)
	s.log.Info("registrations restored", "live", n, "stored", len(saved))
}

func (s *Server) qualifyLoop(ctx context.Context) {
	inFlight := make(chan struct{}, maxProbesInFlight)
	tick := time.NewTimer(0)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		interval := s.qualifyInterval()
		s.reg.Expire()
		for _, b := range s.reg.dueProbes(interval) {
			select {
			case inFlight <- struct{}{}:
			case <-ctx.Done():
				return
			}
			go func() {
				defer func() { <-inFlight }()
				answered := s.probe(ctx, b, min(interval, maxProbeWait))
				if ctx.Err() == nil { // shutting down proves nothing about the phone
					s.reg.probed(b, answered)
				}
			}()
		}
		tick.Reset(min(max(interval/qualifyTicks, 5*time.Millisecond), time.Second))
	}
}

// probe sends one OPTIONS to device b and reports whether it answered.
// Through a Path, a timeout or failure response may come from a proxy that
// could not reach the device: that is no answer from the device.
func (s *Server) probe(ctx context.Context, b Binding, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req := sip.NewRequest(sip.OPTIONS, b.Contact)
	s.toFlow(req, b)
	s.stamp(req)
	res, err := s.client.Do(ctx, req)
	if err != nil {
		return false
	}
	if len(b.Path) > 0 {
		switch res.StatusCode {
		case 408, 480, 503, 504:
			return false
		}
	}
	return true
}
