package config

import (
	"bytes"
	"errors"
	"io/fs"
	"reflect"
	"testing"

	"github.com/BurntSushi/toml"
)

func FuzzParse(f *testing.F) {
	f.Add(DemoTOML)
	f.Add([]byte(base))
	f.Add([]byte(tricky))
	for _, s := range []string{
		"",
		"[sip]\nlisten = 5",
		"[[trunk]]\n[trunk.x]\n[[trunk]]\nname = 1",
		"[ivr.a.node.b]\ntype = \"play\"\nnext = \"b\"\nprompts = [\"welcome\"]",
		"[queue.q]\nring_timeout = \"-5s\"\nskill = [\"x\"]",
		"agent = [{id = \"1\", password = \"p\"}, {id = \"1\"}]",
		"[ivr.m]\nentry = \"m\"\n[ivr.m.node.m]\ntype = \"menu\"\nchoices = { \"*\" = \"m\", \"12\" = \"\" }",
		"[prompts]\ndir = \"../../..\"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.toml", data)
		if err != nil {
			checkProblems(t, data, c, err)
			return
		}
		checkValid(t, c)
		crossCheckDecoder(t, data)
	})
}

// checkProblems: a rejected file yields no config and only well-formed problems.
func checkProblems(t *testing.T, data []byte, c *Config, err error) {
	if c != nil {
		t.Fatal("Parse returned a config and an error")
	}
	var ps Problems
	if !errors.As(err, &ps) || len(ps) == 0 {
		t.Fatalf("error %T is not a non-empty Problems: %v", err, err)
	}
	lines := bytes.Count(data, []byte("\n")) + 1
	for _, p := range ps {
		if p.File != "f.toml" || p.Msg == "" || p.Line < 0 || p.Line > lines || p.Col < 0 {
			t.Fatalf("malformed problem %#v in a %d-line file", p, lines)
		}
	}
}

// checkValid: an accepted config keeps every promise the rest of hotline relies on.
func checkValid(t *testing.T, c *Config) {
	for _, tr := range c.Trunks {
		if c.IVRs[tr.IVR] == nil || len(tr.DIDs) == 0 || len(tr.Addresses) == 0 {
			t.Fatalf("trunk %+v accepted", tr)
		}
	}
	ids := map[string]bool{}
	for _, a := range c.Agents {
		if a.ID == "" || a.Password == "" || ids[a.ID] {
			t.Fatalf("agent %+v accepted", a)
		}
		ids[a.ID] = true
	}
	for name, tree := range c.IVRs {
		if tree.Nodes[tree.Entry] == nil {
			t.Fatalf("ivr %s: entry %q accepted", name, tree.Entry)
		}
		for nodeName, n := range tree.Nodes {
			targets := []string{n.Next, n.Fail}
			for digit, target := range n.Choices {
				if len(digit) != 1 || target == "" {
					t.Fatalf("node %s: choice %q -> %q accepted", nodeName, digit, target)
				}
				targets = append(targets, target)
			}
			for _, target := range targets {
				if target != "" && tree.Nodes[target] == nil {
					t.Fatalf("node %s goes to missing node %q", nodeName, target)
				}
			}
			if n.Type == NodeQueue && c.Queues[n.Queue] == nil {
				t.Fatalf("node %s: missing queue %q accepted", nodeName, n.Queue)
			}
			if n.Type == NodeMenu && (n.Tries < 1 || n.Timeout.Duration <= 0) {
				t.Fatalf("menu %s: %d tries, timeout %v accepted", nodeName, n.Tries, n.Timeout)
			}
		}
	}
	if c.RTP.PortMin%2 != 0 || c.RTP.PortMax%2 != 0 || c.RTP.PortMin >= c.RTP.PortMax {
		t.Fatalf("RTP %+v accepted", c.RTP)
	}
	for _, name := range c.PromptNames() {
		if _, err := fs.Stat(c.PromptFS(), name+".wav"); err != nil {
			t.Fatalf("prompt %q accepted but: %v", name, err)
		}
	}
}

// crossCheckDecoder: where our decoder reports nothing wrong, toml's own struct
// decoding must agree to the last field and leave no key undecoded.
func crossCheckDecoder(t *testing.T, data []byte) {
	ours, r, syntax := decode("f.toml", string(data))
	if syntax != nil || len(r.problems) > 0 {
		return
	}
	theirs := &Config{Source: "f.toml"}
	md, err := toml.Decode(string(data), theirs)
	if err != nil {
		t.Fatalf("toml rejects what our decoder accepts: %v", err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Fatalf("toml left keys undecoded that our decoder accepted: %v", u)
	}
	if !reflect.DeepEqual(ours, theirs) {
		t.Fatalf("decoders disagree:\nours   %+v\ntheirs %+v", ours, theirs)
	}
}

// The demo and the base config decode the same way through toml's own decoder.
func TestDecoderMatchesTOML(t *testing.T) {
	for _, src := range [][]byte{DemoTOML, []byte(base)} {
		crossCheckDecoder(t, src)
	}
}
