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
	"github.com/hotline-pbx/hotline/config"
	"github.com/hotline-pbx/hotline/media"
	"github.com/hotline-pbx/hotline/sip"
	"github.com/hotline-pbx/hotline/store"
)

// Queue implements ivr.Call: the caller hears music while the ACD offers
// agents one at a time. Each offer rings on its own goroutine, which owns
// the agent's leg until the offer is resolved and reports the outcome to
// the ACD; a caller who leaves meanwhile is gone at once, while the agent
// stays reserved until its phone has stopped ringing. Queue returns when
// the caller and the agent are done talking.
func (c *call) Queue(ctx context.Context, name string) error {
	q, ok := c.snap.cfg.Queues[name]
	if !ok {
		return fmt.Errorf("queue %q does not exist", name)
	}
	offers, err := c.sw.acd.Join(c.ses.id, name)
	if err != nil {
		return fmt.Errorf("queue %q: %w", name, err)
	}
	defer c.sw.acd.Leave(c.ses.id)
	c.ses.note(event{kind: evQueued, queue: name})
	moh, _ := c.prompt(q.MusicOnHold)
	if moh != nil {
		c.in.Leg.PlayLoop(moh)
	}
	defer c.in.Leg.StopPlay()
	log := c.log.With("queue", name)
	log.Info("queued")
	for {
		select {
		case <-ctx.Done():
			c.abandon(ctx)
			return ctx.Err()
		case offer, ok := <-offers:
			if !ok {
				return fmt.Errorf("queue %q closed", name)
			}
			rung := make(chan *sip.OutboundCall, 1)
			c.sw.rings.Add(1)
			go func() {
				defer c.sw.rings.Done()
				rung <- c.ring(ctx, log.With("agent", offer.AgentID), offer.AgentID, q)
			}()
			select {
			case out := <-rung:
				if out != nil {
					return c.talk(ctx, log.With("agent", offer.AgentID), out, moh)
				}
			case <-ctx.Done():
				c.abandon(ctx)
				go func() { // an answer that raced the caller's hang-up is let go
					if out := <-rung; out != nil {
						out.Hangup()
						out.Leg().Close()
					}
				}()
				return ctx.Err()
			}
		}
	}
}

// abandon notes why a waiting caller's call ended.
func (c *call) abandon(ctx context.Context) {
	cause, side := c.endCause(ctx)
	if cause == store.CauseCallerIVR {
		cause = store.CauseCallerAbandoned
	}
	c.ses.note(event{kind: evEnded, cause: cause, side: side})
}

// ring offers the call to one agent and reports the outcome to the ACD.
// It returns the answered call, or nil. It runs on its own goroutine and
// returns only once the agent's phones are resolved.
func (c *call) ring(ctx context.Context, log *slog.Logger, agent string, q *config.Queue) *sip.OutboundCall {
	leg, err := c.sw.media.NewLegNear(c.ses.id+"/"+agent, c.in.Leg)
	if err != nil {
		log.Error("no media port for the agent leg", "error", err)
		c.sw.acd.OfferResult(c.ses.id, agent, acd.OfferFailed)
		return nil
	}
	c.ses.note(event{kind: evOffered, agent: agent})
	ringStart := time.Now()
	log.Info("ringing agent")
	ringCtx, cancel := context.WithTimeout(ctx, q.RingTimeout.Duration)
	out, err := c.sw.sip.Dial(ringCtx, agent, c.in.Caller, leg, c.in.Leg.Params().Codec)
	cancel()
	outcome := offerOutcome(ctx, err)
	if outcome == acd.OfferAnswered && !c.sw.acd.OfferResult(c.ses.id, agent, outcome) {
		// The offer was withdrawn while the phone rang (the caller left, the
		// agent unregistered, a reload): this agent must not be connected.
		log.Info("offer withdrawn after answer; releasing the agent")
		out.Hangup()
		leg.Close()
		return nil
	}
	if outcome != acd.OfferAnswered {
		c.sw.acd.OfferResult(c.ses.id, agent, outcome)
		c.ses.note(event{kind: evOfferEnded, agent: agent, detail: outcomeName(outcome)})
		log.Info("offer ended", "outcome", outcomeName(outcome), "reason", errText(err), "after", time.Since(ringStart).Round(time.Millisecond))
		leg.Close()
		return nil
	}
	return out
}

// offerOutcome classifies how an offer ended for the ACD.
func offerOutcome(callerCtx context.Context, err error) acd.Outcome {
	var de *sip.DialError
	switch {
	case err == nil:
		return acd.OfferAnswered
	case callerCtx.Err() != nil:
		return acd.OfferAbandoned
	case errors.Is(err, context.DeadlineExceeded):
		return acd.OfferNoAnswer
	case errors.As(err, &de) && de.Busy():
		return acd.OfferBusy
	case errors.Is(err, sip.ErrUnreachable), errors.Is(err, sip.ErrNotRegistered):
		return acd.OfferUnreachable
	}
	return acd.OfferFailed
}

func outcomeName(o acd.Outcome) string {
	switch o {
	case acd.OfferAnswered:
		return "answered"
	case acd.OfferBusy:
		return "busy"
	case acd.OfferUnreachable:
		return "unreachable"
	case acd.OfferNoAnswer:
		return "no-answer"
	case acd.OfferAbandoned:
		return "abandoned"
	}
	return "failed"
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// talk bridges the caller with the agent who answered, records them, and
// follows the call until one side hangs up or its media stops. Either
// side's hold plays the queue's music to the other.
func (c *call) talk(ctx context.Context, log *slog.Logger, out *sip.OutboundCall, moh *media.Prompt) error {
	defer out.Leg().Close()
	c.ses.note(event{kind: evConnected, agent: out.Agent, at: out.Answer})
	log.Info("agent answered", "device", out.Device)

	caller, agent := c.in.Leg, out.Leg()
	caller.StopPlay()
	recPath := filepath.Join(c.snap.cfg.Storage.Recordings, out.Answer.Format("2006/01/02"), fileSafe(c.in.ID)+".wav")
	recorder, err := c.sw.recordings.Create(recPath)
	if err != nil {
		log.Error("recording not started", "error", err)
	} else {
		c.ses.setRecording(recPath)
		caller.AddTap(recorder.Left())
		agent.AddTap(recorder.Right())
	}
	c.sw.records.Put(c.ses.record()) // after a crash, the record names its recording
	bridge := media.NewBridge(caller, agent)
	// A hold that came before the bridge is honoured too.
	holdMusic(out.Held(), caller, moh)
	holdMusic(c.in.Held(), agent, moh)

	var cause store.Cause
	var side store.Side
	for cause == "" {
		select {
		case <-ctx.Done():
			cause, side = c.endCause(ctx)
			if cause == store.CauseCallerIVR {
				cause = store.CauseNormal
			}
		case <-out.Context().Done():
			cause, side = store.CauseNormal, store.SideAgent
		case <-agent.MediaTimeout():
			cause, side = store.CauseMediaTimeout, store.SideAgent
		case <-out.Changed():
			held := out.Held()
			holdMusic(held, caller, moh)
			c.noteHold(held, store.SideAgent)
		case <-c.in.Changed():
			held := c.in.Held()
			holdMusic(held, agent, moh)
			c.noteHold(held, store.SideCaller)
		}
	}
	c.ses.note(event{kind: evEnded, cause: cause, side: side})
	bridge.Close()
	out.Hangup()
	c.ses.setQuality(store.SideAgent, agent.Quality())
	c.in.Hangup()
	if recorder != nil {
		caller.RemoveTap(recorder.Left())
		agent.RemoveTap(recorder.Right())
		if err := recorder.Close(); err != nil {
			log.Error("recording", "error", err)
		}
		if n := recorder.Dropped(); n > 0 {
			log.Warn("recording dropped frames", "frames", n)
		}
	}
	return nil
}

// holdMusic plays music on hold to leg while the other side holds, and
// gives it back the other side's audio on resume.
func holdMusic(held bool, leg *media.Leg, moh *media.Prompt) {
	switch {
	case held && moh != nil:
		leg.PlayLoop(moh)
	case !held:
		leg.StopPlay()
	}
}

func (c *call) noteHold(held bool, by store.Side) {
	kind := evResumed
	if held {
		kind = evHeld
	}
	c.ses.note(event{kind: kind, detail: string(by)})
	c.log.Info("hold", "held", held, "by", by)
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
