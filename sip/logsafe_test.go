package sip

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// secretMarker stands for the digest response of an Authorization header:
// it must never reach a log.
const secretMarker = "5ecret0f1001digest"

const registerWithAuth = "REGISTER sip:127.0.7.1 SIP/2.0\r\n" +
	"Via: SIP/2.0/%s %s;branch=z9hG4bK-log-%d\r\nMax-Forwards: 70\r\n" +
	"From: <sip:1001@127.0.7.1>;tag=x\r\nTo: <sip:1001@127.0.7.1>\r\nCall-ID: log-%d\r\n%s\r\n" +
	"Authorization: Digest username=\"1001\", realm=\"hotline\", nonce=\"abc\", uri=\"sip:127.0.7.1\", response=\"" + secretMarker + "\"\r\n" +
	"Content-Length: 0\r\n\r\n"

func TestRedactingHandlerKeepsFirstLineOnly(t *testing.T) {
	logs := &capturedLog{}
	log := slog.New(newRedactingHandler(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	raw := fmt.Sprintf(registerWithAuth, "UDP", "127.0.7.2:5060", 1, 1, "CSeq: 1 REGISTER")
	req, err := sip.NewParser().ParseSIP([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	authLine := "Authorization Digest username=\"1001\", response=\"" + secretMarker + "\""
	// The ways sipgo (and anyone) logs message text.
	log.Error("failed to parse", "error", errors.New("reading body incomplete"), "data", raw)
	log.Error("failed to parse", "error", fmt.Errorf("field name with no value in header: %q", authLine))
	log.Debug("message", "req", req, "bytes", []byte(raw))
	log.With("data", raw).WithGroup("g").Info("grouped", slog.Group("inner", "data", raw))
	log.Warn(raw)
	log.Info("no marker, no change", "first", "INVITE sip:x SIP/2.0", "n", 3)

	got := logs.String()
	if strings.Contains(got, secretMarker) {
		t.Errorf("the secret reached the log:\n%s", got)
	}
	if n := strings.Count(got, "REGISTER sip:127.0.7.1 SIP/2.0"); n != 6 {
		t.Errorf("the first line is in the log %d times, want 6 (data, req, bytes, bound data, grouped data, message):\n%s", n, got)
	}
	if !strings.Contains(got, `field name with no value in header: \"Authorization[redacted]"`) {
		t.Errorf("the parse error lost its header name or kept its value:\n%s", got)
	}
	if !strings.Contains(got, `first="INVITE sip:x SIP/2.0" n=3`) {
		t.Errorf("harmless attributes changed:\n%s", got)
	}
}

func TestFirstLine(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"INVITE sip:a SIP/2.0\r\nVia: x", "INVITE sip:a SIP/2.0"},
		{"REGISTER sip:a SIP/2.0\nAuthorization: x", "REGISTER sip:a SIP/2.0"},
		{"Authorization: Digest username=\"a\"\r\n", "Authorization[redacted]"},
		{"proxy-authorization: Digest x", "proxy-authorization[redacted]"},
		{`bad header "AUTHORIZATION Digest response=1"`, `bad header "AUTHORIZATION[redacted]`},
		{` Digest username="a", response="b"`, ` Digest [redacted]`},
		{strings.Repeat("x", 500), strings.Repeat("x", maxLoggedLine) + "..."},
		{"", ""},
	} {
		if got := firstLine(tc.in); got != tc.want {
			t.Errorf("firstLine(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Malformed messages over real UDP and TCP sockets: each is logged with its
// source and first line, and nothing anyone logs (sipgo at debug level
// included) carries the Authorization header.
func TestUnparseableMessagesLoggedWithoutSecrets(t *testing.T) {
	s, logs := startTransportServer(t, nil, nil)
	broken := []string{
		"CSeq: one REGISTER", // a bad CSeq after a good Authorization
		"CSeq: 1 REGISTER\r\nAuthorization Digest username=\"1001\", response=\"" + secretMarker + "\"", // the header itself broken
	}
	for _, transport := range []string{"UDP", "TCP"} {
		for i, b := range broken {
			c := dialPeer(t, transport, s.Addr())
			if _, err := fmt.Fprintf(c, registerWithAuth, transport, c.LocalAddr(), i, i, b); err != nil {
				t.Fatal(err)
			}
			if transport == "TCP" && !closedByPeer(c, 5*time.Second) {
				t.Errorf("TCP message %d: the connection stayed open after an unparseable message", i)
			}
			c.Close()
		}
	}
	// Also sipgo's package default logger, which no option reaches.
	sip.DefaultLogger().Error("failed to parse", "data", fmt.Sprintf(registerWithAuth, "TCP", "127.0.7.2:1", 9, 9, "CSeq: 1 REGISTER"))

	want := 2 * len(broken)
	waitFor(t, func() bool { return s.TransportStats().Unparseable == uint64(want) }, "unparseable count to reach %d (is %d)", want, s.TransportStats().Unparseable)
	got := logs.String()
	if strings.Contains(got, secretMarker) {
		t.Errorf("the secret reached the log:\n%s", got)
	}
	for _, transport := range []string{"UDP", "TCP"} {
		line := `msg="sip message unparseable; dropped" part=sip transport=` + transport + ` source=` + testPeerIP + `:`
		if n := strings.Count(got, line); n != len(broken) {
			t.Errorf("%d log lines %s..., want %d", n, line, len(broken))
		}
	}
	if n := strings.Count(got, `first_line="REGISTER sip:127.0.7.1 SIP/2.0"`); n != want {
		t.Errorf("first line logged %d times, want %d:\n%s", n, want, got)
	}
	if !strings.Contains(got, `msg="failed to parse" part=sipgo data="REGISTER sip:127.0.7.1 SIP/2.0"`) {
		t.Errorf("sipgo's default logger did not reach the server's log, redacted:\n%s", got)
	}
}

// waitFor polls cond (events, not time, decide the outcome: the deadline only
// bounds a hang).
func waitFor(t *testing.T, cond func() bool, format string, args ...any) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for "+format, args...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
