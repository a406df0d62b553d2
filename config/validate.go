package config

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/hotline-pbx/hotline/media/wav"
)

// validate checks everything decoding could not: addresses, ranges, names that
// refer to other parts of the file, and prompt files.
func validate(c *Config, r *report) {
	checkSIP(c, r)
	checkRTP(c, r)
	checkACD(c, r)
	checkTrunks(c, r)
	checkAgents(c, r)
	for _, name := range slices.Sorted(maps.Keys(c.IVRs)) {
		checkIVR(c, r, name, c.IVRs[name])
	}
	for _, name := range slices.Sorted(maps.Keys(c.Queues)) {
		checkQueue(r, name, c.Queues[name])
	}
	checkPrompts(c, r)
}

var (
	knownTransports       = []string{"udp", "tcp"}
	knownDigestAlgorithms = []string{"SHA-256", "MD5"}
)

func checkSIP(c *Config, r *report) {
	s := c.SIP
	if ap, err := netip.ParseAddrPort(s.Listen); err != nil || ap.Port() == 0 || ap.Addr().Zone() != "" {
		r.at(keyPath{"sip", "listen"}, `sip: listen %q: expected an IP address and port like "127.0.0.1:5060" or "[::1]:5060"`, s.Listen)
	}
	checkChoices(r, "transports", "transport", s.Transports, knownTransports)
	checkChoices(r, "digest_algorithms", "digest algorithm", s.DigestAlgorithms, knownDigestAlgorithms)
	if s.Advertise != "" {
		if _, err := ParseAdvertise(s.Advertise); err != nil {
			r.at(keyPath{"sip", "advertise"}, `sip: advertise %q: expected the public IP address, optionally with a port, like "203.0.113.7" or "203.0.113.7:5060"`, s.Advertise)
		}
	} else if ap, err := netip.ParseAddrPort(s.Listen); err == nil && ap.Addr().IsUnspecified() {
		r.at(keyPath{"sip", "listen"}, `sip: listen %q is every address, which phones cannot be told to send to; expected advertise = "PUBLIC-IP" under [sip] as well, or listen on one address`, s.Listen)
	}
	positiveDuration(r, keyPath{"sip", "tcp_idle_timeout"}, "sip", s.TCPIdleTimeout, "5m")
	positiveDuration(r, keyPath{"sip", "qualify_interval"}, "sip", s.QualifyInterval, "30s")
	atLeast(r, keyPath{"sip", "tcp_max_per_source"}, "sip: tcp_max_per_source", s.TCPMaxPerSource, 1)
	atLeast(r, keyPath{"sip", "min_expires"}, "sip: min_expires", s.MinExpires, 1)
	if s.MinExpires >= 1 && s.MaxExpires < s.MinExpires {
		r.at(keyPath{"sip", "max_expires"}, "sip: max_expires %d is below min_expires %d; expected seconds like 3600", s.MaxExpires, s.MinExpires)
	}
}

// ParseAdvertise reads an advertised address: an IP, or an IP and port.
// A missing port comes back as 0 (use the listening port).
func ParseAdvertise(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Addr().IsUnspecified() || ap.Addr().Zone() != "" {
			return netip.AddrPort{}, fmt.Errorf("advertise %q: not a routable address", s)
		}
		return ap, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.IsUnspecified() || a.Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("advertise %q: expected an IP address, optionally with a port", s)
	}
	return netip.AddrPortFrom(a, 0), nil
}

func positiveDuration(r *report, p keyPath, section string, d Duration, example string) {
	if d.Duration < 0 {
		r.at(p, `%s: %s %s is negative; expected a duration like %q`, section, p[len(p)-1], d.Duration, example)
	}
}

func atLeast(r *report, p keyPath, what string, n, least int) {
	if n < least {
		r.at(p, "%s %d is too small; expected %d or more", what, n, least)
	}
}

// checkChoices checks a non-empty list of [sip] key whose values come from known.
func checkChoices(r *report, key, what string, values, known []string) {
	if len(values) == 0 {
		r.at(keyPath{"sip", key}, `sip: %s is empty; expected at least one of: %s`, key, quoteList(known))
	}
	seen := map[string]bool{}
	for i, v := range values {
		at := keyPath{"sip", key, index(i)}
		switch {
		case !slices.Contains(known, v):
			r.at(at, "sip: %s %q is not known; expected one of: %s", what, v, quoteList(known))
		case seen[v]:
			r.at(at, "sip: %s %q is listed twice", what, v)
		}
		seen[v] = true
	}
}

func checkRTP(c *Config, r *report) {
	p := c.RTP
	// An empty address means sip.listen, from which it defaults, is wrong: reported there.
	if a, err := netip.ParseAddr(p.Address); p.Address != "" && (err != nil || a.Zone() != "") {
		r.at(keyPath{"rtp", "address"}, `rtp: address %q: expected an IP address like "127.0.0.1"`, p.Address)
	}
	okRange := true
	for _, b := range []struct {
		key  string
		port int
	}{{"port_min", p.PortMin}, {"port_max", p.PortMax}} {
		switch {
		case b.port < 1024 || b.port > 65534:
			r.at(keyPath{"rtp", b.key}, "rtp: %s %d is out of range; expected a port from 1024 to 65534", b.key, b.port)
			okRange = false
		case b.port%2 != 0:
			r.at(keyPath{"rtp", b.key}, "rtp: %s %d is odd; expected an even port (RTP takes the even port of each pair, RTCP the odd one above it)", b.key, b.port)
			okRange = false
		}
	}
	if okRange && p.PortMin >= p.PortMax {
		r.at(keyPath{"rtp", "port_max"}, "rtp: port_max %d is not above port_min %d; expected a range like 10000 to 20000", p.PortMax, p.PortMin)
	}
	if p.Advertise != "" {
		if a, err := netip.ParseAddr(p.Advertise); err != nil || a.IsUnspecified() || a.Zone() != "" {
			r.at(keyPath{"rtp", "advertise"}, `rtp: advertise %q: expected the public IP address put in SDP, like "203.0.113.7"`, p.Advertise)
		}
	} else if a, err := netip.ParseAddr(p.Address); err == nil && a.IsUnspecified() && c.SIP.Advertise == "" && !listensEverywhere(c) {
		// (listening everywhere is reported at sip.listen, from which address defaults)
		r.at(keyPath{"rtp", "address"}, `rtp: address %q is every address, which cannot go into SDP; expected advertise = "PUBLIC-IP" under [rtp] as well, or one address`, p.Address)
	}
	positiveDuration(r, keyPath{"rtp", "timeout"}, "rtp", p.Timeout, "30s")
	positiveDuration(r, keyPath{"rtp", "hold_timeout"}, "rtp", p.HoldTimeout, "5m")
}

func listensEverywhere(c *Config) bool {
	ap, err := netip.ParseAddrPort(c.SIP.Listen)
	return err == nil && ap.Addr().IsUnspecified()
}

func checkACD(c *Config, r *report) {
	positiveDuration(r, keyPath{"acd", "busy_backoff"}, "acd", c.ACD.BusyBackoff, "30s")
	atLeast(r, keyPath{"acd", "max_no_answer"}, "acd: max_no_answer", c.ACD.MaxNoAnswer, 1)
}

func checkTrunks(c *Config, r *report) {
	firstName := map[string]int{}
	for i, t := range c.Trunks {
		base := keyPath{"trunk", index(i)}
		where := trunkName(i, t)
		if t.Name == "" {
			r.at(base.with("name"), `%s: name is empty; expected a name like "my-carrier"`, where)
		} else if j, dup := firstName[t.Name]; dup {
			r.at(base.with("name"), "%s is defined twice (first at %s)", where, r.lineOf(keyPath{"trunk", index(j)}))
		} else {
			firstName[t.Name] = i
		}
		if len(t.Addresses) == 0 {
			r.at(base.with("addresses"), `%s: addresses is empty; expected the IP addresses or networks the carrier sends from, like ["203.0.113.5", "198.51.100.0/24"]`, where)
		}
		for k, a := range t.Addresses {
			if _, err := parseAddressOrPrefix(a); err != nil || strings.Contains(a, "%") {
				r.at(base.with("addresses", index(k)), `%s: address %q: expected an IP address like "203.0.113.5" or a network like "198.51.100.0/24"`, where, a)
			}
		}
		if len(t.DIDs) == 0 {
			r.at(base.with("dids"), `%s: dids is empty; expected the numbers the carrier delivers, like ["+15550100"]`, where)
		}
		for k, did := range t.DIDs {
			if strings.TrimSpace(did) == "" {
				r.at(base.with("dids", index(k)), `%s: dids[%d] is empty; expected a number like "+15550100"`, where, k)
			}
		}
		switch {
		case t.IVR == "":
			r.at(base.with("ivr"), "%s: ivr is empty; expected the IVR that answers its calls, one of: %s", where, names(c.IVRs))
		case c.IVRs[t.IVR] == nil:
			r.at(base.with("ivr"), "%s: ivr %q does not exist; expected one of: %s", where, t.IVR, names(c.IVRs))
		}
	}
}

func trunkName(i int, t Trunk) string {
	if t.Name == "" {
		return fmt.Sprintf("trunk #%d", i+1)
	}
	return fmt.Sprintf("trunk %q", t.Name)
}

func checkAgents(c *Config, r *report) {
	firstID := map[string]int{}
	for i, a := range c.Agents {
		base := keyPath{"agent", index(i)}
		where := fmt.Sprintf("agent %q", a.ID)
		switch {
		case a.ID == "":
			where = fmt.Sprintf("agent #%d", i+1)
			r.at(base.with("id"), `%s: id is empty; expected the user name its phone registers with, like "1001"`, where)
		case !validAgentID(a.ID):
			r.at(base.with("id"), "%s: id has characters a SIP user name cannot carry plainly; expected letters, digits, '.', '-' or '_'", where)
		default:
			if j, dup := firstID[a.ID]; dup {
				r.at(base.with("id"), "%s is defined twice (first at %s)", where, r.lineOf(keyPath{"agent", index(j)}))
			} else {
				firstID[a.ID] = i
			}
		}
		if a.Password == "" {
			r.at(base.with("password"), "%s: password is empty; expected the secret its phone registers with", where)
		}
		for k, s := range a.Skills {
			if strings.TrimSpace(s) == "" {
				r.at(base.with("skills", index(k)), `%s: skills[%d] is empty; expected a skill name like "sales"`, where, k)
			}
		}
	}
}

func validAgentID(id string) bool {
	for _, c := range []byte(id) {
		if !isBareKeyChar(c) && c != '.' {
			return false
		}
	}
	return true
}

// nodeKeys lists the keys each node type uses; checkNodeKeys rejects the others,
// which would otherwise be silently ignored.
var nodeKeys = map[string][]string{
	NodePlay:   {"prompts", "next"},
	NodeMenu:   {"prompt", "timeout", "tries", "invalid", "choices", "fail"},
	NodeQueue:  {"queue"},
	NodeHangup: {},
}

var nodeTypes = []string{NodePlay, NodeMenu, NodeQueue, NodeHangup}

// checkNodeKeys reports keys set on a node whose type does not use them. It runs
// before defaults are applied, so every set field was written in the file.
func checkNodeKeys(c *Config, r *report) {
	for _, treeName := range slices.Sorted(maps.Keys(c.IVRs)) {
		for _, nodeName := range slices.Sorted(maps.Keys(c.IVRs[treeName].Nodes)) {
			n := c.IVRs[treeName].Nodes[nodeName]
			allowed, known := nodeKeys[n.Type]
			if !known {
				continue // checkNode reports the type
			}
			set := []struct {
				key string
				set bool
			}{
				{"prompts", n.Prompts != nil}, {"next", n.Next != ""}, {"prompt", n.Prompt != ""},
				{"timeout", n.Timeout.Duration != 0}, {"tries", n.Tries != 0}, {"invalid", n.Invalid != ""},
				{"choices", n.Choices != nil}, {"fail", n.Fail != ""}, {"queue", n.Queue != ""},
			}
			for _, k := range set {
				if k.set && !slices.Contains(allowed, k.key) {
					r.at(keyPath{"ivr", treeName, "node", nodeName, k.key},
						"ivr %q node %q: %s is not used by a %s node; expected only: %s",
						treeName, nodeName, k.key, n.Type, strings.Join(append([]string{"type"}, allowed...), ", "))
				}
			}
		}
	}
}

func checkIVR(c *Config, r *report, name string, tree *IVR) {
	base := keyPath{"ivr", name}
	where := fmt.Sprintf("ivr %q", name)
	switch {
	case len(tree.Nodes) == 0:
		r.at(base, "%s has no nodes; expected at least one [ivr.%s.node.NAME] table", where, name)
	case tree.Entry == "":
		r.at(base.with("entry"), "%s: entry is empty; expected the node calls start at, one of: %s", where, names(tree.Nodes))
	case tree.Nodes[tree.Entry] == nil:
		r.at(base.with("entry"), "%s: entry %q does not exist; expected one of: %s", where, tree.Entry, names(tree.Nodes))
	}
	for _, nodeName := range slices.Sorted(maps.Keys(tree.Nodes)) {
		checkNode(c, r, name, tree, nodeName, tree.Nodes[nodeName])
	}
	checkSilentLoops(r, name, tree)
}

func checkNode(c *Config, r *report, treeName string, tree *IVR, name string, n *Node) {
	base := keyPath{"ivr", treeName, "node", name}
	where := fmt.Sprintf("ivr %q node %q", treeName, name)
	goesTo := func(key, target string, p keyPath) {
		if target != "" && tree.Nodes[target] == nil {
			r.at(p, "%s: %s goes to node %q, which does not exist; expected one of: %s", where, key, target, names(tree.Nodes))
		}
	}
	switch n.Type {
	case NodePlay:
		if len(n.Prompts) == 0 {
			r.at(base.with("prompts"), `%s: prompts is empty; expected the prompts to play, like ["welcome"]`, where)
		}
		goesTo("next", n.Next, base.with("next"))
	case NodeMenu:
		if n.Prompt == "" {
			r.at(base.with("prompt"), `%s: prompt is empty; expected the menu prompt, like "menu"`, where)
		}
		if n.Timeout.Duration < 0 {
			r.at(base.with("timeout"), `%s: timeout %s is negative; expected a duration like "5s"`, where, n.Timeout.Duration)
		}
		if n.Tries < 0 {
			r.at(base.with("tries"), "%s: tries %d is negative; expected 1 or more", where, n.Tries)
		}
		if len(n.Choices) == 0 {
			r.at(base.with("choices"), `%s: choices is empty; expected digits and the nodes they go to, like choices = { "1" = "sales" }`, where)
		}
		for _, digit := range slices.Sorted(maps.Keys(n.Choices)) {
			at := base.with("choices", digit)
			if len(digit) != 1 || !strings.Contains("0123456789*#", digit) {
				r.at(at, "%s: choice %q is not a single key; expected one of 0-9, * or #", where, digit)
			}
			if target := n.Choices[digit]; target == "" {
				r.at(at, "%s: choice %q goes nowhere; expected a node, one of: %s", where, digit, names(tree.Nodes))
			} else {
				goesTo(fmt.Sprintf("choice %q", digit), target, at)
			}
		}
		goesTo("fail", n.Fail, base.with("fail"))
	case NodeQueue:
		switch {
		case n.Queue == "":
			r.at(base.with("queue"), "%s: queue is empty; expected one of: %s", where, names(c.Queues))
		case c.Queues[n.Queue] == nil:
			r.at(base.with("queue"), "%s: queue %q does not exist; expected one of: %s", where, n.Queue, names(c.Queues))
		}
	case NodeHangup:
	case "":
		r.at(base.with("type"), "%s: type is missing; expected one of: %s", where, quoteList(nodeTypes))
	default:
		r.at(base.with("type"), "%s: type %q is not known; expected one of: %s", where, n.Type, quoteList(nodeTypes))
	}
}

// checkSilentLoops reports play nodes that lead back to themselves through other
// play nodes only: a caller would hear the same prompts forever with no way out.
func checkSilentLoops(r *report, treeName string, tree *IVR) {
	reported := map[string]bool{}
	for _, start := range slices.Sorted(maps.Keys(tree.Nodes)) {
		var path []string
		onPath := map[string]bool{}
		for name := start; name != "" && !reported[name]; name = tree.Nodes[name].Next {
			n := tree.Nodes[name]
			if n == nil || n.Type != NodePlay {
				break
			}
			if onPath[name] {
				loop := append(path[slices.Index(path, name):], name)
				for _, l := range loop {
					reported[l] = true
				}
				r.at(keyPath{"ivr", treeName, "node", name, "next"},
					"ivr %q: play nodes %s loop forever without asking the caller anything; expected a menu, queue or hangup node in the loop",
					treeName, strings.Join(loop, " -> "))
				break
			}
			onPath[name] = true
			path = append(path, name)
		}
	}
}

func checkQueue(r *report, name string, q *Queue) {
	base := keyPath{"queue", name}
	where := fmt.Sprintf("queue %q", name)
	if strings.TrimSpace(q.Skill) == "" {
		r.at(base.with("skill"), `%s: skill is empty; expected the skill agents need to take its calls, like "sales"`, where)
	}
	if q.RingTimeout.Duration < 0 {
		r.at(base.with("ring_timeout"), `%s: ring_timeout %s is negative; expected a duration like "15s"`, where, q.RingTimeout.Duration)
	}
	positiveDuration(r, base.with("retry"), where, q.Retry, "5s")
	if q.Strategy != StrategyLongestIdle {
		r.at(base.with("strategy"), "%s: strategy %q is not known; expected %q", where, q.Strategy, StrategyLongestIdle)
	}
}

// checkPrompts checks that every prompt the config refers to is a NAME.wav in the
// prompt directory (or among the embedded demo prompts) whose header names a
// format the daemon plays. Each file is read once, however often it is named.
func checkPrompts(c *Config, r *report) {
	prompts, from := c.PromptFS(), "the embedded demo prompts"
	if c.Prompts.Dir != "" {
		from = fmt.Sprintf("prompts dir %q", c.Prompts.Dir)
		info, err := os.Stat(c.Prompts.Dir)
		if err != nil || !info.IsDir() {
			r.at(keyPath{"prompts", "dir"}, "prompts: dir %q is not a readable directory; expected a directory of NAME.wav files", c.Prompts.Dir)
			return
		}
	}
	headers := map[string]error{}
	missing := func(p keyPath, where, name string) {
		switch {
		case strings.HasSuffix(name, ".wav"):
			r.at(p, "%s: prompt %q: expected the name without .wav, like %q", where, name, strings.TrimSuffix(name, ".wav"))
		case !fs.ValidPath(name + ".wav"):
			r.at(p, `%s: prompt %q is not a valid name; expected a file name without ".wav", like "welcome"`, where, name)
		default:
			err, seen := headers[name]
			if !seen {
				err = checkPromptHeader(prompts, name)
				headers[name] = err
			}
			switch {
			case errors.Is(err, fs.ErrNotExist):
				r.at(p, "%s: prompt %q not found; expected %s.wav in %s", where, name, name, from)
			case err != nil:
				r.at(p, "%s: prompt %q (%s.wav): %v", where, name, name, err)
			}
		}
	}
	for _, treeName := range slices.Sorted(maps.Keys(c.IVRs)) {
		nodes := c.IVRs[treeName].Nodes
		for _, nodeName := range slices.Sorted(maps.Keys(nodes)) {
			n := nodes[nodeName]
			base := keyPath{"ivr", treeName, "node", nodeName}
			where := fmt.Sprintf("ivr %q node %q", treeName, nodeName)
			for i, p := range n.Prompts {
				if p == "" {
					r.at(base.with("prompts", index(i)), "%s: prompts[%d] is empty; expected a prompt name", where, i)
					continue
				}
				missing(base.with("prompts", index(i)), where, p)
			}
			if n.Prompt != "" {
				missing(base.with("prompt"), where, n.Prompt)
			}
			if n.Invalid != "" {
				missing(base.with("invalid"), where, n.Invalid)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Queues)) {
		missing(keyPath{"queue", name, "music_on_hold"}, fmt.Sprintf("queue %q", name), c.Queues[name].MusicOnHold)
	}
}

// checkPromptHeader reads NAME.wav up to its samples and says whether the media
// engine can play it, in the words media.OpenPrompt would use.
func checkPromptHeader(prompts fs.FS, name string) error {
	f, err := prompts.Open(name + ".wav")
	if err != nil {
		return err
	}
	defer f.Close()
	format, err := wav.DecodeHeader(f)
	if err != nil {
		return err
	}
	return format.Supported()
}

// names lists the keys of m for "expected one of" messages.
func names[V any](m map[string]V) string {
	if len(m) == 0 {
		return "(none are defined)"
	}
	return quoteList(slices.Sorted(maps.Keys(m)))
}

func quoteList(list []string) string {
	quoted := make([]string, len(list))
	for i, s := range list {
		quoted[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(quoted, ", ")
}

// lineOf says where p is, for "defined twice (first at line 12)".
func (r *report) lineOf(p keyPath) string {
	if at := r.pos.find(p); at.line > 0 {
		return fmt.Sprintf("line %d", at.line)
	}
	return "an earlier entry"
}
