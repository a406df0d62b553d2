package sip

import (
	"context"
	"errors"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/hotline-pbx/hotline/config"
	"github.com/hotline-pbx/hotline/media"
)

// InboundCall is a call a trunk sent us, answered, with its media leg.
type InboundCall struct {
	ID     string // Call-ID
	Caller string // From user
	DID    string // Request-URI user
	Trunk  *config.Trunk
	Config *config.Config // the snapshot the call started with
	Start  time.Time      // INVITE received
	Leg    *media.Leg

	dlg       *sipgo.DialogServerSession
	hungUp    atomic.Bool // we sent BYE
	byeCtx    context.Context
	byeCancel context.CancelFunc
}

// Context is done when the caller hangs up (or we did).
func (c *InboundCall) Context() context.Context { return c.byeCtx }

// CallerHungUp reports whether the caller ended the call (rather than us).
func (c *InboundCall) CallerHungUp() bool {
	return c.dlg.Context().Err() != nil && !c.hungUp.Load()
}

// Hangup ends the call from our side with a BYE; it is a no-op once the
// dialog is over.
func (c *InboundCall) Hangup() {
	if c.dlg.Context().Err() != nil || !c.hungUp.CompareAndSwap(false, true) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.dlg.Bye(ctx)
	c.byeCancel()
}

func (s *Server) handleInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		s.handleReinvite(req, tx)
		return
	}
	if req.From() == nil || req.To() == nil || req.CallID() == nil || req.CSeq() == nil || req.Contact() == nil {
		respond(tx, req, 400, "Bad Request")
		return
	}
	cfg := s.opts.Config()
	did := req.Recipient.User
	src, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		respond(tx, req, 400, "Bad Request")
		return
	}
	trunk, ok := cfg.TrunkFor(src.Addr().Unmap(), did)
	if !ok {
		// Only trunks may call in unauthenticated; nothing here dials out.
		s.log.Warn("invite refused", "call_id", callID(req), "source", src.String(), "did", did)
		respond(tx, req, 403, "Forbidden")
		return
	}
	log := s.log.With("call_id", callID(req), "trunk", trunk.Name, "did", did)
	if len(req.Body()) == 0 {
		respond(tx, req, 488, "Not Acceptable Here", sip.NewHeader("Warning", `399 hotline "an SDP offer is required"`))
		return
	}
	offer, err := ParseSDP(req.Body())
	if err != nil {
		log.Info("invite refused", "reason", err.Error())
		respond(tx, req, 488, "Not Acceptable Here", sip.NewHeader("Warning", `304 hotline "no common audio codec (PCMU, PCMA)"`))
		return
	}
	leg, err := s.opts.Media.NewLeg(callID(req))
	if err != nil {
		log.Error("no media port", "error", err)
		respond(tx, req, 503, "Service Unavailable")
		return
	}
	defer leg.Close()
	leg.SetParams(offer.Params)

	dlg, err := s.dua.ReadInvite(req, tx)
	if err != nil {
		log.Warn("invite", "error", err)
		respond(tx, req, 400, "Bad Request")
		return
	}
	s.dialogs.Store(dlg.ID, &dialog{server: dlg, leg: leg})
	defer s.dialogs.Delete(dlg.ID)
	defer dlg.Close()

	call := &InboundCall{
		ID: callID(req), Caller: req.From().Address.User, DID: did, Trunk: trunk, Config: cfg,
		Start: time.Now(), Leg: leg, dlg: dlg,
	}
	call.byeCtx, call.byeCancel = context.WithCancel(dlg.Context())
	defer call.byeCancel()

	_ = dlg.Respond(100, "Trying", nil)
	if err := dlg.RespondSDP(AnswerSDP(leg.LocalAddr(), offer)); err != nil {
		// Cancelled before the answer, or no ACK: nothing to run.
		if !errors.Is(err, sip.ErrTransactionCanceled) {
			log.Warn("answer", "error", err)
		}
		return
	}
	s.calls.Add(1)
	defer s.calls.Done()
	log.Info("call answered", "caller", call.Caller, "codec", offer.Params.Codec.String(), "remote", offer.Params.Remote.String())
	s.opts.Handler.HandleCall(call)
	call.Hangup()
}
