package media

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// bindNothing stands in for a socket bind in the pool's own tests.
func bindNothing(int) (socketPair, error) { return socketPair{}, nil }

// Ports come in random order: over 200 legs from 500 ports the sequence is
// not monotonic, almost never +2, and spread over the whole range. The
// bounds are many standard deviations from what a uniform draw gives, and
// a cursor fails every one of them.
func TestPortPoolHandsOutRandomPorts(t *testing.T) {
	var pp portPool
	if err := pp.init(30000, 30999, 0); err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	var ports []int
	for range 200 {
		_, port, err := pp.acquire(bindNothing)
		if err != nil {
			t.Fatal(err)
		}
		if port%2 != 0 || port < 30000 || port > 30998 || seen[port] {
			t.Fatalf("port %d: odd, out of range or handed out twice", port)
		}
		seen[port] = true
		ports = append(ports, port)
	}
	rising, plusTwo, lowHalf := 0, 0, 0
	for i, port := range ports {
		if port < 30500 {
			lowHalf++
		}
		if i == 0 {
			continue
		}
		if port > ports[i-1] {
			rising++
		}
		if port == ports[i-1]+2 {
			plusTwo++
		}
	}
	// Uniform: rising about 100 (sd 4), plusTwo about 0.4, lowHalf about 100 (sd 5.5).
	if rising < 50 || rising > 150 || plusTwo > 10 || lowHalf < 50 || lowHalf > 150 {
		t.Errorf("of 199 steps %d rise and %d are +2; %d of 200 ports in the lower half: not a random draw (%v)", rising, plusTwo, lowHalf, ports)
	}
}

func TestPortPoolExhaustionAndRelease(t *testing.T) {
	var pp portPool
	if err := pp.init(30000, 30007, 0); err != nil { // 30000, 30002, 30004, 30006
		t.Fatal(err)
	}
	got := map[int]bool{}
	for range 4 {
		_, port, err := pp.acquire(bindNothing)
		if err != nil {
			t.Fatal(err)
		}
		got[port] = true
	}
	if len(got) != 4 {
		t.Fatalf("4 acquisitions gave %v", got)
	}
	if _, _, err := pp.acquire(bindNothing); !errors.Is(err, ErrNoPorts) {
		t.Fatalf("fifth: %v, want ErrNoPorts", err)
	}
	pp.release(30004)
	pp.release(30004) // twice: still one port
	pp.release(30005) // never handed out
	if _, port, err := pp.acquire(bindNothing); err != nil || port != 30004 {
		t.Fatalf("after release: port %d, %v; want 30004", port, err)
	}
	if _, _, err := pp.acquire(bindNothing); !errors.Is(err, ErrNoPorts) {
		t.Fatalf("after the released port was taken again: %v, want ErrNoPorts", err)
	}
}

// Ports other programs hold are skipped, a bounded number of times, and
// stay in the pool; another bind error is returned and gives the port back.
func TestPortPoolSkipsBusyPortsBounded(t *testing.T) {
	var pp portPool
	if err := pp.init(30000, 31999, 0); err != nil {
		t.Fatal(err)
	}
	total := len(pp.free)
	calls := 0
	busy := func(port int) (socketPair, error) {
		calls++
		if port != 31000 {
			return socketPair{}, syscall.EADDRINUSE
		}
		return socketPair{}, nil
	}
	_, port, err := pp.acquire(busy)
	switch {
	case err == nil && port != 31000:
		t.Fatalf("got busy port %d", port)
	case err != nil && !errors.Is(err, ErrNoPorts):
		t.Fatalf("acquire: %v", err)
	}
	if calls > maxBindAttempts {
		t.Errorf("%d bind attempts, want at most %d", calls, maxBindAttempts)
	}
	want := total
	if err == nil {
		want-- // 31000 is taken
	}
	if len(pp.free) != want {
		t.Errorf("%d ports free after skipping busy ones, want %d", len(pp.free), want)
	}

	denied := errors.New("permission denied")
	_, _, err = pp.acquire(func(int) (socketPair, error) { return socketPair{}, denied })
	if !errors.Is(err, denied) || errors.Is(err, ErrNoPorts) || len(pp.free) != want {
		t.Errorf("bind error: %v with %d ports free, want the error and %d", err, len(pp.free), want)
	}
}

// A bind in progress (slow, another goroutine) does not hold up others.
func TestPortPoolBindsOutsideItsLock(t *testing.T) {
	var pp portPool
	if err := pp.init(30000, 30099, 0); err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan int), make(chan struct{})
	slowDone := make(chan int)
	go func() {
		_, port, _ := pp.acquire(func(port int) (socketPair, error) {
			entered <- port
			<-release
			return socketPair{}, nil
		})
		slowDone <- port
	}()
	slowPort := <-entered
	fast := make(chan int)
	go func() {
		_, port, _ := pp.acquire(bindNothing)
		fast <- port
	}()
	select {
	case port := <-fast:
		if port == slowPort {
			t.Errorf("both acquisitions got port %d", port)
		}
	case <-time.After(guard):
		t.Error("an acquire waited for another's bind")
	}
	close(release)
	<-slowDone
}

// With Advertise, sockets bind to IP (here unspecified) and SDP carries the
// advertised address, where packets do arrive.
func TestAdvertisedAddress(t *testing.T) {
	advertised := netip.MustParseAddr("127.0.5.24")
	e := newEngineAt(t, "", Config{IP: netip.IPv4Unspecified(), Advertise: advertised})
	l := newTestLeg(t, e, "l")
	if got := l.LocalAddr().Addr(); got != advertised {
		t.Errorf("LocalAddr %v, want the advertised %v", l.LocalAddr(), advertised)
	}
	bound := l.conn.LocalAddr().(*net.UDPAddr).AddrPort()
	if !bound.Addr().IsUnspecified() || bound.Port() != l.LocalAddr().Port() {
		t.Errorf("socket bound to %v, want 0.0.0.0:%d", bound, l.LocalAddr().Port())
	}
	peer := newRawPeer(t, "127.0.5.25")
	l.SetParams(Params{Remote: peer.addr(), Codec: PCMU})
	stream := rtpStream{ssrc: 3}
	stream.tone(peer, l.LocalAddr(), PCMU, 440, 1)
	eventually(t, "packet received on the advertised address", func() bool { return l.Stats().PacketsIn == 1 })

	// A private IP behind 1:1 NAT: bound there, advertised elsewhere.
	e2 := newEngineAt(t, "127.0.5.26", Config{Advertise: netip.MustParseAddr("127.0.5.27")})
	l2 := newTestLeg(t, e2, "l2")
	if got, bound := l2.LocalAddr().Addr().String(), l2.conn.LocalAddr().(*net.UDPAddr).IP.String(); got != "127.0.5.27" || bound != "127.0.5.26" {
		t.Errorf("LocalAddr %s bound %s, want 127.0.5.27 and 127.0.5.26", got, bound)
	}
}

// A released pair rests for the quarantine while others are free; when
// none is, the one released longest ago is taken early; a rested pair comes
// back when its time is up. The clock is fake.
func TestPortPoolQuarantine(t *testing.T) {
	now := time.Unix(1000, 0)
	pp := portPool{now: func() time.Time { return now }}
	if err := pp.init(30000, 30007, 10*time.Second); err != nil { // 4 pairs
		t.Fatal(err)
	}
	acquire := func() int {
		t.Helper()
		_, port, err := pp.acquire(bindNothing)
		if err != nil {
			t.Fatal(err)
		}
		return port
	}
	a, b := acquire(), acquire()
	pp.release(a)
	now = now.Add(9 * time.Second)
	if c, d := acquire(), acquire(); c == a || d == a {
		t.Fatalf("port %d handed out again after 9 s while others were free", a)
	}
	if got := acquire(); got != a || pp.takenEarly() != 1 {
		t.Fatalf("all in use but %d (resting): got %d, %d taken early; want %d, 1", a, got, pp.takenEarly(), a)
	}
	pp.release(b)
	now = now.Add(time.Second)
	pp.release(a)
	now = now.Add(9 * time.Second) // b has rested 10 s, a 9 s
	if got := acquire(); got != b || pp.takenEarly() != 1 {
		t.Errorf("got %d (%d taken early), want the rested %d", got, pp.takenEarly(), b)
	}
	if got := acquire(); got != a || pp.takenEarly() != 2 {
		t.Errorf("got %d (%d taken early), want %d taken early", got, pp.takenEarly(), a)
	}
	if _, _, err := pp.acquire(bindNothing); !errors.Is(err, ErrNoPorts) {
		t.Errorf("all in use: %v, want ErrNoPorts", err)
	}
}

// A leg binds RTP and RTCP together: a pair whose odd port another program
// holds is skipped; a closed leg's pair is not the next one handed out.
func TestPortPairsOnSockets(t *testing.T) {
	ip := netip.MustParseAddr("127.0.11.13")
	other, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 60011)))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	e := newEngine6(t, ip.String(), Config{PortMin: 60010, PortMax: 60013})
	l := newTestLeg(t, e, "l")
	if got := l.LocalAddr().Port(); got != 60012 {
		t.Errorf("leg on %d, want 60012 (60011 is taken)", got)
	}
	if c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 60013))); err == nil {
		c.Close()
		t.Error("the leg's RTCP port 60013 is not bound")
	}
	if _, err := e.NewLeg("more"); !errors.Is(err, ErrNoPorts) {
		t.Errorf("second leg: %v, want ErrNoPorts", err)
	}

	e2 := newEngine6(t, ip.String(), Config{PortMin: 60020, PortMax: 60027}) // 4 pairs
	first := newTestLeg(t, e2, "first")
	freed := first.LocalAddr()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if l := newTestLeg(t, e2, "next"); l.LocalAddr() == freed {
			t.Fatalf("leg %d got the pair just released (%v) while 3 others were free", i, freed)
		}
	}
}
