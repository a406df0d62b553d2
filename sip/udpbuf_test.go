//go:build linux

package sip

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestUDPReceiveBufferSizedAndLogged(t *testing.T) {
	s, logs := startTransportServer(t, nil, nil)
	granted, err := sizeReadBuffer(s.udp.(*net.UDPConn), udpReadBuffer) // asking again reads back what it has
	if err != nil {
		t.Fatal(err)
	}
	if want := `msg="sip udp receive buffer" part=sip requested=4194304 granted=` + strconv.Itoa(granted); !strings.Contains(logs.String(), want) {
		t.Errorf("start-up log lacks %q:\n%s", want, logs.String())
	}
	rmemMax := readSysctl(t, "/proc/sys/net/core/rmem_max")
	if os.Geteuid() == 0 || rmemMax >= udpReadBuffer {
		if granted < udpReadBuffer {
			t.Errorf("granted %d bytes, want %d (root may force past rmem_max %d)", granted, udpReadBuffer, rmemMax)
		}
	}

	// Past rmem_max: forced when we may, capped otherwise.
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(testPeerIP)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := 2 * rmemMax
	got, err := sizeReadBuffer(c, want)
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 && got != want {
		t.Errorf("as root, asked %d (twice rmem_max) and got %d: SO_RCVBUFFORCE not used", want, got)
	}
	if os.Geteuid() != 0 && got != rmemMax {
		t.Errorf("unprivileged, asked %d and got %d, want rmem_max %d", want, got, rmemMax)
	}
}

func TestUDPDropsCountedWhenBurstOverflows(t *testing.T) {
	s, _ := startTransportServer(t, nil, func(s *Server) { s.udpBuffer = 1 }) // the kernel's minimum: a couple of datagrams
	before, err := s.UDPDrops()
	if err != nil {
		t.Fatal(err)
	}
	c := dialPeer(t, "UDP", s.Addr())
	defer c.Close()
	burst := make([]byte, 1400) // zeros: sipgo skips them, so the reader is as fast as it gets
	after := before
	for bursts := 0; after == before; bursts++ {
		if bursts == 100 {
			t.Fatalf("100 bursts of 200 datagrams into a tiny buffer and the drop count stayed %d", before)
		}
		for range 200 {
			if _, err := c.Write(burst); err != nil {
				t.Fatal(err)
			}
		}
		if after, err = s.UDPDrops(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("drops %d -> %d", before, after)
}

func readSysctl(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
