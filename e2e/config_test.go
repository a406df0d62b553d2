package e2e

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/BurntSushi/toml"
)

// testSetup says where the daemon under test listens and keeps its files: away
// from the defaults a developer's `make run` uses.
type testSetup struct {
	ModuleRoot     string // `make run` starts the daemon here
	DemoConfig     string // config/demo/hotline.toml
	SIPPort        int
	RTPMin, RTPMax int
	DatabasePath   string
	RecordingsDir  string
}

// promptDir is where the prompts of cfg are: prompts.dir (relative to the module
// root, where `make run` starts the daemon) or the demo prompts next to the demo
// config, which the daemon embeds.
func (s testSetup) promptDir(cfg map[string]any) string {
	if p, ok := cfg["prompts"].(map[string]any); ok {
		if d, ok := p["dir"].(string); ok && d != "" {
			if filepath.IsAbs(d) {
				return d
			}
			return filepath.Join(s.ModuleRoot, d)
		}
	}
	return filepath.Join(filepath.Dir(s.DemoConfig), "prompts")
}

// callPlan is what the demo config says a caller must do to reach an agent.
type callPlan struct {
	DID           string
	Trunk         string
	Digit         string // menu digit that leads to Queue
	Queue         string
	MenuEnds      time.Duration // greeting + menu prompt: when the menu starts listening at the latest
	AgentID       string
	AgentPassword string
}

// writeTestConfig reads the demo config, moves it to the test's ports and
// directories, writes it to dir/hotline.toml and works out the call plan: which
// digit reaches wantQueue and how long the prompts before the menu take.
func writeTestConfig(setup testSetup, dir, wantDID, wantQueue, wantAgent string) (string, callPlan, error) {
	var cfg map[string]any
	if _, err := toml.DecodeFile(setup.DemoConfig, &cfg); err != nil {
		return "", callPlan{}, fmt.Errorf("read demo config: %w", err)
	}
	plan, err := planCall(cfg, setup.promptDir(cfg), wantDID, wantQueue, wantAgent)
	if err != nil {
		return "", callPlan{}, fmt.Errorf("demo config %s: %w", setup.DemoConfig, err)
	}

	sip := table(cfg, "sip")
	sip["listen"] = fmt.Sprintf("127.0.0.1:%d", setup.SIPPort)
	rtp := table(cfg, "rtp")
	rtp["address"] = "127.0.0.1"
	rtp["port_min"] = setup.RTPMin
	rtp["port_max"] = setup.RTPMax
	storage := table(cfg, "storage")
	storage["database"] = setup.DatabasePath
	storage["recordings"] = setup.RecordingsDir
	// The test daemon runs in a temporary directory, not the module root.
	if prompts, ok := cfg["prompts"].(map[string]any); ok {
		if d, ok := prompts["dir"].(string); ok && d != "" {
			prompts["dir"] = setup.promptDir(cfg)
		}
	}

	path := filepath.Join(dir, "hotline.toml")
	f, err := os.Create(path)
	if err != nil {
		return "", callPlan{}, fmt.Errorf("write test config: %w", err)
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "# Written by e2e/realpeers_test.go from %s.\n", setup.DemoConfig); err != nil {
		return "", callPlan{}, fmt.Errorf("write test config: %w", err)
	}
	if err := toml.NewEncoder(f).Encode(cfg); err != nil {
		return "", callPlan{}, fmt.Errorf("write test config: %w", err)
	}
	return path, plan, f.Close()
}

// table returns cfg[name] as a table, creating it when absent.
func table(cfg map[string]any, name string) map[string]any {
	if m, ok := cfg[name].(map[string]any); ok {
		return m
	}
	m := map[string]any{}
	cfg[name] = m
	return m
}

// planCall follows the demo config the way a caller would: trunk for the DID, its
// IVR from the entry node through play nodes to the menu, and the digit whose
// choice is a queue node for wantQueue.
func planCall(cfg map[string]any, promptDir, wantDID, wantQueue, wantAgent string) (callPlan, error) {
	plan := callPlan{DID: wantDID, Queue: wantQueue, AgentID: wantAgent}
	var ivrName string
	for _, tr := range tables(cfg["trunk"]) {
		if slices.Contains(stringList(tr["dids"]), wantDID) {
			plan.Trunk, _ = tr["name"].(string)
			ivrName, _ = tr["ivr"].(string)
			break
		}
	}
	if ivrName == "" {
		return plan, fmt.Errorf("no [[trunk]] takes DID %s into an IVR", wantDID)
	}
	for _, ag := range tables(cfg["agent"]) {
		if ag["id"] == wantAgent {
			plan.AgentPassword, _ = ag["password"].(string)
		}
	}
	if plan.AgentPassword == "" {
		return plan, fmt.Errorf("no [[agent]] %q with a password", wantAgent)
	}

	ivr, _ := table(cfg, "ivr")[ivrName].(map[string]any)
	nodes, _ := ivr["node"].(map[string]any)
	name, _ := ivr["entry"].(string)
	for steps := 0; steps < len(nodes)+1; steps++ {
		node, ok := nodes[name].(map[string]any)
		if !ok {
			return plan, fmt.Errorf("ivr %q: no node %q", ivrName, name)
		}
		switch node["type"] {
		case "play":
			for _, prompt := range stringList(node["prompts"]) {
				d, err := wavDuration(filepath.Join(promptDir, prompt+".wav"))
				if err != nil {
					return plan, err
				}
				plan.MenuEnds += d
			}
			name, _ = node["next"].(string)
		case "menu":
			prompt, _ := node["prompt"].(string)
			d, err := wavDuration(filepath.Join(promptDir, prompt+".wav"))
			if err != nil {
				return plan, err
			}
			plan.MenuEnds += d
			choices, _ := node["choices"].(map[string]any)
			for digit, target := range choices {
				t, _ := nodes[fmt.Sprint(target)].(map[string]any)
				if t["type"] == "queue" && t["queue"] == wantQueue {
					plan.Digit = digit
					return plan, nil
				}
			}
			return plan, fmt.Errorf("ivr %q menu %q: no digit leads to queue %q", ivrName, name, wantQueue)
		default:
			return plan, fmt.Errorf("ivr %q: node %q (type %v) comes before any menu", ivrName, name, node["type"])
		}
	}
	return plan, fmt.Errorf("ivr %q: play nodes loop without reaching a menu", ivrName)
}

func tables(v any) []map[string]any {
	switch v := v.(type) {
	case []map[string]any:
		return v
	case []any:
		var out []map[string]any
		for _, e := range v {
			if m, ok := e.(map[string]any); ok {
				out = append(out, m)
			}
		}
		return out
	}
	return nil
}

func stringList(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, e := range list {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// wavDuration reads a PCM WAV header: data bytes / byte rate.
func wavDuration(path string) (time.Duration, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("prompt: %w", err)
	}
	w, err := parseWAV(b)
	if err != nil {
		return 0, fmt.Errorf("prompt %s: %w", path, err)
	}
	frames := len(w.Data) / (2 * w.Channels)
	return time.Duration(frames) * time.Second / time.Duration(w.Rate), nil
}

// le16 and le32 read little-endian integers (WAV and pcap headers).
func le16(b []byte) int { return int(binary.LittleEndian.Uint16(b)) }
func le32(b []byte) int { return int(binary.LittleEndian.Uint32(b)) }
