package sip_test

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/hotline-pbx/hotline/config"
	"github.com/hotline-pbx/hotline/media"
	hsip "github.com/hotline-pbx/hotline/sip"
	"github.com/hotline-pbx/hotline/sip/siptest"
)

type hangupHandler struct{}

func (hangupHandler) HandleCall(c *hsip.InboundCall) {}

func startServer(t *testing.T, adjust ...func(*config.Config)) *hsip.Server {
	t.Helper()
	return startServerWith(t, hangupHandler{}, adjust...)
}

func startServerWith(t *testing.T, handler hsip.CallHandler, adjust ...func(*config.Config)) *hsip.Server {
	t.Helper()
	cfg := config.Default()
	cfg.SIP.Listen = "127.0.0.1:0"
	for _, f := range adjust {
		f(cfg)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	eng, err := media.NewEngine(media.Config{IP: netip.MustParseAddr("127.0.0.1"), PortMin: 43000, PortMax: 43098, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	srv, _ := startWith(t, hsip.Options{Config: func() *config.Config { return cfg }, Media: eng, Handler: handler, Logger: log})
	return srv
}

func TestRegisterAuth(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	wrong := siptest.NewPhone(t, "127.0.0.2", "1001", 43100, siptest.Busy)
	resWrong, err := wrong.Register(ctx, srv.Addr(), "not-the-password")
	if err != nil {
		t.Fatal(err)
	}
	unknown := siptest.NewPhone(t, "127.0.0.2", "7777", 43200, siptest.Busy)
	resUnknown, err := unknown.Register(ctx, srv.Addr(), "not-the-password")
	if err != nil {
		t.Fatal(err)
	}
	if resWrong.StatusCode != 403 || resUnknown.StatusCode != 403 || resWrong.Reason != resUnknown.Reason {
		t.Errorf("wrong password -> %d %s, unknown user -> %d %s; want the same 403", resWrong.StatusCode, resWrong.Reason, resUnknown.StatusCode, resUnknown.Reason)
	}
	if _, ok := srv.Registrar().Lookup("1001"); ok {
		t.Fatal("a wrong password created a binding")
	}

	good := siptest.NewPhone(t, "127.0.0.3", "1001", 43300, siptest.Busy)
	res, err := good.Register(ctx, srv.Addr(), "demo1001")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("register: %v %v", res, err)
	}
	if c := res.Contact(); c == nil || !strings.Contains(c.String(), "expires=300") {
		t.Errorf("200 OK contact = %v, want expires=300", c)
	}
	b, ok := srv.Registrar().Lookup("1001")
	if !ok || b.Source != good.Addr.String() || b.Transport != "UDP" {
		t.Errorf("binding = %+v, want source %s over UDP", b, good.Addr)
	}
}

// With SHA-256 offered first, a phone that takes the first challenge (as
// sipgo's client does) registers with SHA-256.
func TestRegisterSHA256(t *testing.T) {
	srv := startServer(t, func(c *config.Config) { c.SIP.DigestAlgorithms = []string{"SHA-256", "MD5"} })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := siptest.NewPhone(t, "127.0.0.2", "1002", 43150, siptest.Busy)
	res, err := p.Register(ctx, srv.Addr(), "demo1002")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("register with SHA-256: %v %v", res, err)
	}
	if _, ok := srv.Registrar().Lookup("1002"); !ok {
		t.Error("no binding after a SHA-256 registration")
	}
}

func invite(t *testing.T, p *siptest.Phone, srv *hsip.Server, did string, body []byte) *sip.Response {
	t.Helper()
	uri := sip.Uri{Scheme: "sip", User: did, Host: srv.Addr().Addr().String(), Port: int(srv.Addr().Port())}
	req := sip.NewRequest(sip.INVITE, uri)
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: p.User, Host: p.Addr.Addr().String(), Port: int(p.Addr.Port())}})
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(body)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := p.Do(ctx, req)
	if err != nil {
		t.Fatalf("INVITE %s: %v", did, err)
	}
	return res
}

func TestInviteAdmission(t *testing.T) {
	srv := startServer(t)
	offer := hsip.OfferSDP(netip.MustParseAddrPort("127.0.0.1:43990"), media.PCMU)
	g729 := []byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 43990 RTP/AVP 18\r\n")

	carrier := siptest.NewPhone(t, "127.0.0.1", "carrier", 43400, siptest.Busy)
	if res := invite(t, carrier, srv, "+15550199", offer); res.StatusCode != 403 {
		t.Errorf("trunk INVITE to an unknown DID -> %d, want 403", res.StatusCode)
	}
	if res := invite(t, carrier, srv, "+15550100", g729); res.StatusCode != 488 {
		t.Errorf("INVITE offering only G.729 -> %d, want 488", res.StatusCode)
	}
	stranger := siptest.NewPhone(t, "127.0.0.9", "stranger", 43500, siptest.Busy)
	if res := invite(t, stranger, srv, "+15550100", offer); res.StatusCode != 403 {
		t.Errorf("INVITE from a non-trunk address -> %d, want 403", res.StatusCode)
	}
}

func TestOptionsAndMalformed(t *testing.T) {
	srv := startServer(t)
	p := siptest.NewPhone(t, "127.0.0.2", "probe", 43600, siptest.Busy)
	req := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: srv.Addr().Addr().String(), Port: int(srv.Addr().Port())})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := p.Do(ctx, req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("OPTIONS: %v %v", res, err)
	}

	conn, err := net.ListenPacket("udp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dst := net.UDPAddrFromAddrPort(srv.Addr())
	send := func(msg string) string {
		if _, err := conn.WriteTo([]byte(msg), dst); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			return ""
		}
		return string(buf[:n])
	}
	via := "Via: SIP/2.0/UDP " + conn.LocalAddr().String() + ";branch=z9hG4bK-bad1\r\n"
	bad := "INVITE sip:+15550100@127.0.0.1 SIP/2.0\r\n" + via +
		"From: <sip:a@127.0.0.2>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: bad-1\r\nCSeq: one INVITE\r\nContent-Length: 0\r\n\r\n"
	if got := send(bad); !strings.HasPrefix(got, "SIP/2.0 400") || !strings.Contains(got, "bad-1") {
		t.Errorf("malformed INVITE got %q, want 400 with its Call-ID", got)
	}
	badAck := strings.Replace(strings.Replace(bad, "INVITE sip:", "ACK sip:", 1), "one INVITE", "one ACK", 1)
	if got := send(badAck); got != "" {
		t.Errorf("malformed ACK got a response %q; an ACK is never answered", got)
	}
	if got := send("\x00\x01garbage that is not SIP at all\r\n\r\n"); got != "" {
		t.Errorf("garbage got a response %q, want silence", got)
	}
	// The daemon still answers after the garbage.
	res, err = p.Do(ctx, sip.NewRequest(sip.OPTIONS, req.Recipient))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("OPTIONS after garbage: %v %v", res, err)
	}
}
