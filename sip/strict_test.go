package sip

import (
	"bufio"
	"cmp"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// rawRequest is a request as a peer would write it; the fields are what the
// strictness cases change.
type rawRequest struct {
	method, version, branch, maxForwards, lengths, body string
}

func (r rawRequest) bytes(transport, from string, n int) []byte {
	method := cmp.Or(r.method, "REGISTER")
	branch := cmp.Or(r.branch, fmt.Sprintf(";branch=z9hG4bK-strict-%d", n))
	if branch == "none" {
		branch = ""
	}
	lengths := cmp.Or(r.lengths, fmt.Sprintf("Content-Length: %d\r\n", len(r.body)))
	return fmt.Appendf(nil, "%s sip:%s %s\r\nVia: SIP/2.0/%s %s%s;rport\r\nMax-Forwards: %s\r\n"+
		"From: <sip:1001@%s>;tag=t%d\r\nTo: <sip:1001@%s>\r\nCall-ID: strict-%d@%s\r\nCSeq: 1 %s\r\n"+
		"Contact: <sip:1001@%s>\r\n%s\r\n%s",
		method, testServerIP, cmp.Or(r.version, "SIP/2.0"), transport, from, branch, cmp.Or(r.maxForwards, "70"), testServerIP, n, testServerIP, n, from, method, from, lengths, r.body)
}

// strictCases: what a peer sends and the status line it must get back. The
// well-formed ones show the harness reaches the handlers at all.
var strictCases = []struct {
	name    string
	req     rawRequest
	want    string
	refused bool // by the strictness checks (counted in Refused)
	udp     bool // only over UDP: a stream would wait for the missing body
}{
	{"well formed REGISTER", rawRequest{}, "SIP/2.0 401 Unauthorized", false, false},
	{"well formed OPTIONS", rawRequest{method: "OPTIONS"}, "SIP/2.0 200 OK", false, false},
	{"SIP/1.0", rawRequest{version: "SIP/1.0"}, "SIP/2.0 505 Version Not Supported", true, false},
	{"SIP/1.0 OPTIONS", rawRequest{method: "OPTIONS", version: "SIP/1.0"}, "SIP/2.0 505 Version Not Supported", true, false},
	{"Max-Forwards 0", rawRequest{maxForwards: "0"}, "SIP/2.0 483 Too Many Hops", true, false},
	{"Max-Forwards 0 INVITE", rawRequest{method: "INVITE", maxForwards: "0"}, "SIP/2.0 483 Too Many Hops", true, false},
	{"Max-Forwards 0 OPTIONS is ours to answer", rawRequest{method: "OPTIONS", maxForwards: "0"}, "SIP/2.0 200 OK", false, false},
	{"Via without branch", rawRequest{branch: "none"}, "SIP/2.0 400 Bad Request (Via without branch)", true, false},
	{"Via with an empty branch", rawRequest{branch: ";branch="}, "SIP/2.0 400 Bad Request (Via without branch)", true, false},
	{"two Content-Length", rawRequest{method: "OPTIONS", lengths: "Content-Length: 0\r\nContent-Length: 4\r\n", body: "abcd"},
		"SIP/2.0 400 Bad Request (more than one Content-Length)", true, false},
	{"Content-Length and l", rawRequest{method: "OPTIONS", lengths: "l: 4\r\nContent-Length: 4\r\n", body: "abcd"},
		"SIP/2.0 400 Bad Request (more than one Content-Length)", true, false},
	{"Content-Length beyond the datagram", rawRequest{method: "OPTIONS", lengths: "Content-Length: 40\r\n", body: "abcd"},
		"SIP/2.0 400 Bad Request", false, true},
	// RFC 3261 §18.3: bytes past Content-Length in a datagram MUST be discarded, the request processed.
	{"Content-Length short of the datagram", rawRequest{method: "OPTIONS", lengths: "Content-Length: 2\r\n", body: "abcd"},
		"SIP/2.0 200 OK", false, true},
}

func TestStrictnessOverUDPAndTCP(t *testing.T) {
	s, _ := startTransportServer(t, nil, nil)
	refused := 0
	for _, transport := range []string{"UDP", "TCP"} {
		for i, tc := range strictCases {
			if tc.udp && transport == "TCP" {
				continue
			}
			t.Run(transport+"/"+tc.name, func(t *testing.T) {
				got := exchange(t, transport, s.Addr(), func(from string) []byte { return tc.req.bytes(transport, from, i) })
				if got != tc.want {
					t.Errorf("status line %q, want %q", got, tc.want)
				}
				if tc.refused {
					refused++
				}
			})
		}
	}
	if got := s.TransportStats().Refused; got != uint64(refused) {
		t.Errorf("Refused = %d, want %d", got, refused)
	}
}

// exchange sends one request over transport from testPeerIP and returns the
// status line of the response.
func exchange(t *testing.T, transport string, to netip.AddrPort, build func(from string) []byte) string {
	t.Helper()
	c := dialPeer(t, transport, to)
	defer c.Close()
	if _, err := c.Write(build(c.LocalAddr().String())); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	return strings.TrimRight(line, "\r\n")
}
