package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hotline-pbx/hotline/config"
	"github.com/hotline-pbx/hotline/media"
	"github.com/hotline-pbx/hotline/store"
)

func runCmd(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// demoFile writes the demo config, edited, to a temporary file.
func demoFile(t *testing.T, old, new string) (path, src string) {
	t.Helper()
	src = strings.Replace(string(config.DemoTOML), old, new, 1)
	path = filepath.Join(t.TempDir(), "hotline.toml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, src
}

func TestCheck(t *testing.T) {
	good, _ := demoFile(t, "", "")
	if code, out, errs := runCmd("check", "-c", good); code != 0 || !strings.Contains(out, "ok (1 trunks, 3 agents, 1 IVRs, 2 queues)") {
		t.Fatalf("check the demo: exit %d, %q %q", code, out, errs)
	}
	bad, src := demoFile(t, `strategy = "longest-idle"`, `strategy = "longest-idel"`)
	line := 1 + strings.Count(src[:strings.Index(src, "longest-idel")], "\n")
	code, _, errs := runCmd("check", "-c", bad)
	want := bad + ":" + strconv.Itoa(line) + ":"
	if code != 1 || !strings.Contains(errs, want) || !strings.Contains(errs, `expected "longest-idle"`) {
		t.Fatalf("check a typo: exit %d, stderr %q; want exit 1 naming %s and the expected value", code, errs, want)
	}
}

// A prompt the daemon could not play is reported by check, at the key that
// names it, with the words the daemon itself would use.
func TestCheckReportsUnplayablePrompt(t *testing.T) {
	dir := t.TempDir()
	demo := config.Default().PromptFS()
	for _, name := range []string{"welcome", "menu", "invalid", "goodbye", "moh"} {
		data, err := fs.ReadFile(demo, name+".wav")
		if err != nil {
			t.Fatal(err)
		}
		if name == "menu" { // now 24-bit at 96 kHz
			binary.LittleEndian.PutUint32(data[24:], 96000)
			binary.LittleEndian.PutUint16(data[34:], 24)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".wav"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, src := demoFile(t, `# dir = "./prompts"`, `dir = "`+dir+`"`)
	_, loadErr := media.OpenPrompt(os.DirFS(dir), "menu")
	if loadErr == nil {
		t.Fatal("the daemon would load the 24-bit prompt")
	}
	key := strings.Index(src, `prompt = "menu"`)
	want := fmt.Sprintf("%s:%d:1: ivr %q node %q: %v\n", cfg, 1+strings.Count(src[:key], "\n"), "main", "menu", loadErr)
	if code, _, errs := runCmd("check", "-c", cfg); code != 1 || errs != want {
		t.Errorf("check: exit %d, stderr\n%s\nwant exit 1 and\n%s", code, errs, want)
	}
}

func TestUsageAndVersion(t *testing.T) {
	if code, _, errs := runCmd(); code != 2 || !strings.Contains(errs, "usage: hotline") {
		t.Errorf("no args: exit %d, %q", code, errs)
	}
	if code, _, errs := runCmd("frobnicate"); code != 2 || !strings.Contains(errs, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, %q", code, errs)
	}
	if code, out, _ := runCmd("version"); code != 0 || !strings.HasPrefix(out, "hotline ") {
		t.Errorf("version: exit %d, %q", code, out)
	}
}

func TestCDRWithoutDatabase(t *testing.T) {
	cfg, _ := demoFile(t, `database = "./var/hotline.db"`, `database = "`+filepath.Join(t.TempDir(), "none.db")+`"`)
	if code, _, errs := runCmd("cdr", "-c", cfg); code != 1 || !strings.Contains(errs, "no call records yet") {
		t.Errorf("cdr without a database: exit %d, %q", code, errs)
	}
}

// After a crash, `hotline cdr` shows the calls that were in progress as such
// (until the next `hotline run` closes them), beside the finished ones.
func TestCDRShowsCallsInProgress(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "hotline.db")
	cfg, _ := demoFile(t, `database = "./var/hotline.db"`, `database = "`+dbPath+`"`)
	db, err := store.OpenSQLite(dbPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	db.Put(store.CallRecord{ID: "a1", CallID: "talking@carrier", Caller: "+441632960001", Start: start,
		Answer: start.Add(5 * time.Second), Queue: "support", Agent: "1001", WaitSeconds: 5})
	db.Put(store.CallRecord{ID: "a0", CallID: "done@carrier", Caller: "+441632960002", Start: start.Add(-time.Minute),
		End: start, HangupCause: store.CauseNormal, HangupSide: store.SideCaller,
		CallerPackets: 2900, CallerLossPct: 2.5, CallerJitterMS: 4.5, CallerRTTMS: 35})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	code, out, errs := runCmd("cdr", "-c", cfg)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 {
		t.Fatalf("cdr: exit %d, stdout %q, stderr %q; want a header and two rows", code, out, errs)
	}
	if !strings.Contains(lines[1], "talking@carrier") || !strings.Contains(lines[1], "in-progress") {
		t.Errorf("open call row = %q, want it marked in-progress", lines[1])
	}
	if !strings.Contains(lines[2], "done@carrier") || !strings.Contains(lines[2], "normal") || strings.Contains(lines[2], "in-progress") ||
		!strings.Contains(lines[2], "2.5%/4.5ms|-") {
		t.Errorf("finished call row = %q, want cause normal and the caller's quality", lines[2])
	}

	code, out, errs = runCmd("cdr", "-c", cfg, "--json")
	var recs []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &recs) != nil || len(recs) != 2 {
		t.Fatalf("cdr --json: exit %d, %q, %q", code, out, errs)
	}
	if _, hasEnd := recs[0]["end"]; hasEnd || recs[0]["id"] != "a1" || recs[0]["hangup_cause"] != "" {
		t.Errorf("open call as JSON = %v, want id a1, no end, empty cause", recs[0])
	}
	if recs[1]["caller_loss_pct"] != 2.5 || recs[1]["caller_jitter_ms"] != 4.5 || recs[1]["caller_rtt_ms"] != 35.0 ||
		recs[1]["caller_packets"] != 2900.0 || recs[1]["agent_packets"] != 0.0 {
		t.Errorf("finished call as JSON = %v, want the caller's quality and no agent's", recs[1])
	}
}
