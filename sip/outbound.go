package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/hotline-pbx/hotline/media"
)

// Offers to agents. Every reachable device of the agent rings at once; the
// first to answer gets the call and the others are withdrawn. A device that
// has said nothing yet cannot be sent a CANCEL (RFC 3261 §9.1): its CANCEL
// waits for its first provisional response, and a device that answers
// anyway is sent ACK then BYE. So no phone is left ringing and no 200 is
// left unanswered, whenever the caller leaves.

var (
	// ErrNotRegistered means the agent has no live, reachable device.
	ErrNotRegistered = errors.New("agent not registered")
	// ErrUnreachable means no device of the agent could be reached: no
	// response at all (transport error, timeout) or 408/503.
	ErrUnreachable = errors.New("agent unreachable")
)

// DialError is the final failure response of the agent's phones (the most
// telling one when several rang).
type DialError struct{ Code int }

func (e *DialError) Error() string { return fmt.Sprintf("agent answered %d", e.Code) }

// Busy reports a phone that is busy or whose user declined (486, 600, 603,
// and 480 which do-not-disturb phones send).
func (e *DialError) Busy() bool {
	return e.Code == 486 || e.Code == 600 || e.Code == 603 || e.Code == 480
}

// Is makes 408 and 503 count as ErrUnreachable.
func (e *DialError) Is(target error) bool {
	return target == ErrUnreachable && (e.Code == 408 || e.Code == 503)
}

// OutboundCall is an answered call to an agent.
type OutboundCall struct {
	*dialog
	Agent  string
	Device string // the binding key of the device that answered
	Answer time.Time
}

// Leg is the agent's media leg (the one given to Dial).
func (c *OutboundCall) Leg() *media.Leg { return c.leg }

// Context is done when the agent hangs up (or we did).
func (c *OutboundCall) Context() context.Context { return c.uac.Context() }

// AgentHungUp reports whether the agent ended the call.
func (c *OutboundCall) AgentHungUp() bool { return c.uac.Context().Err() != nil && !c.hungUp.Load() }

// Hangup sends BYE unless the dialog is already over.
func (c *OutboundCall) Hangup() { c.hangup() }

// forkResult is how one device's INVITE ended.
type forkResult struct {
	call *OutboundCall // the winner
	code int           // final failure response, 0 if none
	err  error         // why it failed, nil for the winner
}

// Dial rings every reachable device of agent with leg's address in the offer
// (prefer first, to spare transcoding). It returns the first device to
// answer, as soon as it answers; the others are withdrawn in the background.
// Without an answer it returns once every device is resolved: when ctx ends
// (ring timeout, or the caller left) that includes waiting for pending
// CANCELs and hanging up late answers, so the agent is free again when Dial
// returns. Errors: ErrNotRegistered, ErrUnreachable (wrapped), *DialError,
// or ctx.Err().
func (s *Server) Dial(ctx context.Context, agent, callerID string, leg *media.Leg, prefer media.Codec) (*OutboundCall, error) {
	devices := s.reg.Devices(agent)
	if len(devices) == 0 {
		return nil, ErrNotRegistered
	}
	ringCtx, stopRinging := context.WithCancel(ctx)
	var won atomic.Bool
	claim := func() bool { return ctx.Err() == nil && won.CompareAndSwap(false, true) }
	results := make(chan forkResult, len(devices))
	offer := NewLocalSDP(leg.LocalAddr()).Offer(prefer)
	s.forks.Add(len(devices))
	for _, b := range devices {
		go func() {
			defer s.forks.Done()
			results <- s.ring(ringCtx, agent, callerID, b, leg, offer, claim)
		}()
	}
	var failures []forkResult
	for range devices {
		r := <-results
		if r.call != nil {
			stopRinging() // the others are withdrawn; their goroutines finish on their own
			return r.call, nil
		}
		failures = append(failures, r)
	}
	stopRinging()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return nil, worstFailure(failures)
}

// worstFailure picks the error that says most about the agent: a busy or
// declining phone, then any other refusal, then unreachable.
func worstFailure(failures []forkResult) error {
	var pick error
	rank := func(err error) int {
		var de *DialError
		switch {
		case errors.As(err, &de) && de.Busy():
			return 3
		case errors.As(err, &de) && !errors.Is(err, ErrUnreachable):
			return 2
		case err != nil:
			return 1
		}
		return 0
	}
	for _, f := range failures {
		if rank(f.err) > rank(pick) {
			pick = f.err
		}
	}
	return pick
}

// ring sends one INVITE to device b and sees it through. claim says whether
// an answer may take the call; an answer that may not is ACKed and hung up.
func (s *Server) ring(ctx context.Context, agent, callerID string, b Binding, leg *media.Leg, offer []byte, claim func() bool) forkResult {
	log := s.log.With("agent", agent, "device", b.Key)
	host := s.advertised().Addr().String()
	req := sip.NewRequest(sip.INVITE, b.Contact)
	s.toFlow(req, b)
	from := sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: callerID, Host: host}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(&from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: agent, Host: host}, Params: sip.NewParams()})
	req.AppendHeader(s.contact(b.Transport))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(offer)
	s.stamp(req)

	dlg, err := s.dua.WriteInvite(context.Background(), req)
	if err != nil {
		s.reg.MarkUnreachable(agent, b.Key)
		return forkResult{err: fmt.Errorf("%w: invite %s: %v", ErrUnreachable, b.Key, err)}
	}
	// Cancelling ctx makes sipgo send CANCEL, after the first provisional
	// response if none came yet, and wait for the 487.
	err = dlg.WaitAnswer(ctx, sipgo.AnswerOptions{})
	if res := dlg.InviteResponse; res != nil && res.IsSuccess() {
		return s.answered(dlg, res, agent, b, leg, claim, log)
	}
	var re *sipgo.ErrDialogResponse
	switch {
	case errors.As(err, &re):
		de := &DialError{Code: re.Res.StatusCode}
		if errors.Is(de, ErrUnreachable) {
			s.reg.MarkUnreachable(agent, b.Key)
		}
		return forkResult{code: de.Code, err: de}
	case ctx.Err() != nil:
		return forkResult{err: ctx.Err()}
	default: // no final response at all: timeout or transport error
		s.reg.MarkUnreachable(agent, b.Key)
		return forkResult{err: fmt.Errorf("%w: %s: %v", ErrUnreachable, b.Key, err)}
	}
}

// answered takes a device's 2xx. The dialog is stored before the ACK goes
// out, so that a BYE racing the ACK finds it.
func (s *Server) answered(dlg *sipgo.DialogClientSession, res *sip.Response, agent string, b Binding, leg *media.Leg, claim func() bool, log *slog.Logger) forkResult {
	d := s.newDialog(leg, b.Transport, res.Source(), log)
	d.uac = dlg
	if id, err := sip.DialogIDFromResponse(res); err == nil {
		d.id = id
	}
	answer, perr := ParseSDP(res.Body())
	won := perr == nil && claim()
	s.dialogs.Store(d.id, d)
	context.AfterFunc(dlg.Context(), func() { s.dialogs.Delete(d.id) })
	if err := dlg.Ack(context.Background()); err != nil {
		log.Warn("ack", "error", err)
	}
	switch {
	case perr != nil:
		log.Warn("answer without usable SDP; hanging up", "reason", perr.Error())
		d.hangup()
		return forkResult{code: 488, err: fmt.Errorf("agent %s answer: %w", agent, perr)}
	case !won:
		log.Info("answered after the offer was withdrawn; hanging up")
		d.hangup()
		return forkResult{err: context.Canceled}
	}
	d.apply(answer)
	return forkResult{call: &OutboundCall{dialog: d, Agent: agent, Device: b.Key, Answer: time.Now()}}
}
