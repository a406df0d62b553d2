package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hotline-pbx/hotline/config"
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
