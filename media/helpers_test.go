package media

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// guard bounds how long a test waits for packets on loopback; reaching it
// means the packets never came, not that something was slow.
const guard = 5 * time.Second

// newTestEngine starts an engine on a loopback address of its own.
func newTestEngine(t testing.TB, ip string) *Engine {
	t.Helper()
	e, err := NewEngine(Config{IP: netip.MustParseAddr(ip), PortMin: 21000, PortMax: 21999, Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func newTestLeg(t testing.TB, e *Engine, name string) *Leg {
	t.Helper()
	l, err := e.NewLeg(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// connect negotiates a and b with each other.
func connect(a, b *Leg, codec Codec, dtmfPT uint8, ptime int) {
	a.SetParams(Params{Remote: b.LocalAddr(), Codec: codec, PayloadType: uint8(codec), DTMFPayloadType: dtmfPT, PtimeMS: ptime})
	b.SetParams(Params{Remote: a.LocalAddr(), Codec: codec, PayloadType: uint8(codec), DTMFPayloadType: dtmfPT, PtimeMS: ptime})
}

// recorder is a Tap that keeps what it hears and signals once it has want
// samples.
type recorder struct {
	mu     sync.Mutex
	pcm    []int16
	chunks []int
	want   int
	full   chan struct{}
}

func newRecorder(want int) *recorder { return &recorder{want: want, full: make(chan struct{})} }

// WriteAudio keeps what the tap hears from the first frame with sound on
// (clocked taps get silence until the first audio has been played out).
func (r *recorder) WriteAudio(pcm []int16) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pcm) == 0 && quiet(pcm) {
		return
	}
	before := len(r.pcm)
	r.pcm = append(r.pcm, pcm...)
	r.chunks = append(r.chunks, len(pcm))
	if before < r.want && len(r.pcm) >= r.want {
		close(r.full)
	}
}

func quiet(pcm []int16) bool {
	for _, v := range pcm {
		if v > 64 || v < -64 {
			return false
		}
	}
	return true
}

// wait returns the first want samples heard.
func (r *recorder) wait(t testing.TB) ([]int16, []int) {
	t.Helper()
	select {
	case <-r.full:
	case <-time.After(guard):
		r.mu.Lock()
		defer r.mu.Unlock()
		t.Fatalf("tap heard %d samples, want %d", len(r.pcm), r.want)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int16(nil), r.pcm[:r.want]...), append([]int(nil), r.chunks...)
}

// eventually polls cond until it holds or the guard expires.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	t.Cleanup(cancel)
	return ctx
}

// rawPeer is a plain UDP socket playing a remote RTP endpoint.
type rawPeer struct {
	t    testing.TB
	conn *net.UDPConn
}

func newRawPeer(t testing.TB, ip string) *rawPeer {
	t.Helper()
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &rawPeer{t: t, conn: conn}
}

func (p *rawPeer) addr() netip.AddrPort { return p.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (p *rawPeer) send(to netip.AddrPort, pkt []byte) {
	p.t.Helper()
	if _, err := p.conn.WriteToUDPAddrPort(pkt, to); err != nil {
		p.t.Fatal(err)
	}
}

// receive reads one packet.
func (p *rawPeer) receive() []byte {
	p.t.Helper()
	buf := make([]byte, maxPacket)
	_ = p.conn.SetReadDeadline(time.Now().Add(guard))
	n, _, err := p.conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		p.t.Fatalf("raw peer %v: %v", p.addr(), err)
	}
	return buf[:n]
}

// rtpPacket builds a version 2 packet with a plain header.
func rtpPacket(pt uint8, marker bool, seq uint16, ts, ssrc uint32, payload []byte) []byte {
	buf := make([]byte, rtpHeaderSize+len(payload))
	n := putHeader(buf, marker, pt, seq, ts, ssrc)
	copy(buf[n:], payload)
	return buf
}

// newEngineAt starts an engine for the tests of issue 5: its own loopback
// address in 127.0.5.1-50, ports 30000-31999. cfg.IP and the range are
// filled in; Shards defaults to 2.
func newEngineAt(t testing.TB, ip string, cfg Config) *Engine {
	t.Helper()
	if !cfg.IP.IsValid() {
		cfg.IP = netip.MustParseAddr(ip)
	}
	cfg.PortMin, cfg.PortMax = 30000, 31999
	if cfg.Shards == 0 {
		cfg.Shards = 2
	}
	e, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// eventPayload is one RFC 4733 payload for key code.
func eventPayload(code uint8, end bool, duration uint16) []byte {
	var b [telephoneEventSize]byte
	telephoneEvent{code: code, end: end, volume: 10, duration: duration}.marshalTo(b[:])
	return b[:]
}

// rtpStream is what a remote endpoint sends: one SSRC with consecutive
// sequence numbers and timestamps.
type rtpStream struct {
	ssrc uint32
	seq  uint16
	ts   uint32
}

// tone sends n 20 ms frames of a freq tone in codec c (payload type c).
func (s *rtpStream) tone(p *rawPeer, to netip.AddrPort, c Codec, freq float64, n int) {
	p.t.Helper()
	pcm := Tone(freq, time.Duration(n)*20*time.Millisecond, 0.5)
	for i := range n {
		payload := make([]byte, 160)
		EncodeFrame(c, payload, pcm[160*i:160*(i+1)])
		p.send(to, rtpPacket(uint8(c), i == 0, s.seq, s.ts, s.ssrc, payload))
		s.seq++
		s.ts += 160
	}
}

// digit sends one 60 ms RFC 4733 event for key on payload type pt: three
// updates and three end packets, 6 packets in all.
func (s *rtpStream) digit(p *rawPeer, to netip.AddrPort, pt uint8, key byte) {
	p.t.Helper()
	for _, pkt := range s.event(pt, key) {
		p.send(to, pkt)
	}
}

// event returns the 6 packets of one 60 ms event for key.
func (s *rtpStream) event(pt uint8, key byte) [][]byte {
	code, err := digitEvent(key)
	if err != nil {
		panic(err)
	}
	var pkts [][]byte
	for i := range 6 {
		end := i >= 3
		dur := uint16(160 * min(i+1, 3))
		pkts = append(pkts, rtpPacket(pt, i == 0, s.seq, s.ts, s.ssrc, eventPayload(code, end, dur)))
		s.seq++
	}
	s.ts += 480
	return pkts
}

// drainDigits returns the digits waiting on l.DTMF().
func drainDigits(l *Leg) string {
	var s []byte
	for len(l.DTMF()) > 0 {
		s = append(s, <-l.DTMF())
	}
	return string(s)
}

// pending reads what p has received within a short while: packets that
// were sent before the call are already queued on loopback.
func (p *rawPeer) pending() [][]byte {
	var pkts [][]byte
	for {
		buf := make([]byte, maxPacket)
		_ = p.conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, _, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return pkts
		}
		pkts = append(pkts, buf[:n])
	}
}
