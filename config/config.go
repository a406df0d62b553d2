// Package config is hotline's configuration: the TOML schema, its defaults, and a
// validation that reports every problem in a file at once, each with its
// file:line:col and what was expected.
//
// A *Config is an immutable snapshot: Parse builds a complete, valid one or none at
// all, and nothing changes it afterwards. Reloading means parsing a new snapshot and
// swapping a pointer; calls keep the snapshot they started with.
//
// The package reads the config file and, to check that prompts exist and can be
// played, the headers of the prompt files. It opens no sockets.
package config

import (
	"embed"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"time"
)

// DemoTOML is the embedded demo configuration, the one [Default] returns. The same
// file is kept in testdata/demo/hotline.toml.
//
//go:embed demo/hotline.toml
var DemoTOML []byte

//go:embed demo/prompts/*.wav
var demoPrompts embed.FS

// DemoSource is the Source of the configuration returned by [Default].
const DemoSource = "<embedded demo>"

// Config is one complete, validated configuration snapshot. Treat it as read-only.
type Config struct {
	Source  string            `toml:"-"` // file the config came from ("<embedded demo>" for the default)
	SIP     SIP               `toml:"sip"`
	RTP     RTP               `toml:"rtp"`
	Storage Storage           `toml:"storage"`
	Prompts Prompts           `toml:"prompts"`
	ACD     ACD               `toml:"acd"`
	Trunks  []Trunk           `toml:"trunk"`
	Agents  []Agent           `toml:"agent"`
	IVRs    map[string]*IVR   `toml:"ivr"`
	Queues  map[string]*Queue `toml:"queue"`
}

// SIP is the signalling side: where hotline listens and how it names itself.
type SIP struct {
	Listen     string   `toml:"listen"`     // IP:port, default "127.0.0.1:5060"
	Transports []string `toml:"transports"` // "udp", "tcp"; default both
	Realm      string   `toml:"realm"`      // digest auth realm, default "hotline"
	UserAgent  string   `toml:"user_agent"` // User-Agent and Server header, default "hotline"
	// DigestAlgorithms are offered to phones in this order, one challenge
	// each: "MD5", "SHA-256". Default MD5 only: phones on libre 1.x (baresip)
	// and many desk phones refuse a 401 that names any algorithm they lack.
	DigestAlgorithms []string `toml:"digest_algorithms"`
	// Advertise is the public address put in Contact and Via when the box
	// sits behind 1:1 NAT (a cloud VM): "203.0.113.7" or "203.0.113.7:5060".
	// Required when listen is 0.0.0.0 or [::].
	Advertise string `toml:"advertise"`
	// TCPIdleTimeout closes a TCP connection that carried no message and no
	// keep-alive for this long (default 5m; phones refresh well within it).
	TCPIdleTimeout Duration `toml:"tcp_idle_timeout"`
	// TCPMaxPerSource caps the TCP connections one IP address may hold open
	// (default 32).
	TCPMaxPerSource int `toml:"tcp_max_per_source"`
	// QualifyInterval is how often each registered device is probed with
	// OPTIONS over its flow (default 30s); probes are spread over it.
	QualifyInterval Duration `toml:"qualify_interval"`
	// MinExpires is the shortest registration accepted (default 60 s; less
	// gets 423 Interval Too Brief); MaxExpires the longest granted (default 3600 s).
	MinExpires int `toml:"min_expires"`
	MaxExpires int `toml:"max_expires"`
}

// RTP is the media side. RTP takes the even ports in [PortMin, PortMax), RTCP the
// odd port above each, so both bounds are even.
type RTP struct {
	Address string `toml:"address"`  // IP that media binds to and offers in SDP; default: the IP of sip.listen
	PortMin int    `toml:"port_min"` // default 10000
	PortMax int    `toml:"port_max"` // default 20000
	// Advertise is the public IP put in SDP when the box sits behind 1:1 NAT;
	// required when address is 0.0.0.0 or ::.
	Advertise string `toml:"advertise"`
	// Timeout ends a call whose leg received no RTP for this long (default
	// 30s); HoldTimeout replaces it while that leg is on hold (default 5m).
	Timeout     Duration `toml:"timeout"`
	HoldTimeout Duration `toml:"hold_timeout"`
}

// ACD tunes how offers to agents fail over.
type ACD struct {
	// BusyBackoff keeps an agent whose phone answered busy or declined
	// (486, 600, 603) out of offers for this long (default 30s).
	BusyBackoff Duration `toml:"busy_backoff"`
	// MaxNoAnswer pauses an agent (reason "no-answer") after this many
	// offers in a row rang out unanswered (default 3; the agent resumes).
	MaxNoAnswer int `toml:"max_no_answer"`
}

// Storage says where hotline keeps its data. Relative paths are relative to the
// daemon's working directory.
type Storage struct {
	Database   string `toml:"database"`   // SQLite file, default "./var/hotline.db"
	Recordings string `toml:"recordings"` // directory, default "./var/recordings"
}

// Prompts says where the audio prompts come from.
type Prompts struct {
	// Dir holds one NAME.wav per prompt: 8- or 16-bit PCM, µ-law or A-law,
	// mono or stereo, 8000-48000 Hz (converted to 8 kHz mono at load). Empty
	// means the demo prompts embedded in the binary. Relative to the working
	// directory.
	Dir string `toml:"dir"`
}

// Trunk is a carrier allowed to send calls in.
type Trunk struct {
	Name      string   `toml:"name"`
	Addresses []string `toml:"addresses"` // IPs or CIDRs the carrier sends from
	DIDs      []string `toml:"dids"`      // numbers it delivers to us
	IVR       string   `toml:"ivr"`       // IVR that answers those calls
	// InbandDTMF listens for key tones in the caller's audio (carriers that
	// send neither RFC 4733 events nor SIP INFO). Default false.
	InbandDTMF bool `toml:"inband_dtmf"`
}

// Agent is a person who answers calls from a softphone or desk phone.
type Agent struct {
	ID       string   `toml:"id"`       // SIP user name the phone registers with
	Name     string   `toml:"name"`     // display name, default the ID
	Password string   `toml:"password"` // digest auth secret
	Skills   []string `toml:"skills"`   // queues whose skill is listed here may offer calls to this agent
}

// IVR is one call flow: a set of named nodes and the one a call starts at.
type IVR struct {
	Entry string           `toml:"entry"`
	Nodes map[string]*Node `toml:"node"`
}

// Node types.
const (
	NodePlay   = "play"
	NodeMenu   = "menu"
	NodeQueue  = "queue"
	NodeHangup = "hangup"
)

// Node is one step of an IVR. Which fields apply depends on Type.
type Node struct {
	Type    string            `toml:"type"`    // "play" | "menu" | "queue" | "hangup"
	Prompts []string          `toml:"prompts"` // play: prompts in order
	Next    string            `toml:"next"`    // play: node after it (empty: hang up)
	Prompt  string            `toml:"prompt"`  // menu: the menu prompt
	Timeout Duration          `toml:"timeout"` // menu: wait for a digit after the prompt ends (default 5s)
	Tries   int               `toml:"tries"`   // menu: attempts before giving up (default 3)
	Invalid string            `toml:"invalid"` // menu: prompt played on an invalid digit (optional)
	Choices map[string]string `toml:"choices"` // menu: digit -> node
	Fail    string            `toml:"fail"`    // menu: node after the last failed try (empty: hang up)
	Queue   string            `toml:"queue"`   // queue: queue name
}

// StrategyLongestIdle offers a call to the agent who has been idle the longest.
const StrategyLongestIdle = "longest-idle"

// Queue holds callers until an agent with the skill is free.
type Queue struct {
	Skill       string   `toml:"skill"`
	RingTimeout Duration `toml:"ring_timeout"`  // how long an agent's phone rings before the next agent is tried (default 15s)
	MusicOnHold string   `toml:"music_on_hold"` // prompt looped while the caller waits (default "moh")
	Strategy    string   `toml:"strategy"`      // only "longest-idle" for now
	// Retry is how long a caller waits after an offer failed before the next
	// agent rings (default 5s), so that failing phones never spin the queue.
	Retry Duration `toml:"retry"`
}

// Duration is a time.Duration written in TOML as a string like "5s" or "1m30s".
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf(`expected a duration like "15s"`)
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// Load reads the config file at path and parses it (see [Parse]).
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Default returns the embedded demo configuration. It panics only if the embedded
// file is invalid, which a test forbids.
func Default() *Config {
	c, err := Parse(DemoSource, DemoTOML)
	if err != nil {
		panic(fmt.Sprintf("config: the embedded demo config is invalid:\n%v", err))
	}
	return c
}

// PromptFS returns the prompts: the directory Prompts.Dir, or the demo prompts
// embedded in the binary when Dir is empty. A prompt NAME is the file NAME.wav.
func (c *Config) PromptFS() fs.FS {
	if c.Prompts.Dir != "" {
		return os.DirFS(c.Prompts.Dir)
	}
	sub, err := fs.Sub(demoPrompts, "demo/prompts")
	if err != nil { // only if the embed directive above changes
		panic(err)
	}
	return sub
}

// PromptNames returns every prompt the config refers to (IVR prompts and queue
// music on hold), sorted, without duplicates.
func (c *Config) PromptNames() []string {
	var names []string
	for _, tree := range c.IVRs {
		for _, n := range tree.Nodes {
			names = append(names, n.promptRefs()...)
		}
	}
	for _, q := range c.Queues {
		if q.MusicOnHold != "" {
			names = append(names, q.MusicOnHold)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// promptRefs lists the prompts a node plays.
func (n *Node) promptRefs() []string {
	refs := slices.Clone(n.Prompts)
	for _, p := range []string{n.Prompt, n.Invalid} {
		if p != "" {
			refs = append(refs, p)
		}
	}
	return refs
}

// Agent returns the agent with the given ID, or nil.
func (c *Config) Agent(id string) *Agent {
	for i := range c.Agents {
		if c.Agents[i].ID == id {
			return &c.Agents[i]
		}
	}
	return nil
}

// TrunkFor returns the trunk that may send a call from ip to did: one whose
// Addresses contain ip and whose DIDs contain did.
func (c *Config) TrunkFor(ip netip.Addr, did string) (*Trunk, bool) {
	ip = ip.Unmap() // dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d
	for i := range c.Trunks {
		t := &c.Trunks[i]
		if slices.Contains(t.DIDs, did) && t.Allows(ip) {
			return t, true
		}
	}
	return nil, false
}

// Allows reports whether ip is one of the trunk's addresses.
func (t *Trunk) Allows(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, a := range t.Addresses {
		if p, err := parseAddressOrPrefix(a); err == nil && p.Contains(ip) {
			return true
		}
	}
	return false
}

// parseAddressOrPrefix reads "192.0.2.7" or "192.0.2.0/24" as a prefix.
func parseAddressOrPrefix(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return p.Masked(), nil
}
