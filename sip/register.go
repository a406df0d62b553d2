package sip

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/hotline-pbx/hotline/store"
)

// REGISTER handling (RFC 3261 §10.3): digest auth, then every Contact of
// the request applied to the agent's devices at once, and how requests
// reach a registered device: over the flow it registered from, or through
// the proxies of its Path (RFC 3327).

const (
	defaultExpires = 3600 // RFC 3261 §10.2.1.1, when the REGISTER names none
)

// registerFailure is a response that refuses a REGISTER.
type registerFailure struct {
	code    int
	reason  string
	headers []sip.Header
}

// authenticate checks req's digest credentials for user (an agent). It
// answers the request itself when they are missing or wrong: 401 with a
// challenge (stale=true for an old nonce of ours), 400 for a digest uri
// other than the Request-URI, 403 for anything else, the same for unknown
// users as for wrong passwords.
func (s *Server) authenticate(req *sip.Request, tx sip.ServerTransaction, user string) (string, bool) {
	cfg := s.opts.Config()
	authUser, err := s.auth.Verify(headerValue(req, "Authorization"), string(req.Method), req.Recipient, func(u string) (string, bool) {
		if a := cfg.Agent(u); a != nil {
			return a.Password, true
		}
		return "", false
	})
	what := strings.ToLower(string(req.Method)) + " refused"
	switch {
	case errors.Is(err, errNoCredentials) || errors.Is(err, errUnknownNonce):
		s.challenge(tx, req, false)
	case errors.Is(err, errStaleNonce):
		s.challenge(tx, req, true)
	case errors.Is(err, errURIMismatch):
		// RFC 7616 §3.4.6: a uri other than the Request-URI is a malformed
		// request (400), not a wrong password; it reveals nothing about users.
		s.log.Warn(what, "user", user, "source", req.Source(), "reason", "digest uri is not the request-uri")
		s.respond(tx, req, 400, "Bad Request", sip.NewHeader("Warning", `399 hotline "digest uri does not match the Request-URI"`))
	case err != nil || authUser != user:
		s.log.Warn(what, "user", user, "source", req.Source(), "reason", "bad credentials")
		s.respond(tx, req, 403, "Forbidden")
	default:
		return authUser, true
	}
	return "", false
}

func (s *Server) handleRegister(req *sip.Request, tx sip.ServerTransaction) {
	cfg := s.opts.Config()
	to, cseq := req.To(), req.CSeq()
	if to == nil || req.From() == nil || req.CallID() == nil || cseq == nil {
		s.respond(tx, req, 400, "Bad Request")
		return
	}
	user := to.Address.User
	if _, ok := s.authenticate(req, tx, user); !ok {
		return
	}
	removeAll, contacts, fail := parseContacts(req, cfg.SIP.MinExpires, cfg.SIP.MaxExpires)
	if fail != nil {
		s.log.Info("register refused", "user", user, "source", req.Source(), "code", fail.code, "reason", fail.reason)
		s.respond(tx, req, fail.code, fail.reason, fail.headers...)
		return
	}
	if removeAll || len(contacts) > 0 { // no Contact at all is a query
		if err := s.reg.update(user, callID(req), cseq.SeqNo, removeAll, contacts); err != nil {
			s.log.Info("register refused", "user", user, "source", req.Source(), "call_id", callID(req), "cseq", cseq.SeqNo, "reason", "out of order")
			s.respond(tx, req, 500, "Server Internal Error", sip.NewHeader("Warning", `399 hotline "REGISTER out of order (RFC 3261 section 10.3)"`))
			return
		}
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	now := s.reg.now()
	for _, b := range s.reg.contactsOf(user) {
		c := &sip.ContactHeader{Address: b.Contact, Params: sip.NewParams()}
		if b.Instance != "" {
			c.Params.Add("+sip.instance", `"`+b.Instance+`"`)
		}
		c.Params.Add("expires", strconv.Itoa(int(b.Expires.Sub(now).Round(time.Second)/time.Second)))
		res.AppendHeader(c)
	}
	if paths := req.GetHeaders("Path"); len(paths) > 0 {
		// RFC 3327 §5.3: we honour Path, and echo it to a UA that supports it.
		res.AppendHeader(sip.NewHeader("Supported", "path"))
		if hasOptionTag(req, "Supported", "path") {
			for _, h := range paths {
				res.AppendHeader(sip.NewHeader("Path", h.Value()))
			}
		}
	}
	s.stamp(res)
	_ = tx.Respond(res)
}

// parseContacts reads every Contact of a REGISTER (several headers, or
// comma-separated) with the expiry each asks for, and the flow they share.
func parseContacts(req *sip.Request, minExpires, maxExpires int) (removeAll bool, out []contactUpdate, fail *registerFailure) {
	bad := func(why string) (bool, []contactUpdate, *registerFailure) {
		return false, nil, &registerFailure{400, "Bad Request", []sip.Header{sip.NewHeader("Warning", `399 hotline "`+why+`"`)}}
	}
	headerExpires := -1
	if h := req.GetHeader("Expires"); h != nil {
		n, ok := parseExpires(h.Value())
		if !ok {
			return bad("bad Expires header")
		}
		headerExpires = n
	}
	headers := req.GetHeaders("Contact")
	path, err := parsePath(req)
	if err != nil {
		return bad("bad Path header")
	}
	flow := Binding{Source: req.Source(), Transport: req.Transport(), Path: path, UserAgent: headerValue(req, "User-Agent")}
	for _, h := range headers {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			return bad("bad Contact header")
		}
		if c.Address.Wildcard {
			// RFC 3261 §10.3 step 6: "*" only alone and only with Expires: 0.
			if len(headers) != 1 || headerExpires != 0 {
				return bad(`Contact "*" needs Expires: 0 and no other contact`)
			}
			return true, nil, nil
		}
		secs := headerExpires
		if v, ok := paramCI(c.Params, "expires"); ok {
			if secs, ok = parseExpires(v); !ok {
				return bad("bad contact expires")
			}
		}
		switch {
		case secs < 0:
			secs = defaultExpires
		case secs > 0 && secs < minExpires:
			return false, nil, &registerFailure{423, "Interval Too Brief", []sip.Header{sip.NewHeader("Min-Expires", strconv.Itoa(minExpires))}}
		}
		secs = min(secs, maxExpires)
		b := flow
		b.Contact = c.Address
		b.Key, b.Instance = deviceKey(c)
		out = append(out, contactUpdate{b: b, expires: time.Duration(secs) * time.Second})
	}
	return false, out, nil
}

// parseExpires reads delta-seconds; values past 2^32-1 mean 2^32-1
// (RFC 3261 §20.19), which the maximum then cuts down.
func parseExpires(v string) (int, bool) {
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
	if errors.Is(err, strconv.ErrRange) {
		return math.MaxUint32, true
	}
	return int(n), err == nil
}

// deviceKey names the device a Contact stands for: its +sip.instance
// (RFC 5626 §4.1) survives a change of address, else its Contact URI.
func deviceKey(c *sip.ContactHeader) (key, instance string) {
	if v, ok := paramCI(c.Params, "+sip.instance"); ok {
		if instance = strings.Trim(v, `"`); instance != "" {
			return instance, instance
		}
	}
	return c.Address.String(), ""
}

// paramCI looks a parameter up by name, ignoring case (RFC 3261 §7.3.1).
func paramCI(p sip.HeaderParams, name string) (string, bool) {
	for _, kv := range p {
		if strings.EqualFold(kv.K, name) {
			return kv.V, true
		}
	}
	return "", false
}

func hasOptionTag(req *sip.Request, header, tag string) bool {
	for _, h := range req.GetHeaders(header) {
		for _, t := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(t), tag) {
				return true
			}
		}
	}
	return false
}

// parsePath reads the Path header values (RFC 3327) in order, first hop first.
func parsePath(req *sip.Request) ([]sip.Uri, error) {
	var out []sip.Uri
	for _, h := range req.GetHeaders("Path") {
		for _, v := range splitAddressList(h.Value()) {
			u, err := parseNameAddr(v)
			if err != nil {
				return nil, err
			}
			out = append(out, u)
		}
	}
	return out, nil
}

func parseNameAddr(v string) (sip.Uri, error) {
	var u sip.Uri
	params := sip.NewParams()
	if _, err := sip.ParseAddressValue(strings.TrimSpace(v), &u, &params); err != nil {
		return sip.Uri{}, fmt.Errorf("address %q: %w", v, err)
	}
	if u.Wildcard || u.Host == "" {
		return sip.Uri{}, fmt.Errorf("address %q: no host", v)
	}
	return u, nil
}

// splitAddressList splits a header value at the commas that separate
// name-addrs, not those inside quotes or angle brackets.
func splitAddressList(v string) []string {
	var out []string
	inQuotes, inBrackets, start := false, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && inQuotes:
			i++
		case c == '"':
			inQuotes = !inQuotes
		case c == '<' && !inQuotes:
			inBrackets = true
		case c == '>' && !inQuotes:
			inBrackets = false
		case c == ',' && !inQuotes && !inBrackets:
			out = append(out, v[start:i])
			start = i + 1
		}
	}
	return append(out, v[start:])
}

func (s *Server) challenge(tx sip.ServerTransaction, req *sip.Request, stale bool) {
	res := s.response(req, 401, "Unauthorized", nil)
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

// toFlow addresses req (INVITE, OPTIONS) to device b. With a Path, req goes
// to the first proxy with the Path as its Route set (loose routing, RFC 3327
// §5.3); without, over the flow the REGISTER came from: its source address,
// its transport, our listening socket for UDP (the one its NAT knows), its
// connection for TCP.
func (s *Server) toFlow(req *sip.Request, b Binding) {
	req.RemoveHeader("Route")
	transport, dest := b.Transport, b.Source
	if len(b.Path) > 0 {
		for _, hop := range b.Path {
			req.AppendHeader(&sip.RouteHeader{Address: hop})
		}
		transport, dest = firstHop(b)
	}
	req.SetTransport(transport)
	req.SetDestination(dest)
	if transport == "UDP" {
		req.Laddr = sip.Addr{IP: s.listen.Addr().AsSlice(), Port: int(s.listen.Port())}
	}
}

// firstHop is where a request through b's Path goes: the first proxy,
// over the transport its URI names; without one, over the REGISTER's
// transport when the proxy is where the REGISTER came from, else UDP.
func firstHop(b Binding) (transport, dest string) {
	hop := b.Path[0]
	port := hop.Port
	if port == 0 {
		port = portOrDefault(hop)
	}
	dest = fmt.Sprintf("%s:%d", hop.Host, port)
	switch t, ok := paramCI(hop.UriParams, "transport"); {
	case ok:
		transport = strings.ToUpper(t)
	case dest == b.Source:
		transport = b.Transport
	default:
		transport = "UDP"
	}
	return transport, dest
}

// toStore and fromStore convert a binding for persistence.
func toStore(b Binding) store.Binding {
	path := make([]string, len(b.Path))
	for i, u := range b.Path {
		path[i] = "<" + u.String() + ">"
	}
	return store.Binding{User: b.User, Key: b.Key, Contact: b.Contact.String(), Source: b.Source, Transport: b.Transport,
		Path: path, CallID: b.CallID, CSeq: b.CSeq, UserAgent: b.UserAgent, Expires: b.Expires}
}

func fromStore(s store.Binding) (Binding, bool) {
	b := Binding{User: s.User, Key: s.Key, Source: s.Source, Transport: s.Transport, CallID: s.CallID,
		CSeq: s.CSeq, UserAgent: s.UserAgent, Expires: s.Expires}
	if s.User == "" || s.Key == "" || sip.ParseUri(s.Contact, &b.Contact) != nil {
		return Binding{}, false
	}
	if !strings.HasPrefix(s.Key, "sip:") && !strings.HasPrefix(s.Key, "sips:") {
		b.Instance = s.Key // keys are instances or Contact URIs
	}
	for _, p := range s.Path {
		u, err := parseNameAddr(p)
		if err != nil {
			return Binding{}, false
		}
		b.Path = append(b.Path, u)
	}
	return b, true
}
