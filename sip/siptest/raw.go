package siptest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// RawPhone is a SIP phone without a transaction layer: the test sees every
// message it receives and decides each response and when it goes out. It
// plays the phones a well-behaved stack would not: one silent until told to
// ring, one that answers 200 after it was cancelled, one whose answer comes
// after the caller left. It speaks UDP on a loopback address.
type RawPhone struct {
	t    testing.TB
	conn *net.UDPConn
	Addr netip.AddrPort
	User string

	mu      sync.Mutex
	inbox   []Received
	arrived chan struct{} // signalled on each message
	toTags  map[string]string
	cseq    uint32
}

// Received is one message and where it came from.
type Received struct {
	Msg  sip.Message
	From netip.AddrPort
}

// Request returns the message as a request, or nil.
func (r Received) Request() *sip.Request { req, _ := r.Msg.(*sip.Request); return req }

// NewRawPhone listens on ip (a 127.x address), any port.
func NewRawPhone(t testing.TB, ip, user string) *RawPhone {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		t.Fatalf("raw phone listen: %v", err)
	}
	p := &RawPhone{t: t, conn: conn, Addr: conn.LocalAddr().(*net.UDPAddr).AddrPort(), User: user,
		arrived: make(chan struct{}, 1), toTags: map[string]string{}, cseq: 1}
	go p.read()
	t.Cleanup(func() { conn.Close() })
	return p
}

func (p *RawPhone) read() {
	buf := make([]byte, 65535)
	parser := sip.NewParser()
	for {
		n, from, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		msg, err := parser.ParseSIP(append([]byte(nil), buf[:n]...))
		if err != nil {
			continue
		}
		p.mu.Lock()
		p.inbox = append(p.inbox, Received{Msg: msg, From: from})
		p.mu.Unlock()
		select {
		case p.arrived <- struct{}{}:
		default:
		}
	}
}

// Next waits up to within for the first message not yet taken that match
// accepts, takes it and returns it; ok is false when none came.
func (p *RawPhone) Next(within time.Duration, match func(sip.Message) bool) (Received, bool) {
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		if i := slices.IndexFunc(p.inbox, func(r Received) bool { return match(r.Msg) }); i >= 0 {
			r := p.inbox[i]
			p.inbox = slices.Delete(p.inbox, i, i+1)
			p.mu.Unlock()
			return r, true
		}
		p.mu.Unlock()
		select {
		case <-p.arrived:
		case <-deadline.C:
			return Received{}, false
		}
	}
}

// Method matches requests of one method.
func Method(m sip.RequestMethod) func(sip.Message) bool {
	return func(msg sip.Message) bool {
		req, ok := msg.(*sip.Request)
		return ok && req.Method == m
	}
}

// Status matches responses with the given status code (0: any) to method.
func Status(code int, method sip.RequestMethod) func(sip.Message) bool {
	return func(msg sip.Message) bool {
		res, ok := msg.(*sip.Response)
		return ok && (code == 0 || res.StatusCode == code) && res.CSeq() != nil && res.CSeq().MethodName == method
	}
}

// Count returns how many messages not yet taken match.
func (p *RawPhone) Count(match func(sip.Message) bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.inbox {
		if match(r.Msg) {
			n++
		}
	}
	return n
}

// Respond answers req (sent to where it came from). Responses above 100
// carry the phone's To tag for the call; 1xx and 2xx a Contact; a 2xx to
// an INVITE carries body as SDP.
func (p *RawPhone) Respond(r Received, code int, reason string, body []byte) {
	req := r.Request()
	res := sip.NewResponseFromRequest(req, code, reason, body)
	if code > 100 && !req.To().Params.Has("tag") {
		p.mu.Lock()
		tag, ok := p.toTags[req.CallID().Value()]
		if !ok {
			tag = sip.GenerateTagN(8)
			p.toTags[req.CallID().Value()] = tag
		}
		p.mu.Unlock()
		res.To().Params.Add("tag", tag)
	}
	if code < 300 && code > 100 {
		res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: p.User, Host: p.Addr.Addr().String(), Port: int(p.Addr.Port())}})
	}
	if body != nil {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	p.send(res, r.From)
}

// Bye hangs up the call invite set up (the phone answered it).
func (p *RawPhone) Bye(invite Received) {
	req := invite.Request()
	p.mu.Lock()
	tag := p.toTags[req.CallID().Value()]
	p.cseq++
	cseq := p.cseq
	p.mu.Unlock()
	bye := sip.NewRequest(sip.BYE, req.Contact().Address)
	from := sip.FromHeader{Address: req.To().Address, Params: sip.NewParams()}
	from.Params.Add("tag", tag)
	to := sip.ToHeader{Address: req.From().Address, Params: req.From().Params.Clone()}
	p.addVia(bye)
	bye.AppendHeader(&from)
	bye.AppendHeader(&to)
	bye.AppendHeader(req.CallID())
	bye.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: sip.BYE})
	bye.AppendHeader(sip.NewHeader("Max-Forwards", "70"))
	bye.SetBody(nil)
	p.send(bye, invite.From)
}

func (p *RawPhone) addVia(req *sip.Request) {
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP",
		Host: p.Addr.Addr().String(), Port: int(p.Addr.Port()), Params: sip.NewParams()}
	via.Params.Add("branch", sip.GenerateBranch())
	req.PrependHeader(via)
}

func (p *RawPhone) send(m sip.Message, to netip.AddrPort) {
	if _, err := p.conn.WriteToUDPAddrPort([]byte(m.String()), to); err != nil {
		p.t.Errorf("raw phone %s: send: %v", p.User, err)
	}
}

// Register registers the phone's address at registrar with digest auth.
func (p *RawPhone) Register(ctx context.Context, registrar netip.AddrPort, password string) error {
	uri := sip.Uri{Scheme: "sip", Host: registrar.Addr().String(), Port: int(registrar.Port())}
	aor := sip.Uri{Scheme: "sip", User: p.User, Host: uri.Host, Port: uri.Port}
	callID := sip.CallIDHeader(sip.GenerateTagN(16))
	fromTag := sip.GenerateTagN(8)
	build := func(auth string) *sip.Request {
		p.mu.Lock()
		p.cseq++
		cseq := p.cseq
		p.mu.Unlock()
		req := sip.NewRequest(sip.REGISTER, uri)
		p.addVia(req)
		from := sip.FromHeader{Address: aor, Params: sip.NewParams()}
		from.Params.Add("tag", fromTag)
		req.AppendHeader(&from)
		req.AppendHeader(&sip.ToHeader{Address: aor})
		req.AppendHeader(&callID)
		req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: sip.REGISTER})
		req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: p.User, Host: p.Addr.Addr().String(), Port: int(p.Addr.Port())}})
		req.AppendHeader(sip.NewHeader("Expires", "300"))
		req.AppendHeader(sip.NewHeader("Max-Forwards", "70"))
		if auth != "" {
			req.AppendHeader(sip.NewHeader("Authorization", auth))
		}
		req.SetBody(nil)
		return req
	}
	p.send(build(""), registrar)
	r, ok := p.Next(5*time.Second, Status(401, sip.REGISTER))
	if !ok {
		return fmt.Errorf("raw phone %s: no 401 to REGISTER", p.User)
	}
	chal, err := digest.ParseChallenge(r.Msg.(*sip.Response).GetHeader("WWW-Authenticate").Value())
	if err != nil {
		return err
	}
	cred, err := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: uri.String(), Username: p.User, Password: password, Count: 1, Cnonce: sip.GenerateTagN(8)})
	if err != nil {
		return err
	}
	p.send(build(cred.String()), registrar)
	r, ok = p.Next(5*time.Second, Status(0, sip.REGISTER))
	if !ok {
		return fmt.Errorf("raw phone %s: no answer to the authenticated REGISTER", p.User)
	}
	if code := r.Msg.(*sip.Response).StatusCode; code != 200 {
		return fmt.Errorf("raw phone %s: REGISTER answered %d", p.User, code)
	}
	return nil
}

// RawCall is a call the RawPhone places, message by message.
type RawCall struct {
	p       *RawPhone
	to      netip.AddrPort
	CallID  string
	fromTag string
	toTag   string
	target  sip.Uri // the far end's Contact once answered, else the Request-URI
	cseq    uint32
	// Transport is "UDP" (the only one a RawPhone speaks).
	Transport string
}

// Invite sends an INVITE for number to target (body is SDP, nil for a
// delayed offer) and returns the call; responses arrive in the inbox.
func (p *RawPhone) Invite(target netip.AddrPort, number string, body []byte) *RawCall {
	c := &RawCall{p: p, to: target, CallID: sip.GenerateTagN(16), fromTag: sip.GenerateTagN(8), Transport: "UDP",
		target: sip.Uri{Scheme: "sip", User: number, Host: target.Addr().String(), Port: int(target.Port())}}
	c.Send(c.Request(sip.INVITE, body))
	return c
}

// Request builds an in-dialog request; every method but ACK and CANCEL
// takes the next CSeq.
func (c *RawCall) Request(method sip.RequestMethod, body []byte) *sip.Request {
	if method != sip.ACK && method != sip.CANCEL {
		c.cseq++
	}
	req := sip.NewRequest(method, c.target)
	c.p.addVia(req)
	from := sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: c.p.User, Host: c.p.Addr.Addr().String()}, Params: sip.NewParams()}
	from.Params.Add("tag", c.fromTag)
	to := sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: c.target.User, Host: c.to.Addr().String()}, Params: sip.NewParams()}
	if c.toTag != "" {
		to.Params.Add("tag", c.toTag)
	}
	callID := sip.CallIDHeader(c.CallID)
	req.AppendHeader(&from)
	req.AppendHeader(&to)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: c.cseq, MethodName: method})
	req.AppendHeader(sip.NewHeader("Max-Forwards", "70"))
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: c.p.User, Host: c.p.Addr.Addr().String(), Port: int(c.p.Addr.Port())}})
	if body != nil {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	req.SetBody(body)
	return req
}

// SetCSeq makes the next request take n+1 (to test out-of-order CSeqs).
func (c *RawCall) SetCSeq(n uint32) { c.cseq = n }

// Send sends a request of the call to the switch.
func (c *RawCall) Send(req *sip.Request) { c.p.send(req, c.to) }

// Final waits for the final response to the call's request method with
// CSeq cseq (0: any); a 2xx to the INVITE fixes the dialog's To tag and
// remote target.
func (c *RawCall) Final(within time.Duration, method sip.RequestMethod, cseq uint32) (*sip.Response, bool) {
	r, ok := c.p.Next(within, func(m sip.Message) bool {
		res, ok := m.(*sip.Response)
		return ok && res.StatusCode >= 200 && res.CallID() != nil && res.CallID().Value() == c.CallID &&
			res.CSeq().MethodName == method && (cseq == 0 || res.CSeq().SeqNo == cseq)
	})
	if !ok {
		return nil, false
	}
	res := r.Msg.(*sip.Response)
	if method == sip.INVITE && res.IsSuccess() {
		if tag, ok := res.To().Params.Get("tag"); ok {
			c.toTag = tag
		}
		if ct := res.Contact(); ct != nil {
			c.target = ct.Address
		}
	}
	return res, true
}

// CSeq is the CSeq number of the last request that took one.
func (c *RawCall) CSeq() uint32 { return c.cseq }
