package sip

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/hotline-pbx/hotline/media"
)

// ErrNotRegistered means the agent has no live registration.
var ErrNotRegistered = errors.New("agent not registered")

// DialError is a final failure response from the agent's phone.
type DialError struct{ Code int }

func (e *DialError) Error() string { return fmt.Sprintf("agent answered %d", e.Code) }

// OutboundCall is an answered call to an agent.
type OutboundCall struct {
	Agent   string
	Answer  time.Time
	dlg     *sipgo.DialogClientSession
	hungUp  atomic.Bool
	release func() // forgets the dialog, also when our BYE goes unanswered
}

// Context is done when the agent hangs up (or we did).
func (c *OutboundCall) Context() context.Context { return c.dlg.Context() }

// AgentHungUp reports whether the agent ended the call.
func (c *OutboundCall) AgentHungUp() bool { return c.dlg.Context().Err() != nil && !c.hungUp.Load() }

// Hangup sends BYE unless the dialog is already over.
func (c *OutboundCall) Hangup() {
	if c.dlg.Context().Err() != nil || !c.hungUp.CompareAndSwap(false, true) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.dlg.Bye(ctx)
	c.release()
}

// Dial rings agent on its registered flow with leg's address in the offer
// (prefer first, to spare transcoding)
// and blocks until the agent answers, refuses, or ctx ends (the INVITE is
// then CANCELled). On answer the leg is set to the agent's media.
func (s *Server) Dial(ctx context.Context, agent, callerID string, leg *media.Leg, prefer media.Codec) (*OutboundCall, error) {
	b, ok := s.reg.Lookup(agent)
	if !ok {
		return nil, ErrNotRegistered
	}
	host := s.listen.Addr().String()
	req := sip.NewRequest(sip.INVITE, b.Contact)
	s.toFlow(req, b)
	from := sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: callerID, Host: host}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(&from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: agent, Host: host}, Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(OfferSDP(leg.LocalAddr(), prefer))

	dlg, err := s.dua.WriteInvite(context.Background(), req)
	if err != nil {
		return nil, fmt.Errorf("invite agent %s: %w", agent, err)
	}
	// A CANCEL may only follow a provisional response; when the phone has
	// said nothing, give up on the transaction without waiting for Timer B.
	var heard atomic.Bool
	waitCtx, stop := context.WithCancelCause(context.Background())
	defer stop(nil)
	go func() {
		select {
		case <-ctx.Done():
			if heard.Load() {
				stop(ctx.Err())
			} else {
				stop(sipgo.WaitAnswerForceCancelErr)
			}
		case <-waitCtx.Done():
		}
	}()
	err = dlg.WaitAnswer(waitCtx, sipgo.AnswerOptions{OnResponse: func(r *sip.Response) error {
		heard.Store(true)
		return nil
	}})
	if err != nil {
		if r := dlg.InviteResponse; r != nil && r.IsSuccess() { // answered while we cancelled
			_ = dlg.Ack(context.Background())
			s.byeAndForget(dlg)
		}
		var re *sipgo.ErrDialogResponse
		if errors.As(err, &re) {
			return nil, &DialError{Code: re.Res.StatusCode}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("invite agent %s: %w", agent, err)
	}
	answer, perr := ParseSDP(dlg.InviteResponse.Body())
	if err := dlg.Ack(context.Background()); err != nil {
		return nil, fmt.Errorf("ack agent %s: %w", agent, err)
	}
	if perr != nil {
		s.byeAndForget(dlg)
		return nil, fmt.Errorf("agent %s answer: %w", agent, perr)
	}
	leg.SetParams(answer.Params)
	s.dialogs.Store(dlg.ID, &dialog{client: dlg, leg: leg})
	release := func() { s.dialogs.Delete(dlg.ID) }
	context.AfterFunc(dlg.Context(), release)
	return &OutboundCall{Agent: agent, Answer: time.Now(), dlg: dlg, release: release}, nil
}

func (s *Server) byeAndForget(dlg *sipgo.DialogClientSession) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = dlg.Bye(ctx)
}
