package sip

import (
	"errors"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"
)

// REGISTER handling: digest auth, then the bindings of the registrar, and
// how requests reach a registered device over the flow it registered from.

func (s *Server) handleRegister(req *sip.Request, tx sip.ServerTransaction) {
	cfg := s.opts.Config()
	to := req.To()
	if to == nil || req.From() == nil || req.CallID() == nil {
		respond(tx, req, 400, "Bad Request")
		return
	}
	user := to.Address.User
	authUser, err := s.auth.Verify(headerValue(req, "Authorization"), string(req.Method), req.Recipient, func(u string) (string, bool) {
		if a := cfg.Agent(u); a != nil {
			return a.Password, true
		}
		return "", false
	})
	switch {
	case errors.Is(err, errNoCredentials) || errors.Is(err, errUnknownNonce):
		s.challenge(tx, req, false)
		return
	case errors.Is(err, errStaleNonce):
		s.challenge(tx, req, true)
		return
	case errors.Is(err, errURIMismatch):
		// RFC 7616 §3.4.6: a uri other than the Request-URI is a malformed
		// request (400), not a wrong password; it reveals nothing about users.
		s.log.Warn("register refused", "user", user, "source", req.Source(), "reason", "digest uri is not the request-uri")
		respond(tx, req, 400, "Bad Request", sip.NewHeader("Warning", `399 hotline "digest uri does not match the Request-URI"`))
		return
	case err != nil || authUser != user:
		s.log.Warn("register refused", "user", user, "source", req.Source(), "reason", "bad credentials")
		respond(tx, req, 403, "Forbidden")
		return
	}
	if req.Contact() == nil { // a query: report the current binding
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		if b, ok := s.reg.Lookup(user); ok {
			res.AppendHeader(&sip.ContactHeader{Address: b.Contact, Params: expiresParam(b.Expires)})
		}
		_ = tx.Respond(res)
		return
	}
	expires, err := requestedExpiry(req)
	if err != nil {
		respond(tx, req, 400, "Bad Request")
		return
	}
	contact := req.Contact()
	b := Binding{User: user, Contact: contact.Address, Source: req.Source(), Transport: req.Transport()}
	if ua := req.GetHeader("User-Agent"); ua != nil {
		b.UserAgent = ua.Value()
	}
	s.reg.Set(b, expires)
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	if expires > 0 {
		c := sip.ContactHeader{Address: contact.Address, Params: sip.NewParams()}
		c.Params.Add("expires", strconv.Itoa(int(expires/time.Second)))
		res.AppendHeader(&c)
	}
	_ = tx.Respond(res)
}

func expiresParam(at time.Time) sip.HeaderParams {
	p := sip.NewParams()
	p.Add("expires", strconv.Itoa(max(0, int(time.Until(at)/time.Second))))
	return p
}

func (s *Server) challenge(tx sip.ServerTransaction, req *sip.Request, stale bool) {
	res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
	for _, c := range s.auth.Challenges(stale) {
		res.AppendHeader(sip.NewHeader("WWW-Authenticate", c))
	}
	_ = tx.Respond(res)
}

func headerValue(req *sip.Request, name string) string {
	if h := req.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}

// toFlow sends req over the flow b registered from: its source address,
// its transport, and for UDP our listening socket (the one its NAT knows).
func (s *Server) toFlow(req *sip.Request, b Binding) {
	req.SetTransport(b.Transport)
	req.SetDestination(b.Source)
	if b.Transport == "UDP" {
		req.Laddr = sip.Addr{IP: s.listen.Addr().AsSlice(), Port: int(s.listen.Port())}
	}
}
