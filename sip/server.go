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
	dialogs   sync.Map // dialog id -> *dialog
	calls     sync.WaitGroup
	inFlight  atomic.Int64
	closeOnce sync.Once

	wire      *wireChecks // what sits between the sockets and sipgo (transport.go)
	udpBuffer int         // receive buffer asked for the UDP socket; 0: udpReadBuffer
}

// dialog is what an in-dialog request (ACK, BYE, re-INVITE) needs to find.
type dialog struct {
	server *sipgo.DialogServerSession // set for inbound calls
	client *sipgo.DialogClientSession // set for agent legs
	leg    *media.Leg
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
	s.ua, err = sipgo.NewUA(sipgo.WithUserAgent(ua), sipgo.WithUserAgentHostname(s.listen.Addr().String()),
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
	for _, t := range cfg.SIP.Transports {
		switch strings.ToLower(t) {
		case "udp":
			if s.udp, err = net.ListenPacket("udp", s.listen.String()); err != nil {
				return fmt.Errorf("sip udp listen: %w", err)
			}
			s.listen = s.udp.LocalAddr().(*net.UDPAddr).AddrPort()
			s.sizeUDPBuffer()
		case "tcp":
			if s.tcp, err = net.Listen("tcp", s.listen.String()); err != nil {
				return fmt.Errorf("sip tcp listen: %w", err)
			}
			s.listen = s.tcp.Addr().(*net.TCPAddr).AddrPort()
		}
	}
	s.client, err = sipgo.NewClient(s.ua, sipgo.WithClientHostname(s.listen.Addr().String()), sipgo.WithClientPort(int(s.listen.Port())), sipgo.WithClientLogger(sipLog))
	if err != nil {
		return fmt.Errorf("sip client: %w", err)
	}
	s.dua = &sipgo.DialogUA{
		Client:         s.client,
		ContactHDR:     sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "hotline", Host: s.listen.Addr().String(), Port: int(s.listen.Port())}},
		RewriteContact: true, // agents are behind NAT: in-dialog requests go where their packets come from
	}
	s.srv.OnRegister(s.guard(s.handleRegister))
	s.srv.OnInvite(s.guard(s.handleInvite))
	s.srv.OnAck(s.guard(s.handleAck))
	s.srv.OnBye(s.guard(s.handleBye))
	s.srv.OnCancel(func(req *sip.Request, tx sip.ServerTransaction) {
		// A CANCEL matching a live INVITE is handled by the transaction layer.
		respond(tx, req, 481, "Call/Transaction Does Not Exist")
	})
	s.srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		res.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER"))
		res.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
		_ = tx.Respond(res)
	})
	if s.udp != nil {
		go func() { _ = s.srv.ServeUDP(s.udp) }()
	}
	if s.tcp != nil {
		l := s.wire.listenStream(s.tcp, cfg.SIP.TCPMaxPerSource)
		go func() { _ = s.srv.ServeTCP(l) }()
	}
	s.restoreBindings(ctx)
	go s.qualifyLoop(ctx)
	go func() { <-ctx.Done(); s.Close() }()
	s.log.Info("sip listening", "addr", s.listen.String(), "transports", cfg.SIP.Transports)
	return nil
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
				respond(tx, req, 500, "Server Internal Error")
			}
		}()
		h(req, tx)
	}
}

func respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, headers ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range headers {
		res.AppendHeader(h)
	}
	_ = tx.Respond(res)
}

// findDialog matches an in-dialog request to a dialog we hold either as
// UAS (inbound call) or as UAC (agent leg).
func (s *Server) findDialog(req *sip.Request) *dialog {
	if id, err := sip.DialogIDFromRequestUAS(req); err == nil {
		if d, ok := s.dialogs.Load(id); ok {
			return d.(*dialog)
		}
	}
	if id, err := sip.DialogIDFromRequestUAC(req); err == nil {
		if d, ok := s.dialogs.Load(id); ok {
			return d.(*dialog)
		}
	}
	return nil
}

func (s *Server) handleAck(req *sip.Request, tx sip.ServerTransaction) {
	if d := s.findDialog(req); d != nil && d.server != nil {
		_ = d.server.ReadAck(req, tx)
	}
}

func (s *Server) handleBye(req *sip.Request, tx sip.ServerTransaction) {
	d := s.findDialog(req)
	if d == nil {
		respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	var err error
	if d.server != nil {
		err = d.server.ReadBye(req, tx)
	} else {
		err = d.client.ReadBye(req, tx)
	}
	if err != nil {
		s.log.Warn("bye", "call_id", callID(req), "error", err)
		respond(tx, req, 481, "Call/Transaction Does Not Exist")
	}
}

// handleReinvite answers an in-dialog INVITE (hold, codec change, refresh)
// by renegotiating the leg's media with the same local address.
func (s *Server) handleReinvite(req *sip.Request, tx sip.ServerTransaction) {
	d := s.findDialog(req)
	if d == nil {
		respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	if len(req.Body()) == 0 { // we keep our answer; a late offer refresh gets our last session back
		res := sip.NewSDPResponseFromRequest(req, OfferSDP(d.leg.LocalAddr(), d.leg.Params().Codec))
		_ = tx.Respond(res)
		return
	}
	offer, err := ParseSDP(req.Body())
	if err != nil {
		respond(tx, req, 488, "Not Acceptable Here")
		return
	}
	d.leg.SetParams(offer.Params)
	res := sip.NewSDPResponseFromRequest(req, AnswerSDP(d.leg.LocalAddr(), offer))
	res.AppendHeader(&s.dua.ContactHDR)
	_ = tx.Respond(res)
}

func callID(req *sip.Request) string {
	if c := req.CallID(); c != nil {
		return string(*c)
	}
	return ""
}
