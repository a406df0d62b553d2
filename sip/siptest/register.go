package siptest

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/hotline-pbx/hotline/store"
)

// Registration modes of a Phone: REGISTERs shaped by the test, and how the
// phone answers the registrar's qualify OPTIONS.

// RegisterOptions shape one REGISTER; the zero value is what Register sends.
type RegisterOptions struct {
	Transport string   // "UDP" (default) or "TCP" (a connection the phone opens)
	Contacts  []string // Contact header values, one header each; default the phone's own
	Instance  string   // +sip.instance put on the phone's own Contact, e.g. "<urn:uuid:...>"
	Expires   string   // Expires header value; "" sends 300, "-" sends none
	CallID    string   // default a new one
	CSeq      uint32   // CSeq of the first try; the authenticated retry uses CSeq+1
}

// Register registers the phone's contact at registrar with digest auth
// over UDP. It returns the final response.
func (p *Phone) Register(ctx context.Context, registrar netip.AddrPort, password string) (*sip.Response, error) {
	return p.RegisterWith(ctx, registrar, password, RegisterOptions{})
}

// RegisterTCP registers over a TCP connection the phone opens; calls to
// it must come back over that same connection (it listens on no TCP port).
func (p *Phone) RegisterTCP(ctx context.Context, registrar netip.AddrPort, password string) (*sip.Response, error) {
	return p.RegisterWith(ctx, registrar, password, RegisterOptions{Transport: "TCP"})
}

// Unregister removes the phone's own contact (Expires: 0).
func (p *Phone) Unregister(ctx context.Context, registrar netip.AddrPort, password string) (*sip.Response, error) {
	return p.RegisterWith(ctx, registrar, password, RegisterOptions{Expires: "0"})
}

// RegisterWith sends a REGISTER shaped by o, answers the digest challenge
// with password and returns the final response.
func (p *Phone) RegisterWith(ctx context.Context, registrar netip.AddrPort, password string, o RegisterOptions) (*sip.Response, error) {
	transport := o.Transport
	if transport == "" {
		transport = "UDP"
	}
	uri := sip.Uri{Scheme: "sip", User: p.User, Host: registrar.Addr().String(), Port: int(registrar.Port())}
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: registrar.Addr().String(), Port: int(registrar.Port())})
	req.SetTransport(transport)
	req.AppendHeader(&sip.ToHeader{Address: uri})
	from := sip.FromHeader{Address: uri, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(&from)
	if o.CallID != "" {
		id := sip.CallIDHeader(o.CallID)
		req.AppendHeader(&id)
	}
	if o.CSeq != 0 {
		req.AppendHeader(&sip.CSeqHeader{SeqNo: o.CSeq, MethodName: sip.REGISTER})
	}
	if o.Contacts == nil {
		req.AppendHeader(p.contact(transport, o.Instance))
	}
	for _, c := range o.Contacts {
		req.AppendHeader(sip.NewHeader("Contact", c))
	}
	switch o.Expires {
	case "":
		req.AppendHeader(sip.NewHeader("Expires", "300"))
	case "-":
	default:
		req.AppendHeader(sip.NewHeader("Expires", o.Expires))
	}
	res, err := p.client.Do(ctx, req)
	if err != nil || res.StatusCode != 401 {
		return res, err
	}
	return p.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: p.User, Password: password})
}

// ContactURI is where the phone says it can be reached, as it registers it.
func (p *Phone) ContactURI() string { return p.dua.ContactHDR.Address.String() }

func (p *Phone) contact(transport, instance string) *sip.ContactHeader {
	c := sip.HeaderClone(&p.dua.ContactHDR).(*sip.ContactHeader)
	if transport == "TCP" {
		c.Address.UriParams = sip.NewParams()
		c.Address.UriParams.Add("transport", "tcp")
	}
	if instance != "" {
		c.Params = sip.NewParams()
		c.Params.Add("+sip.instance", `"`+instance+`"`)
	}
	return c
}

type qualifyAnswers struct {
	silent atomic.Bool  // drop OPTIONS, as a phone that lost its network
	seen   atomic.Int64 // OPTIONS received
}

// SetSilent makes the phone ignore OPTIONS (true) or answer them again.
func (p *Phone) SetSilent(silent bool) { p.qualify.silent.Store(silent) }

// OptionsReceived counts the OPTIONS the phone received, answered or not.
func (p *Phone) OptionsReceived() int { return int(p.qualify.seen.Load()) }

func (p *Phone) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	p.qualify.seen.Add(1)
	if p.qualify.silent.Load() {
		return
	}
	_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
}

// MemBindings is an in-memory store.Bindings: registrations that survive a
// restart of the server within one test.
type MemBindings struct {
	mu sync.Mutex
	m  map[[2]string]store.Binding
}

// NewMemBindings returns an empty store.
func NewMemBindings() *MemBindings { return &MemBindings{m: make(map[[2]string]store.Binding)} }

// PutBinding implements store.Bindings.
func (s *MemBindings) PutBinding(b store.Binding) {
	s.mu.Lock()
	s.m[[2]string{b.User, b.Key}] = b
	s.mu.Unlock()
}

// DeleteBinding implements store.Bindings.
func (s *MemBindings) DeleteBinding(user, key string) {
	s.mu.Lock()
	delete(s.m, [2]string{user, key})
	s.mu.Unlock()
}

// LoadBindings implements store.Bindings.
func (s *MemBindings) LoadBindings(context.Context) ([]store.Binding, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]store.Binding, 0, len(s.m))
	for _, b := range s.m {
		out = append(out, b)
	}
	return out, nil
}
