package sip

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/hotline-pbx/hotline/config"
)

// Loopback addresses and ports of this package's transport tests.
const (
	testServerIP = "127.0.7.1"
	testPeerIP   = "127.0.7.2"
	testOtherIP  = "127.0.7.3"
)

// capturedLog is a log a test can read while servers write to it.
type capturedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *capturedLog) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func (c *capturedLog) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// startTransportServer starts a Server on testServerIP (UDP and TCP) that
// logs everything, down to debug, into the returned log.
func startTransportServer(t *testing.T, adjust func(*config.Config), before func(*Server)) (*Server, *capturedLog) {
	t.Helper()
	cfg := config.Default()
	cfg.SIP.Listen = testServerIP + ":0"
	if adjust != nil {
		adjust(cfg)
	}
	logs := &capturedLog{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(Options{Config: func() *config.Config { return cfg }, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return s, logs
}

// dialFrom opens a TCP connection from ip to addr.
func dialFrom(t *testing.T, ip string, addr net.Addr) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByPeer reports whether the other end closed c (EOF or reset) before
// wait passed.
func closedByPeer(c net.Conn, wait time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	_, err := c.Read(make([]byte, 64))
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// dialPeer connects (UDP or TCP) from testPeerIP to the server at to.
func dialPeer(t *testing.T, transport string, to netip.AddrPort) net.Conn {
	t.Helper()
	var local net.Addr = &net.TCPAddr{IP: net.ParseIP(testPeerIP)}
	if transport == "UDP" {
		local = &net.UDPAddr{IP: net.ParseIP(testPeerIP)}
	}
	d := net.Dialer{LocalAddr: local, Timeout: 5 * time.Second}
	c, err := d.Dial(strings.ToLower(transport), to.String())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// flakyListener fails Accept with errs before handing out what inner accepts.
type flakyListener struct {
	net.Listener
	errs []error
}

func (f *flakyListener) Accept() (net.Conn, error) {
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return nil, err
	}
	return f.Listener.Accept()
}

func TestAcceptRetriesWithBackoffAndNeverGivesUp(t *testing.T) {
	inner, err := net.Listen("tcp", testServerIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	flaky := &flakyListener{Listener: inner, errs: make([]error, 12)}
	for i := range flaky.errs {
		flaky.errs[i] = emfile
	}
	w := newWireChecks(slog.New(slog.DiscardHandler))
	l := w.listenStream(flaky, 0)
	var slept []time.Duration
	l.sleep = func(d time.Duration, _ <-chan struct{}) bool { slept = append(slept, d); return true }

	acceptFrom(t, l, dialFrom(t, testPeerIP, inner.Addr()))
	ms := time.Millisecond
	want := []time.Duration{5 * ms, 10 * ms, 20 * ms, 40 * ms, 80 * ms, 160 * ms, 320 * ms, 640 * ms, time.Second, time.Second, time.Second, time.Second}
	if fmt.Sprint(slept) != fmt.Sprint(want) {
		t.Errorf("backoff %v, want %v", slept, want)
	}
	if got := w.stats().AcceptErrors; got != 12 {
		t.Errorf("AcceptErrors = %d, want 12", got)
	}

	// The backoff restarts from 5 ms after a success; Close ends a wait.
	flaky.errs = []error{emfile}
	slept = nil
	l.sleep = func(d time.Duration, stop <-chan struct{}) bool {
		slept = append(slept, d)
		l.Close()
		<-stop
		return false
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept on a listener closed while backing off: %v, want net.ErrClosed", err)
	}
	if len(slept) != 1 || slept[0] != 5*ms {
		t.Errorf("backoff after a success %v, want [5ms]", slept)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept on a closed listener: %v, want net.ErrClosed", err)
	}
}

func TestConnectionsPerSourceCapped(t *testing.T) {
	inner, err := net.Listen("tcp", testServerIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	w := newWireChecks(slog.New(slog.DiscardHandler))
	l := w.listenStream(inner, 3)
	defer l.Close()

	var peers []net.Conn
	for range 5 {
		peers = append(peers, dialFrom(t, testPeerIP, inner.Addr()))
	}
	var accepted []net.Conn
	for _, p := range peers[:3] {
		accepted = append(accepted, acceptFrom(t, l, p))
	}
	// The next Accept closes the two over the cap and returns another source's.
	acceptFrom(t, l, dialFrom(t, testOtherIP, inner.Addr()))
	if got := w.stats().Rejected; got != 2 {
		t.Errorf("Rejected = %d, want 2", got)
	}
	closed := 0
	for _, p := range peers {
		if closedByPeer(p, 200*time.Millisecond) {
			closed++
		}
	}
	if closed != 2 {
		t.Errorf("%d of 5 connections from one source closed by the listener, want 2 (cap 3)", closed)
	}

	// A closed connection frees its place, once however often it is closed.
	accepted[0].Close()
	accepted[0].Close()
	if got := l.open(netip.MustParseAddr(testPeerIP)); got != 2 {
		t.Errorf("%s holds %d connections after one closed, want 2", testPeerIP, got)
	}
	acceptFrom(t, l, dialFrom(t, testPeerIP, inner.Addr()))
}

// acceptFrom accepts from l and checks that it is peer's connection.
func acceptFrom(t *testing.T, l net.Listener, peer net.Conn) net.Conn {
	t.Helper()
	c, err := l.Accept()
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if got, want := addrPortOf(c.RemoteAddr()), addrPortOf(peer.LocalAddr()); got != want {
		t.Errorf("accepted %v, want %v", got, want)
	}
	return c
}

func TestIdleTCPConnectionClosedKeepAliveKeepsIt(t *testing.T) {
	const idle = 400 * time.Millisecond
	s, _ := startTransportServer(t, func(c *config.Config) { c.SIP.TCPIdleTimeout.Duration = idle }, nil)
	addr := net.TCPAddrFromAddrPort(s.Addr())

	silent := dialFrom(t, testPeerIP, addr)
	talking := dialFrom(t, testPeerIP, addr)
	// RFC 5626 pings, well within the timeout, for longer than it: each is
	// answered (so the connection is open) and none is closed.
	r := bufio.NewReader(talking)
	for i := range 12 {
		if _, err := talking.Write([]byte("\r\n\r\n")); err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
		_ = talking.SetReadDeadline(time.Now().Add(5 * time.Second))
		pong := make([]byte, 2)
		if _, err := io.ReadFull(r, pong); err != nil || string(pong) != "\r\n" {
			t.Fatalf("ping %d: pong %q, %v", i, pong, err)
		}
		time.Sleep(idle / 4)
	}
	if !closedByPeer(silent, 10*time.Second) {
		t.Fatal("a connection that sent nothing was not closed")
	}
	if got := s.TransportStats().IdleClosed; got != 1 {
		t.Errorf("IdleClosed = %d, want 1 (the silent connection)", got)
	}
	if closedByPeer(talking, 10*time.Millisecond) {
		t.Error("the connection that kept alive was closed")
	}
}

func TestDialledTCPConnectionClosedWhenIdle(t *testing.T) {
	s, _ := startTransportServer(t, func(c *config.Config) { c.SIP.TCPIdleTimeout.Duration = 300 * time.Millisecond }, nil)
	phone, err := net.Listen("tcp", testPeerIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	port := phone.Addr().(*net.TCPAddr).Port
	req := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: testPeerIP, Port: port, UriParams: sip.HeaderParams{{K: "transport", V: "tcp"}}})
	req.SetTransport("TCP")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	answered := make(chan error, 1)
	go func() {
		res, err := s.client.Do(ctx, req)
		if err == nil && res.StatusCode != 200 {
			err = fmt.Errorf("status %d", res.StatusCode)
		}
		answered <- err
	}()
	c, err := phone.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := sip.NewParser().ParseSIP(readUntilBlankLine(t, c))
	if err != nil {
		t.Fatalf("the phone read %v, %v", got, err)
	}
	res := sip.NewResponseFromRequest(got.(*sip.Request), 200, "OK", nil)
	if _, err := c.Write([]byte(res.String())); err != nil {
		t.Fatal(err)
	}
	if err := <-answered; err != nil {
		t.Fatalf("OPTIONS over the dialled connection: %v", err)
	}
	if !closedByPeer(c, 10*time.Second) {
		t.Error("the connection hotline dialled stayed open, idle")
	}
}

func readUntilBlankLine(t *testing.T, c net.Conn) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(got, []byte("\r\n\r\n")) {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("read %q: %v", got, err)
		}
		got = append(got, buf[:n]...)
	}
	return got
}

// recordingConn is the network side of a streamConn under test.
type recordingConn struct {
	net.Conn
	written bytes.Buffer
}

func (r *recordingConn) Write(b []byte) (int, error)      { return r.written.Write(b) }
func (r *recordingConn) SetWriteDeadline(time.Time) error { return nil }

const okOptions = "OPTIONS sip:hotline@127.0.7.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.7.2:5060;branch=z9hG4bK-%d\r\n" +
	"From: <sip:a@127.0.7.2>;tag=1\r\nTo: <sip:hotline@127.0.7.1>\r\nCall-ID: c%d\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n" +
	"Content-Length: 4\r\n\r\nbody"

func TestStreamConnFramesAsSipgo(t *testing.T) {
	one, two := fmt.Sprintf(okOptions, 1, 1), fmt.Sprintf(okOptions, 2, 2)
	old := strings.Replace(fmt.Sprintf(okOptions, 3, 3), "SIP/2.0\r\n", "SIP/1.0\r\n", 1)
	chunks := func(s string, n int) []string {
		var out []string
		for len(s) > n {
			out = append(out, s[:n])
			s = s[n:]
		}
		return append(out, s)
	}
	for _, tc := range []struct {
		name    string
		chunks  []string
		want    []string // what each take leaves for sipgo, in order
		refused int
	}{
		{"two messages in one read", []string{one + two}, []string{one + two}, 0},
		{"byte by byte", chunks(one, 1), append(make([]string, len(one)-1), one), 0},
		{"split in the body", []string{one[:len(one)-2], one[len(one)-2:] + two[:10], two[10:]}, []string{"", one, two}, 0},
		{"keep-alive alone", []string{"\r\n\r\n", one, "\r\n"}, []string{"\r\n\r\n", one, "\r\n"}, 0},
		{"CRLF before a message", []string{"\r\n\r\n\r\n" + one}, []string{"\r\n\r\n\r\n" + one}, 0},
		{"zeros", []string{"\x00\x00", one}, []string{"", one}, 0},
		{"refused between good ones", []string{one + old + two}, []string{one + two}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWireChecks(slog.New(slog.DiscardHandler))
			peer := &recordingConn{}
			c := &streamConn{Conn: peer, l: w.listenStream(nil, 0), src: netip.MustParseAddrPort(testPeerIP + ":5060"), stream: w.parser.NewSIPStream()}
			for i, ch := range tc.chunks {
				if err := c.take([]byte(ch)); err != nil {
					t.Fatalf("chunk %d: %v", i, err)
				}
				if got := string(c.out); got != tc.want[i] {
					t.Fatalf("after chunk %d sipgo gets %q, want %q", i, got, tc.want[i])
				}
				c.out = c.out[:0]
			}
			if got := w.stats().Refused; got != uint64(tc.refused) {
				t.Errorf("Refused = %d, want %d", got, tc.refused)
			}
			if tc.refused > 0 && !strings.HasPrefix(peer.written.String(), "SIP/2.0 505 Version Not Supported\r\n") {
				t.Errorf("the peer got %q, want a 505", peer.written.String())
			}
		})
	}
}

// BenchmarkStreamConnCheck is what the TCP check adds per message: a second
// parse (sipgo parses it again) and a copy.
func BenchmarkStreamConnCheck(b *testing.B) {
	w := newWireChecks(slog.New(slog.DiscardHandler))
	c := &streamConn{Conn: &recordingConn{}, l: w.listenStream(nil, 0), src: netip.MustParseAddrPort(testPeerIP + ":5060"), stream: w.parser.NewSIPStream()}
	msg := []byte(fmt.Sprintf(okOptions, 1, 1))
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if err := c.take(msg); err != nil {
			b.Fatal(err)
		}
		c.out = c.out[:0]
	}
}

// FuzzStreamConn: whatever a peer sends, however it is cut, the check never
// panics and hands sipgo only bytes sipgo parses without error.
func FuzzStreamConn(f *testing.F) {
	f.Add([]byte(fmt.Sprintf(okOptions, 1, 1)+fmt.Sprintf(okOptions, 2, 2)), uint16(30))
	f.Add([]byte("\r\n\r\n"+fmt.Sprintf(okOptions, 1, 1)), uint16(2))
	f.Add([]byte(strings.Replace(fmt.Sprintf(okOptions, 1, 1), "SIP/2.0", "SIP/1.0", 1)), uint16(100))
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		w := newWireChecks(slog.New(slog.DiscardHandler))
		c := &streamConn{Conn: &recordingConn{}, l: w.listenStream(nil, 0), src: netip.MustParseAddrPort(testPeerIP + ":5060"), stream: w.parser.NewSIPStream()}
		k := int(cut) % (len(data) + 1)
		sipgo := sip.NewParser().NewSIPStream()
		for _, chunk := range [][]byte{data[:k], data[k:]} {
			if err := c.take(chunk); err != nil {
				return
			}
			out := c.out
			c.out = c.out[:0]
			if len(out) <= 4 && isCRLF(out) {
				continue // a keep-alive, which sipgo does not parse
			}
			if err := sipgo.ParseSIPStream(out, func(sip.Message) {}); err != nil && !errors.Is(err, sip.ErrParseSipPartial) {
				t.Fatalf("sipgo was handed %q and failed: %v", out, err)
			}
		}
	})
}
