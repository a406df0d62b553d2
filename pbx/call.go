package pbx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hotline-pbx/hotline/ivr"
	"github.com/hotline-pbx/hotline/media"
	"github.com/hotline-pbx/hotline/sip"
	"github.com/hotline-pbx/hotline/store"
)

// Why a call's context ends, when it is not the caller's BYE.
var (
	errMediaTimeout = errors.New("no media from the caller")
	errShutdown     = errors.New("switch stopping")
)

// call is one inbound call's IVR program: it implements ivr.Call on top of
// the caller's SIP dialog and media leg.
type call struct {
	sw   *Switch
	snap *snapshot
	in   *sip.InboundCall
	log  *slog.Logger
	ses  *session
}

// HandleCall runs the trunk's IVR for an answered call and writes its
// record (when answered, when an agent answers, when it ends); it
// implements sip.CallHandler.
func (s *Switch) HandleCall(in *sip.InboundCall) {
	if in.Agent != "" {
		s.featureCall(in)
		return
	}
	ctx, cancel := context.WithCancelCause(in.Context())
	defer cancel(nil)
	stop := context.AfterFunc(s.ctx, func() { cancel(errShutdown) })
	defer stop()
	go func() { // a caller whose phone died (no RTP, no BYE) is not kept
		select {
		case <-in.Leg.MediaTimeout():
			cancel(errMediaTimeout)
		case <-ctx.Done():
		}
	}()

	c := &call{sw: s, snap: s.snap.Load(), in: in, log: s.log.With("call_id", in.ID)}
	c.ses = newSession(store.CallRecord{CallID: in.ID, Caller: in.Caller, DID: in.DID, Trunk: in.Trunk.Name, Start: in.Start})
	c.log = c.log.With("call", c.ses.id)
	c.ses.note(event{kind: evAnswered})
	s.records.Put(c.ses.record()) // a crash from here on leaves a row
	c.listenForKeyTones()

	tree := c.snap.cfg.IVRs[in.Trunk.IVR]
	_, err := ivr.Run(ctx, tree, c)
	if !c.ses.ended() {
		cause, side := c.endCause(ctx)
		if cause == store.CauseCallerIVR && c.rec().Queue != "" {
			cause = store.CauseCallerAbandoned
		}
		c.ses.note(event{kind: evEnded, cause: cause, side: side})
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		c.log.Warn("ivr", "error", err)
	}
	in.Hangup()
	c.ses.setQuality(store.SideCaller, in.Leg.Quality())
	rec := c.ses.record()
	s.records.Put(rec)
	c.log.Info("call ended", "record", recordLine(rec))
}

func (c *call) rec() store.CallRecord { return c.ses.record() }

// endCause says why the call's context ended, or that the IVR finished.
func (c *call) endCause(ctx context.Context) (store.Cause, store.Side) {
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errMediaTimeout):
		return store.CauseMediaTimeout, store.SideCaller
	case errors.Is(cause, errShutdown):
		return store.CauseShutdown, store.SideSystem
	case c.in.CallerHungUp():
		return store.CauseCallerIVR, store.SideCaller
	}
	return store.CauseIVREnd, store.SideSystem
}

func (c *call) prompt(name string) (*media.Prompt, error) {
	p, ok := c.snap.prompts[name]
	if !ok {
		return nil, fmt.Errorf("prompt %q not loaded", name)
	}
	return p, nil
}

// Play implements ivr.Call.
func (c *call) Play(ctx context.Context, name string) error {
	p, err := c.prompt(name)
	if err != nil {
		return err
	}
	return c.in.Leg.Play(ctx, p)
}

// Collect implements ivr.Call: the prompt plays until the first digit
// (digits typed ahead during an earlier prompt count), then each further
// digit must come within timeout.
func (c *call) Collect(ctx context.Context, name string, maxDigits int, timeout time.Duration) (string, error) {
	digits, err := c.collect(ctx, name, maxDigits, timeout)
	if err == nil {
		c.log.Info("menu input", "prompt", name, "digits", digits)
		if digits != "" {
			c.ses.note(event{kind: evDigits, digits: digits})
		}
	}
	return digits, err
}

func (c *call) collect(ctx context.Context, name string, maxDigits int, timeout time.Duration) (string, error) {
	p, err := c.prompt(name)
	if err != nil {
		return "", err
	}
	leg := c.in.Leg
	var digits []byte
	select {
	case d := <-leg.DTMF():
		digits = append(digits, d)
	default:
		playCtx, stopPlay := context.WithCancel(ctx)
		played := make(chan error, 1)
		go func() { played <- leg.Play(playCtx, p) }()
		select {
		case d := <-leg.DTMF():
			digits = append(digits, d)
			stopPlay()
			<-played
		case <-played:
			stopPlay()
		case <-ctx.Done():
			stopPlay()
			<-played
			return "", ctx.Err()
		}
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for len(digits) < maxDigits {
		select {
		case d := <-leg.DTMF():
			digits = append(digits, d)
			timer.Reset(timeout)
		case <-timer.C:
			return string(digits), nil
		case <-ctx.Done():
			return string(digits), ctx.Err()
		}
	}
	return string(digits), nil
}

// Hangup implements ivr.Call.
func (c *call) Hangup(ctx context.Context) error {
	c.ses.note(event{kind: evEnded, cause: store.CauseIVRHangup, side: store.SideSystem})
	c.in.Hangup()
	return nil
}
