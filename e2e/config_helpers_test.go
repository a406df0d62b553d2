package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

// A small config in the demo's schema: the plan must follow trunk -> IVR ->
// play -> play -> menu -> queue, and the written config must carry the test's
// ports and paths.
const sampleConfig = `
[sip]
listen = "127.0.0.1:5060"
[rtp]
port_min = 10000
port_max = 20000
[storage]
database = "./var/hotline.db"
recordings = "./var/recordings"
[prompts]
dir = "./prompts"
[[trunk]]
name = "other"
addresses = ["127.0.0.1"]
dids = ["+1999"]
ivr = "other"
[[trunk]]
name = "carrier"
addresses = ["127.0.0.1"]
dids = ["+1555"]
ivr = "main"
[[agent]]
id = "1001"
password = "secret"
[ivr.main]
entry = "hello"
[ivr.main.node.hello]
type = "play"
prompts = ["a", "b"]
next = "hours"
[ivr.main.node.hours]
type = "play"
prompts = ["a"]
next = "menu"
[ivr.main.node.menu]
type = "menu"
prompt = "m"
[ivr.main.node.menu.choices]
2 = "to-support"
"#" = "to-sales"
[ivr.main.node.to-support]
type = "queue"
queue = "support"
[ivr.main.node.to-sales]
type = "queue"
queue = "sales"
`

func TestWriteTestConfigPlansTheCall(t *testing.T) {
	root := t.TempDir()
	demo := filepath.Join(root, "config", "demo", "hotline.toml")
	prompts := filepath.Join(root, "prompts")
	for _, dir := range []string{filepath.Dir(demo), prompts} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(demo, []byte(sampleConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	// a: 0.5 s, b: 0.25 s, m: 1 s at 8 kHz mono.
	for name, samples := range map[string]int{"a": 4000, "b": 2000, "m": 8000} {
		if err := os.WriteFile(filepath.Join(prompts, name+".wav"), wavBytes(8000, 1, make([]int16, samples), uint32(2*samples)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	setup := testSetup{ModuleRoot: root, DemoConfig: demo, SIPPort: 5090, RTPMin: 30000, RTPMax: 31000,
		DatabasePath: "/tmp/x/hotline.db", RecordingsDir: "/tmp/x/rec"}
	out := t.TempDir()
	path, plan, err := writeTestConfig(setup, out, "+1555", "sales", "1001")
	if err != nil {
		t.Fatal(err)
	}
	want := callPlan{DID: "+1555", Trunk: "carrier", Digit: "#", Queue: "sales",
		MenuEnds: 2250 * time.Millisecond, AgentID: "1001", AgentPassword: "secret"}
	if plan != want {
		t.Errorf("plan = %+v\nwant   %+v", plan, want)
	}
	var got struct {
		SIP struct{ Listen string }
		RTP struct {
			Address string
			PortMin int `toml:"port_min"`
			PortMax int `toml:"port_max"`
		}
		Storage struct{ Database, Recordings string }
		Prompts struct{ Dir string }
	}
	if _, err := toml.DecodeFile(path, &got); err != nil {
		t.Fatal(err)
	}
	if got.SIP.Listen != "127.0.0.1:5090" || got.RTP.Address != "127.0.0.1" || got.Storage.Database != setup.DatabasePath ||
		got.Storage.Recordings != setup.RecordingsDir || got.Prompts.Dir != prompts ||
		got.RTP.PortMin != 30000 || got.RTP.PortMax != 31000 {
		t.Errorf("written config: %+v", got)
	}

	if _, _, err := writeTestConfig(setup, out, "+1555", "billing", "1001"); err == nil || !strings.Contains(err.Error(), `no digit leads to queue "billing"`) {
		t.Errorf("queue no digit reaches: err = %v", err)
	}
	if _, _, err := writeTestConfig(setup, out, "+1000", "sales", "1001"); err == nil {
		t.Error("DID no trunk takes: no error")
	}
}
