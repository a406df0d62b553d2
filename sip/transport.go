package sip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TransportStats counts what the transports refused or survived, for status
// pages and tests.
type TransportStats struct {
	AcceptErrors uint64 // TCP accepts that failed (descriptor exhaustion...) and were retried
	Rejected     uint64 // TCP connections closed at once: their source had tcp_max_per_source open
	IdleClosed   uint64 // TCP connections closed after tcp_idle_timeout without a byte
	Unparseable  uint64 // messages (UDP and TCP) that could not be parsed, dropped
	Refused      uint64 // requests answered statelessly by the strictness checks (505, 483, 400)
}

// wireChecks is what sits between the sockets and sipgo: the UDP read
// filter, the TCP listener and its connections share its counters and its
// rate-limited logs.
type wireChecks struct {
	log    *slog.Logger
	parser *sip.Parser

	acceptErrors, rejected, idleClosed, unparseable, refused atomic.Uint64

	acceptLog, rejectLog, unparseableLog logLimiter
}

func newWireChecks(log *slog.Logger) *wireChecks {
	w := &wireChecks{log: log, parser: sip.NewParser()}
	for _, l := range []*logLimiter{&w.acceptLog, &w.rejectLog, &w.unparseableLog} {
		l.every, l.burst = 10*time.Second, 10
	}
	return w
}

func (w *wireChecks) stats() TransportStats {
	return TransportStats{AcceptErrors: w.acceptErrors.Load(), Rejected: w.rejected.Load(), IdleClosed: w.idleClosed.Load(),
		Unparseable: w.unparseable.Load(), Refused: w.refused.Load()}
}

// dropUnparseable counts and logs a message that failed to parse: its
// source and first line, never its headers.
func (w *wireChecks) dropUnparseable(transport, src string, raw []byte, err error) {
	w.unparseable.Add(1)
	if ok, held := w.unparseableLog.allow(); ok {
		w.log.Warn("sip message unparseable; dropped", "transport", transport, "source", src,
			"first_line", firstLine(string(raw)), "error", firstLine(err.Error()), "suppressed", held)
	}
}

// listenStream wraps a stream listener (TCP now, TLS later: wrap the
// tls.Listener so the checks see plaintext) for sipgo's accept loop, which
// returns on the first Accept error and is never restarted.
func (w *wireChecks) listenStream(l net.Listener, maxPerSource int) *streamListener {
	return &streamListener{Listener: l, w: w, maxPerSource: maxPerSource, sleep: sleepOrStop,
		closed: make(chan struct{}), perSource: map[netip.Addr]int{}}
}

// Accept backoff, as net/http's Server does.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// streamListener retries failed accepts with backoff and returns an error
// only once it is closed; it closes at once connections beyond maxPerSource
// from one IP; its connections are checked by streamConn.
type streamListener struct {
	net.Listener
	w            *wireChecks
	maxPerSource int
	sleep        func(d time.Duration, stop <-chan struct{}) bool // false: stopped

	closed    chan struct{}
	closeOnce sync.Once
	mu        sync.Mutex
	perSource map[netip.Addr]int
}

func sleepOrStop(d time.Duration, stop <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}

func (l *streamListener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			delay = min(max(2*delay, acceptBackoffMin), acceptBackoffMax)
			l.w.acceptErrors.Add(1)
			if ok, held := l.w.acceptLog.allow(); ok {
				l.w.log.Error("sip tcp accept failed; retrying", "error", err, "retry_in", delay, "suppressed", held)
			}
			if !l.sleep(delay, l.closed) {
				return nil, fmt.Errorf("sip tcp accept: %w", net.ErrClosed)
			}
			continue
		}
		delay = 0
		src := addrPortOf(c.RemoteAddr())
		if !l.admit(src.Addr()) {
			_ = c.Close()
			l.w.rejected.Add(1)
			if ok, held := l.w.rejectLog.allow(); ok {
				l.w.log.Warn("sip tcp connection refused: too many from one address", "source", src.String(),
					"tcp_max_per_source", l.maxPerSource, "suppressed", held)
			}
			continue
		}
		return &streamConn{Conn: c, l: l, src: src, stream: l.w.parser.NewSIPStream()}, nil
	}
}

func (l *streamListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// admit counts a connection from ip, unless ip already has maxPerSource.
func (l *streamListener) admit(ip netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.maxPerSource > 0 && l.perSource[ip] >= l.maxPerSource {
		return false
	}
	l.perSource[ip]++
	return true
}

func (l *streamListener) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perSource[ip]--; l.perSource[ip] <= 0 {
		delete(l.perSource, ip)
	}
}

// open is how many connections ip holds (tests).
func (l *streamListener) open(ip netip.Addr) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.perSource[ip]
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// streamConn hands sipgo only whole messages that passed the checks. It
// parses the stream itself (sipgo's parser, so it frames exactly as sipgo
// does): a message that fails to parse is logged here by its first line and
// ends the connection before sipgo could log it whole; a request that breaks
// the strictness rules is answered here and never reaches sipgo. A read
// deadline that expires (sipgo's ReadTimeout: tcp_idle_timeout) ends the
// connection as idle.
type streamConn struct {
	net.Conn
	l         *streamListener
	src       netip.AddrPort
	closeOnce sync.Once

	stream  *sip.ParserStream // used by Read only (sipgo's one reader goroutine)
	pending []byte            // bytes of the message being assembled
	out     []byte            // checked bytes, returned from outPos on
	outPos  int
}

// refusalWriteTimeout bounds writing a refusal from the read path, so a
// peer that does not read cannot stall it.
const refusalWriteTimeout = 5 * time.Second

func (c *streamConn) Read(b []byte) (int, error) {
	for c.outPos == len(c.out) {
		c.out, c.outPos = c.out[:0], 0
		n, err := c.Conn.Read(b)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			c.l.w.idleClosed.Add(1)
			c.l.w.log.Debug("sip tcp connection idle; closing", "source", c.src.String())
			return 0, fmt.Errorf("sip tcp %s idle: %w", c.src, io.EOF)
		}
		if err != nil {
			return 0, err
		}
		if err := c.take(b[:n]); err != nil {
			return 0, err
		}
	}
	n := copy(b, c.out[c.outPos:])
	c.outPos += n
	return n, nil
}

// take runs the checks over one chunk read and queues what passes.
func (c *streamConn) take(chunk []byte) error {
	if isZeros(chunk) {
		return nil // sipgo skips these too
	}
	if len(chunk) <= 4 && isCRLF(chunk) && c.stream.Buffer().Len() == 0 && isCRLF(c.pending) {
		// A keep-alive between messages (RFC 5626 §3.5.1): sipgo answers a
		// double CRLF when it reads it alone.
		c.out = append(c.out, chunk...)
		return nil
	}
	c.pending = append(c.pending, chunk...)
	_, _ = c.stream.Write(chunk)
	for c.stream.Buffer().Len() > 0 {
		msg, n, err := c.stream.ParseNext()
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			c.l.w.dropUnparseable("TCP", c.src.String(), c.pending, err)
			return fmt.Errorf("sip tcp %s: unparseable message: %w", c.src, io.EOF)
		}
		r := refusal{}
		if req, ok := msg.(*sip.Request); ok {
			r = checkRequest(req)
		}
		if r.code == 0 {
			c.out = append(c.out, c.pending[:n]...)
		} else {
			c.l.w.refused.Add(1)
			if err := c.refuse(msg.(*sip.Request), r); err != nil {
				return err
			}
		}
		c.pending = append(c.pending[:0], c.pending[n:]...)
	}
	return nil
}

func (c *streamConn) refuse(req *sip.Request, r refusal) error {
	res := refusalFor(req, r, c.src.String())
	if res == nil {
		return nil
	}
	_ = c.Conn.SetWriteDeadline(time.Now().Add(refusalWriteTimeout))
	_, err := c.Conn.Write(res)
	_ = c.Conn.SetWriteDeadline(time.Time{})
	if err != nil {
		return fmt.Errorf("sip tcp %s: write %d: %w", c.src, r.code, err)
	}
	return nil
}

func (c *streamConn) Close() error {
	c.closeOnce.Do(func() { c.l.release(c.src.Addr()) })
	return c.Conn.Close()
}

func isZeros(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

func isCRLF(b []byte) bool {
	for _, x := range b {
		if x != '\r' && x != '\n' {
			return false
		}
	}
	return true
}

// udpReadBuffer is what the SIP UDP socket asks for: a burst of replies
// from a thousand phones probed at once is about 1 MB.
const udpReadBuffer = 4 << 20

// sizeUDPBuffer sizes the UDP socket's receive buffer and logs what the
// kernel granted.
func (s *Server) sizeUDPBuffer() {
	want := s.udpBuffer
	if want == 0 {
		want = udpReadBuffer
	}
	c, ok := s.udp.(*net.UDPConn)
	if !ok {
		return
	}
	got, err := sizeReadBuffer(c, want)
	switch {
	case err != nil:
		s.log.Warn("sip udp receive buffer", "requested", want, "error", err)
	case got < want:
		s.log.Warn("sip udp receive buffer smaller than asked: bursts will be dropped; raise net.core.rmem_max",
			"requested", want, "granted", got)
	default:
		s.log.Info("sip udp receive buffer", "requested", want, "granted", got)
	}
}

// UDPDrops is how many datagrams the kernel dropped on the SIP UDP socket
// because its receive buffer was full.
func (s *Server) UDPDrops() (uint64, error) {
	c, ok := s.udp.(*net.UDPConn)
	if !ok {
		return 0, errors.New("sip: no UDP transport")
	}
	return udpDrops(c)
}

// watchDrops warns, at most once a minute, when the kernel dropped SIP
// datagrams since the last look: requests and responses lost to a burst.
func (s *Server) watchDrops(ctx context.Context) {
	if s.udp == nil {
		return
	}
	var seen uint64
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n, err := s.UDPDrops()
		if err != nil {
			return // not on Linux: nothing to watch
		}
		if n > seen {
			s.log.Warn("SIP UDP socket dropped datagrams (receive buffer full)", "dropped", n-seen, "dropped_total", n)
		}
		seen = n
	}
}

// TransportStats counts what the transports refused or survived so far.
func (s *Server) TransportStats() TransportStats {
	if s.wire == nil {
		return TransportStats{}
	}
	return s.wire.stats()
}
