package media

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// freeRange finds an even port p on ip with p..p+3 free: the test then
// owns that range (two legs with their RTCP ports).
func freeRange(t *testing.T, ip netip.Addr) int {
	t.Helper()
	for range 100 {
		p := 30000 + 2*rand.IntN(15000)
		ok := true
		for _, port := range []int{p, p + 1, p + 2, p + 3} {
			c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))))
			if err != nil {
				ok = false
				break
			}
			c.Close()
		}
		if ok {
			return p
		}
	}
	t.Fatal("no free port range")
	return 0
}

func TestPortPoolExhaustionAndReuse(t *testing.T) {
	ip := netip.MustParseAddr("127.0.0.9")
	p := freeRange(t, ip)
	e, err := NewEngine(Config{IP: ip, PortMin: p, PortMax: p + 3, Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()

	first := newTestLeg(t, e, "first")
	second := newTestLeg(t, e, "second")
	ports := map[uint16]bool{first.LocalAddr().Port(): true, second.LocalAddr().Port(): true}
	if !ports[uint16(p)] || !ports[uint16(p+2)] || first.LocalAddr().Addr() != ip {
		t.Fatalf("legs on %v and %v, want %v ports %d and %d", first.LocalAddr(), second.LocalAddr(), ip, p, p+2)
	}
	if _, err := e.NewLeg("third"); !errors.Is(err, ErrNoPorts) {
		t.Fatalf("third leg: %v, want ErrNoPorts", err)
	}
	if got := e.LegsInUse(); got != 2 {
		t.Errorf("LegsInUse = %d, want 2", got)
	}

	freed := first.LocalAddr()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if got := e.LegsInUse(); got != 1 {
		t.Errorf("LegsInUse after Close = %d, want 1", got)
	}
	third, err := e.NewLeg("third")
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	if third.LocalAddr() != freed {
		t.Errorf("third leg on %v, want the freed %v", third.LocalAddr(), freed)
	}
}

func TestPortPoolSkipsPortsOfOtherPrograms(t *testing.T) {
	ip := netip.MustParseAddr("127.0.0.10")
	p := freeRange(t, ip)
	other, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(p))))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	e, err := NewEngine(Config{IP: ip, PortMin: p, PortMax: p + 3})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()

	l := newTestLeg(t, e, "l")
	if got := l.LocalAddr().Port(); got != uint16(p+2) {
		t.Errorf("leg on port %d, want %d (%d is taken)", got, p+2, p)
	}
	_, err = e.NewLeg("more")
	if !errors.Is(err, ErrNoPorts) || !strings.Contains(err.Error(), "1 held by other programs") {
		t.Errorf("error %v, want ErrNoPorts naming the port held by another program", err)
	}
}

func TestEngineCloseClosesLegs(t *testing.T) {
	e, err := NewEngine(Config{IP: netip.MustParseAddr("127.0.0.1"), PortMin: 21000, PortMax: 21999})
	if err != nil {
		t.Fatal(err)
	}
	l := newTestLeg(t, e, "l")
	l.PlayLoop(NewPrompt("moh", make([]int16, 800)))
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if e.LegsInUse() != 0 || !l.closed.Load() {
		t.Errorf("after Close: %d legs in use, leg closed %v", e.LegsInUse(), l.closed.Load())
	}
	if _, err := e.NewLeg("late"); !errors.Is(err, ErrClosed) {
		t.Errorf("NewLeg after Close: %v, want ErrClosed", err)
	}
}

func TestNewEngineRejectsBadConfig(t *testing.T) {
	ip := netip.MustParseAddr("127.0.0.1")
	for _, cfg := range []Config{
		{PortMin: 10000, PortMax: 20000},
		{IP: netip.IPv4Unspecified(), PortMin: 10000, PortMax: 20000},
		{IP: ip, PortMin: 0, PortMax: 100},
		{IP: ip, PortMin: 20000, PortMax: 10000},
		{IP: ip, PortMin: 10000, PortMax: 70000},
		{IP: ip, PortMin: 10000, PortMax: 10000}, // no room for RTCP
		{IP: ip, PortMin: 10000, PortMax: 10001, Shards: -1},
		{IP: netip.IPv6Unspecified(), PortMin: 10000, PortMax: 10001},
		{IP: ip, Advertise: netip.IPv4Unspecified(), PortMin: 10000, PortMax: 10001},
		{IP: ip, PortMin: 10000, PortMax: 10001, Timeout: -time.Second},
		{IP: ip, PortMin: 10000, PortMax: 10001, HoldTimeout: -time.Second},
		{IP: ip, PortMin: 10000, PortMax: 10001, RTCPInterval: -time.Second},
		{IP: ip, PortMin: 10000, PortMax: 10001, PortQuarantine: -time.Second},
	} {
		if e, err := NewEngine(cfg); err == nil {
			e.Close()
			t.Errorf("NewEngine(%+v) accepted", cfg)
		}
	}
}
