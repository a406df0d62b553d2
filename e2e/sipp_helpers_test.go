package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A SIPp -trace_msg log as SIPp 3.6 writes it (CRLF inside messages).
var sampleMessageLog = strings.ReplaceAll(`----------------------------------------------- 2026-11-23 17:43:04.710297
UDP message sent (120 bytes):

INVITE sip:+15550100@127.0.0.1:5090 SIP/2.0
Call-ID: 1-6093@127.0.0.1
CSeq: 1 INVITE
Content-Length: 0


----------------------------------------------- 2026-11-23 17:43:04.711793
UDP message received [100] bytes :

SIP/2.0 100 Trying
CSeq: 1 INVITE
Content-Length: 0


----------------------------------------------- 2026-11-23 17:43:04.725000
UDP message received [100] bytes :

SIP/2.0 200 OK
CSeq: 1 OPTIONS
Content-Length: 0


----------------------------------------------- 2026-11-23 17:43:04.733052
UDP message received [100] bytes :

SIP/2.0 200 OK
CSeq: 1 INVITE
Content-Length: 0


`, "\n", "\r\n")

func TestInviteTo200ReadsSIPpMessageLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "messages.log")
	// SIPp separates messages with LF; the messages themselves have CRLF.
	log := strings.ReplaceAll(sampleMessageLog, "\r\n-----", "\n-----")
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := inviteTo200(path)
	if want := 22755 * time.Microsecond; err != nil || got != want {
		t.Errorf("inviteTo200 = %v, %v; want %v (17:43:04.733052 - 17:43:04.710297)", got, err, want)
	}
	if err := os.WriteFile(path, []byte(strings.Split(log, "\n----------------------------------------------- 2026-11-23 17:43:04.733052")[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := inviteTo200(path); err == nil {
		t.Error("no 200 for the INVITE: no error")
	}
}

func TestCarrierEventAt(t *testing.T) {
	r := carrierResult{Events: []string{"108 answered; menu_wait=7924.000000", "8036 pressing 1", "10540 playing speech"}}
	if at, ok := r.eventAt("pressing"); !ok || at != 8036*time.Millisecond {
		t.Errorf("eventAt(pressing) = %v, %v; want 8.036s", at, ok)
	}
	if _, ok := r.eventAt("hanging up"); ok {
		t.Error("eventAt found an event that was not logged")
	}
}
