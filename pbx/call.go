package pbx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/hotline-pbx/hotline/acd"
	"github.com/hotline-pbx/hotline/ivr"
	"github.com/hotline-pbx/hotline/media"
	"github.com/hotline-pbx/hotline/recording"
	"github.com/hotline-pbx/hotline/sip"
	"github.com/hotline-pbx/hotline/store"
)

// call is one inbound call's IVR program: it implements ivr.Call on top
// of the caller's SIP dialog and media leg.
type call struct {
	sw   *Switch
	snap *snapshot
	in   *sip.InboundCall
	log  *slog.Logger
	rec  store.CallRecord
}

// HandleCall runs the trunk's IVR for an answered call and writes its
// record; it implements sip.CallHandler.
func (s *Switch) HandleCall(in *sip.InboundCall) {
	ctx, cancel := context.WithCancel(in.Context())
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel) // daemon shutdown ends the call too
	defer stop()

	c := &call{sw: s, snap: s.snap.Load(), in: in, log: s.log.With("call_id", in.ID)}
	c.rec = store.CallRecord{CallID: in.ID, Caller: in.Caller, DID: in.DID, Trunk: in.Trunk.Name, Start: in.Start}
	tree := c.snap.cfg.IVRs[in.Trunk.IVR]
	res, err := ivr.Run(ctx, tree, c)
	c.rec.Digits = res.Digits
	c.rec.End = time.Now()
	if c.rec.HangupCause == "" {
		switch {
		case in.CallerHungUp():
			c.rec.HangupCause, c.rec.HangupSide = "caller-hangup-ivr", "caller"
		case err != nil && s.ctx.Err() != nil:
			c.rec.HangupCause, c.rec.HangupSide = "shutdown", "system"
		default:
			c.rec.HangupCause, c.rec.HangupSide = "ivr-end", "system"
		}
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		c.log.Warn("ivr", "error", err)
	}
	in.Hangup()
	s.records.Put(c.rec)
	c.log.Info("call ended", "digits", c.rec.Digits, "queue", c.rec.Queue, "agent", c.rec.Agent,
		"cause", c.rec.HangupCause, "side", c.rec.HangupSide)
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
	if c.rec.HangupCause == "" {
		c.rec.HangupCause, c.rec.HangupSide = "ivr-hangup", "system"
	}
	c.in.Hangup()
	return nil
}

// Queue implements ivr.Call: the caller hears music while the ACD offers
// agents one at a time; each offer rings one agent for the queue's ring
// timeout. It returns when the caller and agent are done talking.
func (c *call) Queue(ctx context.Context, name string) error {
	q, ok := c.snap.cfg.Queues[name]
	if !ok {
		return fmt.Errorf("queue %q does not exist", name)
	}
	c.rec.Queue = name
	joined := time.Now()
	offers, err := c.sw.acd.Join(c.in.ID, name)
	if err != nil {
		return fmt.Errorf("queue %q: %w", name, err)
	}
	defer c.sw.acd.Leave(c.in.ID)
	if moh, err := c.prompt(q.MusicOnHold); err == nil {
		c.in.Leg.PlayLoop(moh)
	}
	defer c.in.Leg.StopPlay()
	log := c.log.With("queue", name)
	log.Info("queued")
	for {
		select {
		case <-ctx.Done():
		case offer, ok := <-offers:
			if !ok {
				return fmt.Errorf("queue %q closed", name)
			}
			if talked, err := c.ring(ctx, log, offer.AgentID, q.RingTimeout.Duration, joined); talked || err != nil {
				return err
			}
		}
		if ctx.Err() != nil {
			c.rec.WaitSeconds = time.Since(joined).Seconds()
			c.rec.HangupCause, c.rec.HangupSide = "caller-abandoned", "caller"
			return ctx.Err()
		}
	}
}

// ring offers the call to one agent. It reports whether they talked.
func (c *call) ring(ctx context.Context, log *slog.Logger, agent string, timeout time.Duration, joined time.Time) (bool, error) {
	log = log.With("agent", agent)
	leg, err := c.sw.media.NewLeg(c.in.ID + "/" + agent)
	if err != nil {
		c.sw.acd.OfferResult(c.in.ID, agent, acd.OfferNoAnswer)
		return false, fmt.Errorf("agent leg: %w", err)
	}
	defer leg.Close()
	ringStart := time.Now()
	log.Info("ringing agent")
	ringCtx, cancel := context.WithTimeout(ctx, timeout)
	out, err := c.sw.sip.Dial(ringCtx, agent, c.in.Caller, leg, c.in.Leg.Params().Codec)
	cancel()
	if err != nil {
		c.sw.acd.OfferResult(c.in.ID, agent, acd.OfferNoAnswer)
		if ctx.Err() == nil {
			log.Info("agent did not answer", "reason", err.Error(), "after", time.Since(ringStart).Round(time.Millisecond))
		}
		return false, nil
	}
	if !c.sw.acd.OfferResult(c.in.ID, agent, acd.OfferAnswered) {
		// The offer was withdrawn while the phone rang (agent unregistered,
		// reload): another agent may already be ringing for this caller.
		log.Info("offer withdrawn after answer; releasing the agent")
		out.Hangup()
		return false, nil
	}
	c.rec.Agent, c.rec.Answer = agent, out.Answer
	c.rec.WaitSeconds = out.Answer.Sub(joined).Seconds()
	log.Info("agent answered", "wait", out.Answer.Sub(joined).Round(time.Millisecond))

	c.in.Leg.StopPlay()
	recPath := filepath.Join(c.snap.cfg.Storage.Recordings, out.Answer.Format("2006/01/02"), fileSafe(c.in.ID)+".wav")
	recorder, err := recording.Create(recPath, c.log)
	if err != nil {
		log.Error("recording not started", "error", err)
	} else {
		c.rec.RecordingPath = recPath
		c.in.Leg.SetTap(recorder.Left())
		leg.SetTap(recorder.Right())
	}
	media.Bridge(c.in.Leg, leg)

	select {
	case <-ctx.Done():
		c.rec.HangupCause, c.rec.HangupSide = "normal", "caller"
		if c.sw.ctx.Err() != nil {
			c.rec.HangupCause, c.rec.HangupSide = "shutdown", "system"
		}
	case <-out.Context().Done():
		c.rec.HangupCause, c.rec.HangupSide = "normal", "agent"
	}
	c.in.Leg.Unbridge()
	c.in.Leg.SetTap(nil)
	leg.SetTap(nil)
	out.Hangup()
	c.rec.TalkSeconds = time.Since(out.Answer).Seconds()
	if recorder != nil {
		if err := recorder.Close(); err != nil {
			log.Error("recording", "error", err)
		}
		if n := recorder.Dropped(); n > 0 {
			log.Warn("recording dropped frames", "frames", n)
		}
	}
	return true, nil
}

// fileSafe keeps a Call-ID usable as a file name on any system.
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
}
