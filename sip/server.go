// Package sip is hotline's signalling: transports (sipgo), the registrar
// with digest auth, trunk admission, dialogs and the two B2BUA leg kinds
// (inbound calls from trunks, outbound calls to agents), SDP offer/answer.
// It never touches RTP payloads: media legs are created here and handed on.
package sip

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/hotline-pbx/hotline/config"
	"github.com/hotline-pbx/hotline/media"
	"github.com/hotline-pbx/hotline/store"
)

// CallHandler runs an answered inbound call; the call ends when it returns.
type CallHandler interface {
	HandleCall(c *InboundCall)
}

// Options wires a Server.
type Options struct {
	Config  func() *config.Config // the current snapshot (reload swaps it)
	Media   *media.Engine
	Handler CallHandler
	// OnAgent is told each change of an agent's presence, in order, one
	// call at a time.
	OnAgent func(agent string, p Presence)
	// Qualify overrides how often each device is probed with OPTIONS
	// (0: [sip] qualify_interval).
	Qualify time.Duration
	Logger  *slog.Logger
	// Bindings keeps registrations across restarts (nil: memory only).
	Bindings store.Bindings
}

// Server is the SIP side of hotline.
type Server struct {
	opts   Options
	log    *slog.Logger
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client
	dua    *sipgo.DialogUA
	auth   *Authenticator
	reg    *Registrar

	listen    netip.AddrPort
	udp       net.PacketConn
	tcp       net.Listener
	dialogs   sync.Map       // dialog id -> *dialog
	calls     sync.WaitGroup // inbound call handlers
	forks     sync.WaitGroup // INVITEs to agents' devices not yet resolved
	draining  atomic.Bool    // new calls get 503
	inFlight  atomic.Int64
	closeOnce sync.Once

	wire      *wireChecks // what sits between the sockets and sipgo (transport.go)
	udpBuffer int         // receive buffer asked for the UDP socket; 0: udpReadBuffer
}

// New builds a server from the current config; Start binds it.
func New(opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	cfg := opts.Config()
	listen, err := netip.ParseAddrPort(cfg.SIP.Listen)
	if err != nil {
		return nil, fmt.Errorf("sip listen %q: %w", cfg.SIP.Listen, err)
	}
	s := &Server{opts: opts, log: opts.Logger.With("part", "sip"), listen: listen, auth: NewAuthenticator(cfg.SIP.Realm, cfg.SIP.DigestAlgorithms)}
	s.reg = NewRegistrar(opts.Bindings, func(user string, p Presence) {
		s.log.Info("agent presence", "agent", user, "presence", p.String())
		if opts.OnAgent != nil {
			opts.OnAgent(user, p)
		}
	})
	return s, nil
}

// Registrar exposes the bindings (status, tests).
func (s *Server) Registrar() *Registrar { return s.reg }

// Addr is the address SIP listens on (its port is known after Start).
func (s *Server) Addr() netip.AddrPort { return s.listen }

// Start binds the configured transports and serves until ctx is done.
func (s *Server) Start(ctx context.Context) error {
	cfg := s.opts.Config()
	ua := cfg.SIP.UserAgent
	if ua == "" {
		ua = "hotline"
	}
	var err error
	sipLog := s.sipgoLogger()
	s.wire = newWireChecks(s.log)
	s.ua, err = sipgo.NewUA(sipgo.WithUserAgent(ua), sipgo.WithUserAgentHostname(s.advertised().Addr().String()),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(sipLog),
			// The read filter first: the TCP transport given here copies it when this option runs.
			sip.WithTransportLayerReadFilter(s.wire.udpFilter(func() net.PacketConn { return s.udp })),
			// ReadTimeout is an idle timeout: it is set again before each read, for accepted and dialled connections.
			sip.WithTransportLayerTransports(sip.TransportsConfig{TCP: &sip.TransportTCP{ReadTimeout: cfg.SIP.TCPIdleTimeout.Duration}})),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(sipLog)))
	if err != nil {
		return fmt.Errorf("sip user agent: %w", err)
	}
	s.srv, err = sipgo.NewServer(s.ua, sipgo.WithServerLogger(sipLog))
	if err != nil {
		return fmt.Errorf("sip server: %w", err)
	}
	// An IPv4 address (0.0.0.0 included) listens on IPv4 only, so the
	// address we report stays the one configured rather than [::].
	family := "6"
	if s.listen.Addr().Is4() {
		family = "4"
	}
	for _, t := range cfg.SIP.Transports {
		switch strings.ToLower(t) {
		case "udp":
			if s.udp, err = net.ListenPacket("udp"+family, s.listen.String()); err != nil {
				return fmt.Errorf("sip udp listen: %w", err)
			}
			s.listen = s.udp.LocalAddr().(*net.UDPAddr).AddrPort()
			s.sizeUDPBuffer()
		case "tcp":
			if s.tcp, err = net.Listen("tcp"+family, s.listen.String()); err != nil {
				return fmt.Errorf("sip tcp listen: %w", err)
			}
			s.listen = s.tcp.Addr().(*net.TCPAddr).AddrPort()
		}
	}
	// Via names where responses must come back: behind 1:1 NAT, the public address.
	via := s.advertised()
	s.client, err = sipgo.NewClient(s.ua, sipgo.WithClientHostname(via.Addr().String()), sipgo.WithClientPort(int(via.Port())), sipgo.WithClientLogger(sipLog))
	if err != nil {
		return fmt.Errorf("sip client: %w", err)
	}
	s.dua = &sipgo.DialogUA{
		Client:         s.client,
		ContactHDR:     *s.contact("UDP"),
		RewriteContact: true, // agents are behind NAT: in-dialog requests go where their packets come from
	}
	s.srv.OnRegister(s.guard(s.handleRegister))
	s.srv.OnInvite(s.guard(s.handleInvite))
	s.srv.OnAck(s.guard(s.handleAck))
	s.srv.OnBye(s.guard(s.handleBye))
	s.srv.OnUpdate(s.guard(s.inDialog((*dialog).onUpdate)))
	s.srv.OnInfo(s.guard(s.inDialog((*dialog).onInfo)))
	s.srv.OnCancel(s.guard(func(req *sip.Request, tx sip.ServerTransaction) {
		// A CANCEL matching a live INVITE is handled by the transaction layer.
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist")
	}))
	s.srv.OnOptions(s.guard(func(req *sip.Request, tx sip.ServerTransaction) {
		s.respond(tx, req, 200, "OK", sip.NewHeader("Accept", "application/sdp"))
	}))
	s.srv.OnNoRoute(s.guard(func(req *sip.Request, tx sip.ServerTransaction) {
		s.respond(tx, req, 405, "Method Not Allowed")
	}))
	if s.udp != nil {
		go func() { _ = s.srv.ServeUDP(s.udp) }()
	}
	if s.tcp != nil {
		l := s.wire.listenStream(s.tcp, cfg.SIP.TCPMaxPerSource)
		go func() { _ = s.srv.ServeTCP(l) }()
	}
	s.awaitUDPServing()
	s.restoreBindings(ctx)
	go s.qualifyLoop(ctx)
	go s.watchDrops(ctx)
	go func() { <-ctx.Done(); s.Close() }()
	s.log.Info("sip listening", "addr", s.listen.String(), "transports", cfg.SIP.Transports)
	return nil
}

// awaitUDPServing waits (briefly) until sipgo has taken the UDP socket in,
// so that the requests we send at once (probes of restored registrations)
// leave from it rather than failing.
func (s *Server) awaitUDPServing() {
	if s.udp == nil {
		return
	}
	for range 200 {
		if c, _ := s.ua.TransportLayer().GetConnection("udp", s.listen.String()); c != nil {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.log.Warn("sip: the UDP socket is not serving yet; first requests may fail")
}

// Close stops the transports; calls in progress end with their sockets.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		if s.srv != nil {
			_ = s.srv.Close()
		}
		if s.ua != nil {
			_ = s.ua.Close()
		}
		// sipgo leaves the sockets we gave it open: close them, which also
		// ends the TCP accept loop (and any backoff in it).
		if s.tcp != nil {
			_ = s.tcp.Close()
		}
		if s.udp != nil {
			_ = s.udp.Close()
		}
	})
}

// Wait blocks until every call handler has returned.
func (s *Server) Wait() { s.calls.Wait() }

// guard keeps one bad request (or a bug it finds) from taking the daemon
// down: a panic in a handler is logged and answered with 500.
func (s *Server) guard(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("handler panic", "method", string(req.Method), "call_id", callID(req), "panic", p, "stack", string(debug.Stack()))
				s.respond(tx, req, 500, "Server Internal Error")
			}
		}()
		h(req, tx)
	}
}

// allowed is what we answer; every response and request of ours says so.
const allowed = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, UPDATE, INFO"

// stamp adds the headers every message of ours carries: who we are
// ([sip] user_agent, as User-Agent or Server), Allow and Supported.
func (s *Server) stamp(m sip.Message) {
	name := s.opts.Config().SIP.UserAgent
	switch m.(type) {
	case *sip.Request:
		if len(m.GetHeaders("User-Agent")) == 0 {
			m.AppendHeader(sip.NewHeader("User-Agent", name))
		}
	case *sip.Response:
		if len(m.GetHeaders("Server")) == 0 {
			m.AppendHeader(sip.NewHeader("Server", name))
		}
	}
	if len(m.GetHeaders("Allow")) == 0 {
		m.AppendHeader(sip.NewHeader("Allow", allowed))
	}
	if len(m.GetHeaders("Supported")) == 0 {
		m.AppendHeader(sip.NewHeader("Supported", "path"))
	}
}

// response builds a stamped response; a body is SDP.
func (s *Server) response(req *sip.Request, code int, reason string, body []byte) *sip.Response {
	var res *sip.Response
	if body != nil {
		res = sip.NewSDPResponseFromRequest(req, body)
		res.StatusCode, res.Reason = code, reason
	} else {
		res = sip.NewResponseFromRequest(req, code, reason, nil)
	}
	s.stamp(res)
	return res
}

func (s *Server) respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, headers ...sip.Header) {
	res := s.response(req, code, reason, nil)
	for _, h := range headers {
		res.AppendHeader(h)
	}
	_ = tx.Respond(res)
}

// contact is our Contact for a peer using transport: the advertised address
// (or the one we listen on), naming the transport unless it is UDP, so the
// peer's in-dialog requests come back over the transport it uses.
func (s *Server) contact(transport string) *sip.ContactHeader {
	at := s.advertised()
	c := &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "hotline", Host: at.Addr().String(), Port: int(at.Port())}}
	if t := strings.ToLower(transport); t != "" && t != "udp" {
		c.Address.UriParams = sip.NewParams()
		c.Address.UriParams.Add("transport", t)
	}
	return c
}

// advertised is the address peers are told to reach us at: sip.advertise
// (its port defaulting to ours) when set, else the address we listen on.
func (s *Server) advertised() netip.AddrPort {
	if ap, err := config.ParseAdvertise(s.opts.Config().SIP.Advertise); err == nil {
		if ap.Port() == 0 {
			ap = netip.AddrPortFrom(ap.Addr(), s.listen.Port())
		}
		return ap
	}
	return s.listen
}

// findDialog matches an in-dialog request to a dialog we hold either as
// UAS (inbound call) or as UAC (agent leg).
func (s *Server) findDialog(req *sip.Request) *dialog {
	for _, id := range []func(*sip.Request) (string, error){sip.DialogIDFromRequestUAS, sip.DialogIDFromRequestUAC} {
		if id, err := id(req); err == nil {
			if d, ok := s.dialogs.Load(id); ok {
				return d.(*dialog)
			}
		}
	}
	return nil
}

// inDialog routes a request that only makes sense inside a dialog.
func (s *Server) inDialog(h func(*dialog, *sip.Request, sip.ServerTransaction)) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if d := s.findDialog(req); d != nil {
			h(d, req, tx)
			return
		}
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist")
	}
}

func (s *Server) handleAck(req *sip.Request, tx sip.ServerTransaction) {
	if d := s.findDialog(req); d != nil {
		d.onAck(req, tx)
	}
}

func (s *Server) handleBye(req *sip.Request, tx sip.ServerTransaction) {
	d := s.findDialog(req)
	if d == nil {
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	if err := d.onBye(req, tx); err != nil {
		s.log.Warn("bye", "call_id", callID(req), "error", err)
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist")
	}
}

func callID(req *sip.Request) string {
	if c := req.CallID(); c != nil {
		return string(*c)
	}
	return ""
}

// Drain stops taking new calls: INVITEs get 503 with Retry-After, calls in
// progress go on.
func (s *Server) Drain() { s.draining.Store(true) }

// ActiveCalls is how many inbound calls are in progress.
func (s *Server) ActiveCalls() int { return int(s.inFlight.Load()) }

// Reconfigure applies the [sip] settings that can change while running:
// realm and digest algorithms (user_agent, qualify_interval and the expiry
// limits are read where they are used).
func (s *Server) Reconfigure(cfg *config.Config) {
	s.auth.Reconfigure(cfg.SIP.Realm, cfg.SIP.DigestAlgorithms)
}
