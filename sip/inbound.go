package sip

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/hotline-pbx/hotline/config"
	"github.com/hotline-pbx/hotline/media"
)

// InboundCall is a call a trunk sent us, answered, with its media leg.
type InboundCall struct {
	*dialog
	ID     string        // Call-ID
	Caller string        // From user
	DID    string        // Request-URI user
	Trunk  *config.Trunk // the carrier's, nil for an agent's feature call
	// Agent is set for a feature call: an agent dialled a code (DID "*48")
	// from their own phone and authenticated as themselves.
	Agent  string
	Config *config.Config // the snapshot the call started with
	Start  time.Time      // INVITE received
	Leg    *media.Leg

	byeCtx    context.Context
	byeCancel context.CancelFunc
}

// Context is done when the caller hangs up (or we did).
func (c *InboundCall) Context() context.Context { return c.byeCtx }

// CallerHungUp reports whether the caller ended the call (rather than us).
func (c *InboundCall) CallerHungUp() bool {
	return c.uas.Context().Err() != nil && !c.hungUp.Load()
}

// Hangup ends the call from our side with a BYE; it is a no-op once the
// dialog is over.
func (c *InboundCall) Hangup() {
	c.hangup()
	c.byeCancel()
}

func (s *Server) handleInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		s.inDialog((*dialog).onReinvite)(req, tx)
		return
	}
	if req.From() == nil || req.To() == nil || req.CallID() == nil || req.CSeq() == nil || req.Contact() == nil {
		s.respond(tx, req, 400, "Bad Request")
		return
	}
	if s.draining.Load() {
		s.respond(tx, req, 503, "Service Unavailable", sip.NewHeader("Retry-After", "30"))
		return
	}
	cfg := s.opts.Config()
	did := req.Recipient.User
	src, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		s.respond(tx, req, 400, "Bad Request")
		return
	}
	trunk, ok := cfg.TrunkFor(src.Addr().Unmap(), did)
	var agent string
	switch {
	case ok:
	case strings.HasPrefix(did, "*"):
		// An agent's feature code: challenged whoever calls, so that an
		// unknown user learns nothing a known one would not.
		if agent, ok = s.authenticate(req, tx, req.From().Address.User); !ok {
			return
		}
	default:
		// Only trunks may call in unauthenticated, and only agents' feature
		// codes are reached otherwise: nothing here dials out.
		s.log.Warn("invite refused", "call_id", callID(req), "source", src.String(), "did", did)
		s.respond(tx, req, 403, "Forbidden")
		return
	}
	log := s.log.With("call_id", callID(req), "did", did)
	if trunk != nil {
		log = log.With("trunk", trunk.Name)
	} else {
		log = log.With("agent", agent)
	}
	// No SDP is a delayed offer (carriers, SBCs): we offer in the 200 and
	// the answer comes in the ACK.
	delayed := len(req.Body()) == 0
	var offer Session
	if !delayed {
		if offer, err = ParseSDP(req.Body()); err != nil {
			log.Info("invite refused", "reason", err.Error())
			s.respond(tx, req, 488, "Not Acceptable Here", warningNoCodec)
			return
		}
	}
	leg, err := s.opts.Media.NewLeg(callID(req))
	if err != nil {
		log.Error("no media port", "error", err)
		s.respond(tx, req, 503, "Service Unavailable")
		return
	}
	defer leg.Close()

	dlg, err := s.dua.ReadInvite(req, tx)
	if err != nil {
		log.Warn("invite", "error", err)
		s.respond(tx, req, 400, "Bad Request")
		return
	}
	d := s.newDialog(leg, req.Transport(), req.Source(), log)
	d.uas, d.id = dlg, dlg.ID
	s.dialogs.Store(dlg.ID, d)
	defer s.dialogs.Delete(dlg.ID)
	defer dlg.Close()

	call := &InboundCall{
		dialog: d, ID: callID(req), Caller: req.From().Address.User, DID: did, Trunk: trunk, Agent: agent, Config: cfg,
		Start: time.Now(), Leg: leg,
	}
	call.byeCtx, call.byeCancel = context.WithCancel(dlg.Context())
	defer call.byeCancel()

	var body []byte
	if delayed {
		body = d.local.Offer(media.PCMU)
	} else {
		d.apply(offer)
		body = d.local.Answer(offer)
	}
	res := s.response(dlg.InviteRequest, 200, "OK", body)
	res.AppendHeader(s.contact(req.Transport()))
	if err := dlg.WriteResponse(res); err != nil {
		// Cancelled before the answer, or no ACK: nothing to run.
		if !errors.Is(err, sip.ErrTransactionCanceled) {
			log.Warn("answer", "error", err)
		}
		return
	}
	if delayed {
		d.mu.Lock()
		ack := d.initialAck
		d.mu.Unlock()
		answer, err := ParseSDP(ack)
		if err != nil {
			log.Warn("delayed offer: the ACK carries no usable answer; ending the call", "reason", err.Error())
			call.Hangup()
			return
		}
		d.apply(answer)
	}
	s.calls.Add(1)
	defer s.calls.Done()
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	p := leg.Params()
	log.Info("call answered", "caller", call.Caller, "codec", p.Codec.String(), "remote", p.Remote.String(), "delayed_offer", delayed)
	s.opts.Handler.HandleCall(call)
	call.Hangup()
}
