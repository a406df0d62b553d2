// Package siptest is a small SIP phone for tests: it registers with digest
// auth, places and answers calls with real RTP through a media.Engine, on
// loopback addresses only. It is the in-process peer of end-to-end tests.
package siptest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/hotline-pbx/hotline/media"
	hsip "github.com/hotline-pbx/hotline/sip"
)

// Phone is one SIP user agent with its own RTP port range.
type Phone struct {
	t      testing.TB
	Addr   netip.AddrPort // where it listens for SIP (UDP)
	User   string
	Media  *media.Engine
	ua     *sipgo.UserAgent
	client *sipgo.Client
	dua    *sipgo.DialogUA

	// Answered receives every call the phone answered (mode Answer).
	Answered chan *Call
	// Cancelled receives the Call-ID of every INVITE the caller withdrew
	// while the phone rang (mode Ring).
	Cancelled chan string
	mode      Mode
	// Invites counts the INVITEs that started a call here (not re-INVITEs).
	Invites   atomic.Int64
	qualify   qualifyAnswers // how it treats OPTIONS (register.go)
	close     func()
	closeOnce sync.Once
	mu        sync.Mutex
	calls     map[string]*Call // dialog id -> call
}

// Call is one established call of a Phone.
type Call struct {
	Leg      *media.Leg
	Received *Capture // audio received on Leg
	// InviteToAnswer is how long the far end took to answer our INVITE.
	InviteToAnswer time.Duration
	// Response is the final response to our INVITE (calls we placed).
	Response *sip.Response
	local    *hsip.LocalSDP
	remote   hsip.Session // the far end's last SDP
	server   *sipgo.DialogServerSession
	client   *sipgo.DialogClientSession
}

// ID is the call's Call-ID.
func (c *Call) ID() string {
	if c.server != nil {
		return c.server.InviteRequest.CallID().Value()
	}
	return c.client.InviteRequest.CallID().Value()
}

// Done is closed when the call ends from either side.
func (c *Call) Done() <-chan struct{} {
	if c.server != nil {
		return c.server.Context().Done()
	}
	return c.client.Context().Done()
}

// Invite is the INVITE that set the call up (as the phone got or sent it).
func (c *Call) Invite() *sip.Request {
	if c.server != nil {
		return c.server.InviteRequest
	}
	return c.client.InviteRequest
}

// do sends an in-dialog request and waits for its final response.
func (c *Call) do(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	if c.server != nil {
		return c.server.Do(ctx, req)
	}
	return c.client.Do(ctx, req)
}

// remoteTarget is where in-dialog requests go: the peer's Contact.
func (c *Call) remoteTarget() sip.Uri {
	if c.server != nil {
		return c.server.InviteRequest.Contact().Address
	}
	return c.client.InviteResponse.Contact().Address
}

// Reinvite sends a re-INVITE offering dir (SendOnly or Inactive puts the
// other side on hold, SendRecv resumes) and ACKs the answer, which it
// returns.
func (c *Call) Reinvite(ctx context.Context, dir hsip.Direction) (*sip.Response, error) {
	req := sip.NewRequest(sip.INVITE, c.remoteTarget())
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(c.local.OfferDirection(c.Leg.Params().Codec, dir))
	res, err := c.do(ctx, req)
	if err != nil || !res.IsSuccess() {
		return res, err
	}
	ack := sip.NewRequest(sip.ACK, c.remoteTarget())
	ack.AppendHeader(&sip.CSeqHeader{SeqNo: req.CSeq().SeqNo, MethodName: sip.ACK})
	ack.SetBody(nil)
	if c.server != nil {
		err = c.server.WriteRequest(ack)
	} else {
		err = c.client.WriteRequest(ack)
	}
	return res, err
}

// SendInfo sends a DTMF digit by SIP INFO in the given body format
// ("application/dtmf-relay" or "application/dtmf").
func (c *Call) SendInfo(ctx context.Context, contentType string, digit byte) (*sip.Response, error) {
	req := sip.NewRequest(sip.INFO, c.remoteTarget())
	req.AppendHeader(sip.NewHeader("Content-Type", contentType))
	body := []byte{digit}
	if contentType == "application/dtmf-relay" {
		body = []byte("Signal=" + string(digit) + "\r\nDuration=160\r\n")
	}
	req.SetBody(body)
	return c.do(ctx, req)
}

// Hangup sends BYE.
func (c *Call) Hangup(ctx context.Context) error {
	if c.server != nil {
		return c.server.Bye(ctx)
	}
	return c.client.Bye(ctx)
}

// Mode is how a phone treats incoming calls.
type Mode int

const (
	Busy   Mode = iota // 486 Busy Here
	Answer             // 180 then 200 with SDP
	Ring               // 180 and nothing more, until CANCEL
)

// NewPhone starts a phone listening on ip (a 127.x address); its RTP uses
// ports [rtpMin, rtpMin+99]. Everything stops at test cleanup.
func NewPhone(t testing.TB, ip, user string, rtpMin int, mode Mode) *Phone {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	eng, err := media.NewEngine(media.Config{IP: netip.MustParseAddr(ip), PortMin: rtpMin, PortMax: rtpMin + 99, Shards: 1, Logger: logger})
	if err != nil {
		t.Fatalf("phone media: %v", err)
	}
	conn, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		t.Fatalf("phone listen: %v", err)
	}
	addr := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("siptest-"+user), sipgo.WithUserAgentHostname(ip),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(logger)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(logger)))
	if err != nil {
		t.Fatal(err)
	}
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname(ip), sipgo.WithClientPort(int(addr.Port())),
		sipgo.WithClientConnectionAddr(addr.String()), sipgo.WithClientLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	p := &Phone{
		t: t, Addr: addr, User: user, Media: eng, ua: ua, client: client,
		dua:      &sipgo.DialogUA{Client: client, ContactHDR: sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: ip, Port: int(addr.Port())}}},
		Answered: make(chan *Call, 4), Cancelled: make(chan string, 4), mode: mode, calls: make(map[string]*Call),
	}
	srv.OnInvite(p.onInvite)
	srv.OnOptions(p.onOptions)
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
		if c := p.find(req); c != nil && c.server != nil {
			_ = c.server.ReadAck(req, tx)
		}
	})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		c := p.find(req)
		switch {
		case c == nil:
			_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		case c.server != nil:
			_ = c.server.ReadBye(req, tx)
		default:
			_ = c.client.ReadBye(req, tx)
		}
	})
	go func() { _ = srv.ServeUDP(conn) }()
	// Requests go out from the listening socket once the transport knows it.
	for i := 0; ; i++ {
		if c, _ := ua.TransportLayer().GetConnection("udp", addr.String()); c != nil {
			break
		}
		if i == 200 {
			t.Fatalf("phone %s: listener %s not ready", user, addr)
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.close = func() {
		_ = conn.Close()
		_ = srv.Close()
		_ = ua.Close()
		_ = eng.Close()
	}
	t.Cleanup(p.Close)
	return p
}

// Close stops the phone as if it lost power: it answers nothing any more.
func (p *Phone) Close() { p.closeOnce.Do(p.close) }

func (p *Phone) find(req *sip.Request) *Call {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, idf := range []func(*sip.Request) (string, error){sip.DialogIDFromRequestUAS, sip.DialogIDFromRequestUAC} {
		if id, err := idf(req); err == nil {
			if c, ok := p.calls[id]; ok {
				return c
			}
		}
	}
	return nil
}

func (p *Phone) remember(id string, c *Call) {
	p.mu.Lock()
	p.calls[id] = c
	p.mu.Unlock()
}

func (p *Phone) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		p.onReinvite(req, tx)
		return
	}
	p.Invites.Add(1)
	if p.mode == Busy {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 486, "Busy Here", nil))
		return
	}
	offer, err := hsip.ParseSDP(req.Body())
	if err != nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
		return
	}
	dlg, err := p.dua.ReadInvite(req, tx)
	if err != nil {
		p.t.Errorf("phone %s: read invite: %v", p.User, err)
		return
	}
	c, err := p.newCall()
	if err != nil {
		_ = dlg.Respond(503, "Service Unavailable", nil)
		return
	}
	c.server = dlg
	c.Leg.SetParams(withSignalIP(offer.Params, req.Source()))
	c.remote = offer
	p.remember(dlg.ID, c)
	_ = dlg.Respond(180, "Ringing", nil)
	if p.mode == Ring {
		<-dlg.Context().Done()
		c.Leg.Close()
		p.Cancelled <- req.CallID().Value()
		return
	}
	if err := dlg.RespondSDP(c.local.Answer(offer)); err != nil {
		p.t.Errorf("phone %s: answer: %v", p.User, err)
		return
	}
	p.Answered <- c
	<-dlg.Context().Done()
	c.Leg.Close()
}

func (p *Phone) newCall() (*Call, error) {
	leg, err := p.Media.NewLeg(p.User)
	if err != nil {
		return nil, err
	}
	c := &Call{Leg: leg, Received: &Capture{}, local: hsip.NewLocalSDP(leg.LocalAddr())}
	leg.AddTap(c.Received)
	return c, nil
}

// Do sends any request built by the caller and returns the final response.
func (p *Phone) Do(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	return p.client.Do(ctx, req)
}

// Call places a call to number at target with our PCMU/PCMA offer
// (prefer first) and waits for the answer.
func (p *Phone) Call(ctx context.Context, target netip.AddrPort, number string, prefer media.Codec) (*Call, error) {
	return p.call(ctx, target, number, prefer, false, "")
}

// CallAuth places a call that answers a digest challenge with the phone's
// user and password, as an agent's phone does when it dials a code.
func (p *Phone) CallAuth(ctx context.Context, target netip.AddrPort, number, password string) (*Call, error) {
	return p.call(ctx, target, number, media.PCMU, false, password)
}

// CallDelayedOffer places a call whose INVITE carries no SDP, as carriers and
// SBCs often do: the far end offers in its 200 and we answer in the ACK.
func (p *Phone) CallDelayedOffer(ctx context.Context, target netip.AddrPort, number string) (*Call, error) {
	return p.call(ctx, target, number, media.PCMU, true, "")
}

func (p *Phone) call(ctx context.Context, target netip.AddrPort, number string, prefer media.Codec, delayed bool, password string) (*Call, error) {
	c, err := p.newCall()
	if err != nil {
		return nil, err
	}
	uri := sip.Uri{Scheme: "sip", User: number, Host: target.Addr().String(), Port: int(target.Port())}
	req := sip.NewRequest(sip.INVITE, uri)
	from := sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: p.User, Host: p.Addr.Addr().String()}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(&from)
	if !delayed {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		req.SetBody(c.local.Offer(prefer))
	}
	start := time.Now()
	dlg, err := p.dua.WriteInvite(ctx, req)
	if err != nil {
		c.Leg.Close()
		return nil, err
	}
	if err := dlg.WaitAnswer(ctx, sipgo.AnswerOptions{Username: p.User, Password: password}); err != nil {
		c.Leg.Close()
		return nil, err
	}
	c.InviteToAnswer = time.Since(start)
	c.Response = dlg.InviteResponse
	remote, err := hsip.ParseSDP(dlg.InviteResponse.Body())
	if err != nil {
		c.Leg.Close()
		return nil, fmt.Errorf("answer sdp: %w", err)
	}
	c.Leg.SetParams(withSignalIP(remote.Params, dlg.InviteResponse.Source()))
	c.remote = remote
	if delayed {
		ack := sip.NewRequest(sip.ACK, dlg.InviteResponse.Contact().Address)
		ack.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		ack.SetBody(c.local.Answer(remote))
		err = dlg.WriteAck(ctx, ack)
	} else {
		err = dlg.Ack(ctx)
	}
	if err != nil {
		return nil, err
	}
	c.client = dlg
	p.remember(dlg.ID, c)
	go func() { <-dlg.Context().Done(); c.Leg.Close() }()
	return c, nil
}

// withSignalIP lets RTP also come from the IP the far end signals from, as
// phones accept from their PBX (and as it arrives through a 1:1 NAT).
func withSignalIP(p media.Params, source string) media.Params {
	if ap, err := netip.ParseAddrPort(source); err == nil {
		p.SignalIP = ap.Addr().Unmap()
	}
	return p
}

// onReinvite answers a re-INVITE from the far end (hotline never sends
// one today; phones in tests answer whatever comes).
func (p *Phone) onReinvite(req *sip.Request, tx sip.ServerTransaction) {
	c := p.find(req)
	if c == nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	offer, err := hsip.ParseSDP(req.Body())
	if err != nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
		return
	}
	c.Leg.SetParams(withSignalIP(offer.Params, req.Source()))
	_ = tx.Respond(sip.NewSDPResponseFromRequest(req, c.local.Answer(offer)))
}

// Capture keeps the audio a leg received, for frequency checks.
type Capture struct {
	mu  sync.Mutex
	pcm []int16
}

// WriteAudio implements media.Tap.
func (c *Capture) WriteAudio(pcm []int16) {
	c.mu.Lock()
	c.pcm = append(c.pcm, pcm...)
	c.mu.Unlock()
}

// Reset forgets what was captured so far.
func (c *Capture) Reset() {
	c.mu.Lock()
	c.pcm = c.pcm[:0]
	c.mu.Unlock()
}

// Samples returns a copy of what was captured.
func (c *Capture) Samples() []int16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int16(nil), c.pcm...)
}
