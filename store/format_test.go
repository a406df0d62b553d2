package store

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestFormatTable(t *testing.T) {
	r := sampleRecord(0)
	r.CallerPackets, r.CallerLossPct, r.CallerJitterMS = 4000, 0.5, 2.3
	r.AgentPackets, r.AgentLossPct, r.AgentJitterMS = 3990, 1.3, 4
	never := CallRecord{CallID: "x", Caller: "evil\x1b[2J\nname\t", Start: r.Start, End: r.Start.Add(30 * time.Second),
		HangupCause: "no-agent", HangupSide: "system", WaitSeconds: 30}
	talking := answered(1)
	talking.CallerPackets = 500 // the caller's audio so far, no agent's yet
	var buf bytes.Buffer
	if err := FormatTable(&buf, []CallRecord{r, never, talking}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("got %d lines, want header + 3:\n%s", len(lines), buf.String())
	}
	header := strings.Fields(lines[0])
	if header[0] != "CALL" || header[len(header)-1] != "RECORDING" {
		t.Errorf("header = %q", lines[0])
	}
	wantStart := r.Start.Local().Format("2006-01-02 15:04:05")
	for _, want := range []string{"call-0000@carrier", wantStart, "+441632960001", "+441632960999", "12#",
		"support", "alice", "8.2", "82.8", "normal", "caller", "0.5%/2.3ms|1.3%/4.0ms", "/var/lib/hotline/rec/2025/03/14/call.wav"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("row %q lacks %q", lines[1], want)
		}
	}
	if strings.ContainsAny(lines[2], "\x1b\t") || !strings.Contains(lines[2], `evil\x1b[2J\nname\t`) {
		t.Errorf("control characters not escaped: %q", lines[2])
	}
	if !strings.Contains(lines[2], "30.0") || !strings.Contains(lines[2], "no-agent") || !strings.Contains(lines[2], " -|- ") {
		t.Errorf("row %q lacks wait 30.0 / cause no-agent / quality -|-", lines[2])
	}
	// A call in progress: its wait is known, its talk time and cause are not.
	if f := strings.Fields(lines[3]); len(f) != 14 || f[8] != "8.2" || f[9] != "-" || f[10] != "in-progress" || f[11] != "-" {
		t.Errorf("call in progress = %q, want wait 8.2, talk -, cause in-progress, side -", lines[3])
	}
	if !strings.Contains(lines[3], " 0.0%/0.0ms|- ") {
		t.Errorf("call in progress = %q, want the caller's quality and none for the agent", lines[3])
	}
}

func TestFormatJSON(t *testing.T) {
	r := sampleRecord(0)
	r.Start = r.Start.In(time.FixedZone("X", 7200))
	r.CallerPackets, r.CallerLossPct, r.AgentRTTMS = 4000, 0.5, 12.5
	unanswered := CallRecord{CallID: "y", Start: r.Start, End: r.End}
	var buf bytes.Buffer
	if err := FormatJSON(&buf, []CallRecord{r, unanswered}); err != nil {
		t.Fatal(err)
	}
	var raw []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, buf.String())
	}
	if len(raw) != 2 {
		t.Fatalf("got %d objects, want 2", len(raw))
	}
	if got := raw[0]["start"]; got != "2025-03-14T09:26:53.589Z" {
		t.Errorf("start = %v, want UTC RFC 3339 2025-03-14T09:26:53.589Z", got)
	}
	if got := raw[0]["wait_seconds"]; got != 8.25 {
		t.Errorf("wait_seconds = %v, want 8.25", got)
	}
	for key, want := range map[string]float64{"caller_packets": 4000, "caller_loss_pct": 0.5, "agent_rtt_ms": 12.5, "agent_packets": 0} {
		if got := raw[0][key]; got != want {
			t.Errorf("%s = %v, want %v", key, got, want)
		}
	}
	if _, ok := raw[1]["answer"]; ok {
		t.Errorf("unanswered call has an answer field: %v", raw[1])
	}
	var back []CallRecord
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back[0].CallID != r.CallID || !back[0].Answer.Equal(r.Answer) {
		t.Errorf("decoded %+v, want %+v", back[0], r)
	}

	buf.Reset()
	if err := FormatJSON(&buf, nil); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(buf.String()); got != "[]" {
		t.Errorf("empty list = %q, want []", got)
	}
}

// FuzzFormatTable: whatever a caller puts in From or sends as digits, each
// record stays one line of the table.
func FuzzFormatTable(f *testing.F) {
	f.Add("alice", "12#")
	f.Add("a\nb", "\x1b[31m")
	f.Add("\xff\xfe", "\t\r\u2028")
	f.Fuzz(func(t *testing.T, caller, digits string) {
		var buf bytes.Buffer
		recs := []CallRecord{{CallID: "1", Caller: caller, Digits: digits}, {CallID: "2"}}
		if err := FormatTable(&buf, recs); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(buf.String(), "\n"); n != 3 {
			t.Errorf("table has %d lines, want 3:\n%q", n, buf.String())
		}
		if strings.ContainsAny(buf.String(), "\x1b\r\u2028") {
			t.Errorf("control character reached the output: %q", buf.String())
		}
	})
}
