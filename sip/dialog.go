package sip

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/hotline-pbx/hotline/media"
)

// dialog is one established SIP dialog of a call leg, whichever side began
// it: the caller's (we are UAS, uas set) or an agent's (we are UAC, uac
// set). It owns the leg's SDP session and answers what comes inside the
// dialog: ACK, BYE, re-INVITE, UPDATE and INFO.
type dialog struct {
	srv       *Server
	id        string
	uas       *sipgo.DialogServerSession
	uac       *sipgo.DialogClientSession
	leg       *media.Leg
	local     *LocalSDP
	log       *slog.Logger
	transport string     // the peer's, named in our Contact
	signalIP  netip.Addr // where the peer's signalling comes from: RTP from it may latch

	changed chan struct{} // one pending signal: the media session changed (hold, resume)
	hungUp  atomic.Bool   // we ended the dialog

	mu         sync.Mutex
	remote     Session // the peer's last SDP
	remoteCSeq uint32  // highest CSeq of the peer's requests; 0 before the first
	exchange   bool    // an offer/answer exchange is under way: another one gets 491
	ackCSeq    uint32  // the re-INVITE whose 2xx waits for its ACK
	acks       chan *sip.Request
	initialAck []byte // body of the ACK to the initial INVITE (a delayed offer's answer)
}

func (s *Server) newDialog(leg *media.Leg, transport, source string, log *slog.Logger) *dialog {
	d := &dialog{
		srv: s, leg: leg, local: NewLocalSDP(leg.LocalAddr()), log: log,
		transport: transport, changed: make(chan struct{}, 1),
	}
	if ap, err := netip.ParseAddrPort(source); err == nil {
		d.signalIP = ap.Addr().Unmap()
	}
	return d
}

func (d *dialog) context() context.Context {
	if d.uas != nil {
		return d.uas.Context()
	}
	return d.uac.Context()
}

// Changed is signalled after the peer changed the media session (hold,
// resume, a new address or codec). One signal waits at most.
func (d *dialog) Changed() <-chan struct{} { return d.changed }

// Held reports whether the peer has put the call on hold: it wants none of
// our media.
func (d *dialog) Held() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.remote.Held()
}

// apply hands the peer's SDP to the media leg. A session refresh (nothing
// the leg cares about changed) leaves the leg alone.
func (d *dialog) apply(s Session) {
	p := s.Params
	p.SignalIP = d.signalIP
	p.Direction = mediaDirection(s.LocalDirection())
	d.mu.Lock()
	d.remote = s
	d.mu.Unlock()
	if d.leg.Params() == p { // parsed params are already in the leg's normal form
		return
	}
	d.leg.SetParams(p)
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

// acceptCSeq enforces RFC 3261 §12.2.2: requests of the peer come with
// rising CSeq numbers; a lower one gets 500.
func (d *dialog) acceptCSeq(req *sip.Request) bool {
	n := req.CSeq().SeqNo
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.remoteCSeq != 0 && n <= d.remoteCSeq {
		return false
	}
	d.remoteCSeq = n
	return true
}

// beginExchange claims the dialog's offer/answer state; false means one is
// under way (RFC 3261 §14.2, RFC 3311 §5.2: answer 491).
func (d *dialog) beginExchange() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.exchange {
		return false
	}
	d.exchange = true
	return true
}

func (d *dialog) endExchange() {
	d.mu.Lock()
	d.exchange, d.acks, d.ackCSeq = false, nil, 0
	d.mu.Unlock()
}

// onReinvite answers a target refresh or media change. An offer gets our
// answer; an INVITE without SDP gets our offer and its answer comes in the
// ACK. The 2xx is retransmitted until the ACK arrives (RFC 3261 §13.3.1.4).
func (d *dialog) onReinvite(req *sip.Request, tx sip.ServerTransaction) {
	if !d.acceptCSeq(req) {
		d.srv.respond(tx, req, 500, "CSeq Out of Order", sip.NewHeader("Retry-After", "1"))
		return
	}
	if !d.beginExchange() {
		d.srv.respond(tx, req, 491, "Request Pending")
		return
	}
	defer d.endExchange()
	delayed := len(req.Body()) == 0
	var body []byte
	if delayed {
		body = d.local.Offer(d.leg.Params().Codec)
	} else {
		offer, err := ParseSDP(req.Body())
		if err != nil {
			d.log.Info("re-INVITE refused", "reason", err.Error())
			d.srv.respond(tx, req, 488, "Not Acceptable Here", warningNoCodec)
			return
		}
		d.apply(offer)
		body = d.local.Answer(offer)
	}
	acks := make(chan *sip.Request, 1)
	d.mu.Lock()
	d.acks, d.ackCSeq = acks, req.CSeq().SeqNo
	d.mu.Unlock()
	res := d.srv.response(req, 200, "OK", body)
	res.AppendHeader(d.srv.contact(d.transport))
	ack := d.awaitAck(tx, res, acks)
	switch {
	case ack == nil:
		d.log.Warn("re-INVITE: no ACK for our 2xx; ending the call")
		go d.hangup()
	case delayed:
		answer, err := ParseSDP(ack.Body())
		if err != nil {
			d.log.Warn("re-INVITE: the ACK carries no usable answer to our offer; ending the call", "reason", err.Error())
			go d.hangup()
			return
		}
		d.apply(answer)
	}
}

// awaitAck sends res and retransmits it (T1 doubling to T2) until the ACK
// arrives, for at most 64*T1, or until the dialog ends.
func (d *dialog) awaitAck(tx sip.ServerTransaction, res *sip.Response, acks <-chan *sip.Request) *sip.Request {
	if err := tx.Respond(res); err != nil {
		return nil
	}
	interval := sip.T1
	retransmit := time.NewTimer(interval)
	defer retransmit.Stop()
	giveUp := time.NewTimer(64 * sip.T1)
	defer giveUp.Stop()
	for {
		select {
		case ack := <-acks:
			return ack
		case <-retransmit.C:
			if err := tx.Respond(res); err != nil {
				return nil
			}
			interval = min(2*interval, sip.T2)
			retransmit.Reset(interval)
		case <-giveUp.C:
			return nil
		case <-d.context().Done():
			return nil
		}
	}
}

// onUpdate answers an UPDATE (RFC 3311): a media change before or without
// a re-INVITE, or a bare session refresh.
func (d *dialog) onUpdate(req *sip.Request, tx sip.ServerTransaction) {
	if !d.acceptCSeq(req) {
		d.srv.respond(tx, req, 500, "CSeq Out of Order", sip.NewHeader("Retry-After", "1"))
		return
	}
	if len(req.Body()) == 0 {
		res := d.srv.response(req, 200, "OK", nil)
		res.AppendHeader(d.srv.contact(d.transport))
		_ = tx.Respond(res)
		return
	}
	if !d.beginExchange() {
		d.srv.respond(tx, req, 491, "Request Pending")
		return
	}
	defer d.endExchange()
	offer, err := ParseSDP(req.Body())
	if err != nil {
		d.srv.respond(tx, req, 488, "Not Acceptable Here", warningNoCodec)
		return
	}
	d.apply(offer)
	res := d.srv.response(req, 200, "OK", d.local.Answer(offer))
	res.AppendHeader(d.srv.contact(d.transport))
	_ = tx.Respond(res)
}

// onInfo takes a DTMF digit sent by SIP INFO (application/dtmf-relay or
// application/dtmf), as some carriers and desk phones do instead of RFC 4733.
func (d *dialog) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	if !d.acceptCSeq(req) {
		d.srv.respond(tx, req, 500, "CSeq Out of Order", sip.NewHeader("Retry-After", "1"))
		return
	}
	ctype := ""
	if h := req.ContentType(); h != nil {
		ctype = h.Value()
	}
	digit, ok, known := infoDigit(ctype, req.Body())
	switch {
	case !known:
		d.srv.respond(tx, req, 415, "Unsupported Media Type", sip.NewHeader("Accept", "application/dtmf-relay, application/dtmf"))
		return
	case !ok:
		d.srv.respond(tx, req, 400, "Bad Request", sip.NewHeader("Warning", `399 hotline "no DTMF digit in the body"`))
		return
	}
	if err := d.leg.InjectDTMF(digit); err != nil {
		d.log.Info("INFO digit not taken", "error", err)
	}
	d.srv.respond(tx, req, 200, "OK")
}

// onAck takes the ACK of the initial INVITE (we are UAS) or of a re-INVITE.
func (d *dialog) onAck(req *sip.Request, tx sip.ServerTransaction) {
	n := req.CSeq().SeqNo
	d.mu.Lock()
	if d.acks != nil && n == d.ackCSeq {
		select {
		case d.acks <- req:
		default: // a retransmitted ACK
		}
		d.mu.Unlock()
		return
	}
	initial := d.uas != nil && n == d.uas.InviteRequest.CSeq().SeqNo
	if initial && d.initialAck == nil {
		d.initialAck = append([]byte{}, req.Body()...)
	}
	d.mu.Unlock()
	if initial {
		_ = d.uas.ReadAck(req, tx)
	}
}

func (d *dialog) onBye(req *sip.Request, tx sip.ServerTransaction) error {
	if d.uas != nil {
		return d.uas.ReadBye(req, tx)
	}
	return d.uac.ReadBye(req, tx)
}

// hangup ends the dialog from our side with a BYE; it is a no-op once the
// dialog is over or already being ended.
func (d *dialog) hangup() {
	if d.context().Err() != nil || !d.hungUp.CompareAndSwap(false, true) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	if d.uas != nil {
		bye := sip.NewRequest(sip.BYE, d.uas.InviteRequest.Contact().Address)
		bye.SetTransport(d.uas.InviteRequest.Transport())
		d.srv.stamp(bye)
		err = d.uas.WriteBye(ctx, bye)
	} else {
		bye := sip.NewRequest(sip.BYE, d.uac.InviteResponse.Contact().Address)
		d.srv.stamp(bye)
		err = d.uac.WriteBye(ctx, bye)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		d.log.Debug("bye", "error", err)
	}
	d.srv.dialogs.Delete(d.id)
}

var warningNoCodec = sip.NewHeader("Warning", `304 hotline "no common audio codec (PCMU, PCMA)"`)

// mediaDirection says what the media leg does for our SDP direction.
func mediaDirection(d Direction) media.Direction {
	switch d {
	case SendOnly:
		return media.SendOnly
	case RecvOnly:
		return media.RecvOnly
	case Inactive:
		return media.Inactive
	}
	return media.SendRecv
}
