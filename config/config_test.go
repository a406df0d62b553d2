package config

import (
	"bytes"
	"encoding/binary"
	"io/fs"
	"math"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDemoCopyIsIdentical(t *testing.T) {
	copyInTestdata, err := os.ReadFile("../testdata/demo/hotline.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(copyInTestdata, DemoTOML) {
		t.Fatal("testdata/demo/hotline.toml differs from config/demo/hotline.toml; copy one over the other")
	}
}

// The demo is what a new admin runs first; check it says what the README promises.
func TestDefaultIsTheDemo(t *testing.T) {
	c := Default()
	if c.Source != DemoSource {
		t.Errorf("Source = %q", c.Source)
	}
	if c.SIP.Listen != "127.0.0.1:5060" || !slices.Equal(c.SIP.Transports, []string{"udp", "tcp"}) || c.SIP.Realm != "hotline" {
		t.Errorf("SIP = %+v", c.SIP)
	}
	if c.RTP != (RTP{Address: "127.0.0.1", PortMin: 10000, PortMax: 20000, Timeout: Duration{30 * time.Second}, HoldTimeout: Duration{5 * time.Minute}}) {
		t.Errorf("RTP = %+v", c.RTP)
	}
	if c.Storage != (Storage{Database: "./var/hotline.db", Recordings: "./var/recordings"}) {
		t.Errorf("Storage = %+v", c.Storage)
	}

	trunk, ok := c.TrunkFor(netip.MustParseAddr("127.0.0.1"), "+15550100")
	if !ok || trunk.Name != "demo-carrier" || trunk.IVR != "main" || trunk.InbandDTMF {
		t.Errorf("TrunkFor(127.0.0.1, +15550100) = %+v, %v", trunk, ok)
	}

	for _, want := range []struct {
		id, password string
		skills       []string
	}{
		{"1001", "demo1001", []string{"sales"}},
		{"1002", "demo1002", []string{"support"}},
		{"1003", "demo1003", []string{"sales", "support"}},
	} {
		a := c.Agent(want.id)
		if a == nil || a.Password != want.password || !slices.Equal(a.Skills, want.skills) {
			t.Errorf("agent %s = %+v", want.id, a)
		}
	}
	if len(c.Agents) != 3 {
		t.Errorf("%d agents, want 3", len(c.Agents))
	}

	main := c.IVRs["main"]
	welcome := main.Nodes[main.Entry]
	if welcome.Type != NodePlay || !slices.Equal(welcome.Prompts, []string{"welcome"}) {
		t.Fatalf("entry node = %+v", welcome)
	}
	menu := main.Nodes[welcome.Next]
	if menu.Type != NodeMenu || menu.Prompt != "menu" || menu.Invalid != "invalid" ||
		menu.Timeout.Duration != 5*time.Second || menu.Tries != 3 {
		t.Fatalf("menu = %+v", menu)
	}
	for digit, queue := range map[string]string{"1": "sales", "2": "support"} {
		if n := main.Nodes[menu.Choices[digit]]; n == nil || n.Type != NodeQueue || n.Queue != queue {
			t.Errorf("choice %s goes to %+v, want queue %s", digit, n, queue)
		}
	}
	if bye := main.Nodes[menu.Fail]; bye.Type != NodePlay || !slices.Equal(bye.Prompts, []string{"goodbye"}) || bye.Next != "" {
		t.Errorf("fail node = %+v, want goodbye then hang up", bye)
	}

	for name, q := range c.Queues {
		want := Queue{Skill: name, RingTimeout: Duration{15 * time.Second}, MusicOnHold: "moh", Strategy: StrategyLongestIdle, Retry: Duration{5 * time.Second}}
		if *q != want {
			t.Errorf("queue %s = %+v", name, *q)
		}
	}
	if len(c.Queues) != 2 || c.Queues["sales"] == nil || c.Queues["support"] == nil {
		t.Errorf("queues = %v", c.Queues)
	}

	if got, want := c.PromptNames(), []string{"goodbye", "invalid", "menu", "moh", "welcome"}; !slices.Equal(got, want) {
		t.Errorf("PromptNames = %v, want %v", got, want)
	}
}

// The embedded prompts are what the media package plays: 8 kHz mono 16-bit PCM,
// with sound in them, small enough to embed.
func TestDemoPrompts(t *testing.T) {
	prompts := Default().PromptFS()
	wantSeconds := map[string][2]float64{ // plausible lengths for the spoken text
		"welcome": {1, 4}, "menu": {2.5, 7}, "invalid": {1.5, 5}, "goodbye": {0.5, 3}, "moh": {8, 10},
	}
	total := 0
	for name, limits := range wantSeconds {
		data, err := fs.ReadFile(prompts, name+".wav")
		if err != nil {
			t.Fatal(err)
		}
		total += len(data)
		samples, err := pcm8kMono16(data)
		if err != nil {
			t.Errorf("%s.wav: %v", name, err)
			continue
		}
		if seconds := float64(len(samples)) / 8000; seconds < limits[0] || seconds > limits[1] {
			t.Errorf("%s.wav lasts %.2f s, want %v-%v s", name, seconds, limits[0], limits[1])
		}
		var sum float64
		for _, s := range samples {
			sum += float64(s) * float64(s)
		}
		rms := math.Sqrt(sum/float64(len(samples))) / 32768
		if rms < 0.01 {
			t.Errorf("%s.wav is nearly silent (RMS %.4f of full scale)", name, rms)
		}
		if name == "moh" && rms > 0.1 {
			t.Errorf("moh.wav RMS %.3f of full scale; music on hold should be quiet", rms)
		}
	}
	if total > 500_000 {
		t.Errorf("embedded prompts take %d bytes, want under 500 KB", total)
	}
}

// pcm8kMono16 returns the samples of a WAV file that is 8 kHz mono 16-bit PCM.
func pcm8kMono16(data []byte) ([]int16, error) {
	if len(data) < 12 || string(data[0:4]) != "RIFF" || string(data[8:12]) != "WAVE" {
		return nil, errorString("not a RIFF/WAVE file")
	}
	var fmtOK bool
	for rest := data[12:]; len(rest) >= 8; {
		id, size := string(rest[0:4]), int(binary.LittleEndian.Uint32(rest[4:8]))
		if size > len(rest)-8 {
			return nil, errorString("chunk " + id + " runs past the end")
		}
		body := rest[8 : 8+size]
		switch id {
		case "fmt ":
			format, channels := binary.LittleEndian.Uint16(body[0:2]), binary.LittleEndian.Uint16(body[2:4])
			rate, bits := binary.LittleEndian.Uint32(body[4:8]), binary.LittleEndian.Uint16(body[14:16])
			if format != 1 || channels != 1 || rate != 8000 || bits != 16 {
				return nil, errorString("not 8 kHz mono 16-bit PCM")
			}
			fmtOK = true
		case "data":
			if !fmtOK {
				return nil, errorString("data before fmt")
			}
			samples := make([]int16, size/2)
			for i := range samples {
				samples[i] = int16(binary.LittleEndian.Uint16(body[2*i:]))
			}
			return samples, nil
		}
		rest = rest[8+size+size%2:]
	}
	return nil, errorString("no data chunk")
}

type errorString string

func (e errorString) Error() string { return string(e) }

// A file with only what is required gets every documented default.
func TestDefaults(t *testing.T) {
	src := `
[[trunk]]
name = "t"
addresses = ["192.0.2.0/24"]
dids = ["100"]
ivr = "i"

[ivr.i]
entry = "m"
[ivr.i.node.m]
type = "menu"
prompt = "menu"
choices = { "#" = "q" }
[ivr.i.node.q]
type = "queue"
queue = "q"

[queue.q]
skill = "s"
`
	c, err := Parse("d.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	wantSIP := SIP{Listen: "127.0.0.1:5060", Transports: []string{"udp", "tcp"}, Realm: "hotline", UserAgent: "hotline", DigestAlgorithms: []string{"MD5"},
		TCPIdleTimeout: Duration{5 * time.Minute}, TCPMaxPerSource: 32, QualifyInterval: Duration{30 * time.Second}, MinExpires: 60, MaxExpires: 3600}
	if !reflect.DeepEqual(c.SIP, wantSIP) {
		t.Errorf("SIP = %+v", c.SIP)
	}
	if c.RTP != (RTP{Address: "127.0.0.1", PortMin: 10000, PortMax: 20000, Timeout: Duration{30 * time.Second}, HoldTimeout: Duration{5 * time.Minute}}) {
		t.Errorf("RTP = %+v", c.RTP)
	}
	if c.ACD != (ACD{BusyBackoff: Duration{30 * time.Second}, MaxNoAnswer: 3}) {
		t.Errorf("ACD = %+v", c.ACD)
	}
	if c.Trunks[0].InbandDTMF {
		t.Error("inband_dtmf is on by default, want off")
	}
	if m := c.IVRs["i"].Nodes["m"]; m.Timeout.Duration != 5*time.Second || m.Tries != 3 {
		t.Errorf("menu defaults = %v, %d tries", m.Timeout, m.Tries)
	}
	if q := *c.Queues["q"]; q != (Queue{Skill: "s", RingTimeout: Duration{15 * time.Second}, MusicOnHold: "moh", Strategy: "longest-idle", Retry: Duration{5 * time.Second}}) {
		t.Errorf("queue defaults = %+v", q)
	}

	c, err = Parse("d.toml", []byte(strings.Replace(src, `ivr = "i"`, "ivr = \"i\"\ninband_dtmf = true", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Trunks[0].InbandDTMF {
		t.Error("inband_dtmf = true reads back as false")
	}

	// Behind 1:1 NAT, media is advertised at the public IP signalling names.
	c, err = Parse("d.toml", []byte("[sip]\nlisten = \"0.0.0.0:5060\"\nadvertise = \"203.0.113.7:5070\"\n"+src))
	if err != nil {
		t.Fatal(err)
	}
	if c.RTP.Address != "0.0.0.0" || c.RTP.Advertise != "203.0.113.7" {
		t.Errorf("behind NAT: rtp address %q advertise %q, want 0.0.0.0 and 203.0.113.7", c.RTP.Address, c.RTP.Advertise)
	}

	// RTP follows sip.listen: serving the LAN is a one-line change.
	c, err = Parse("d.toml", []byte("[sip]\nlisten = \"192.168.1.10:5060\"\n"+src))
	if err != nil {
		t.Fatal(err)
	}
	if c.RTP.Address != "192.168.1.10" {
		t.Errorf("RTP address = %q, want the listen IP", c.RTP.Address)
	}
}

func TestTrunkFor(t *testing.T) {
	c := &Config{Trunks: []Trunk{
		{Name: "a", Addresses: []string{"192.0.2.7"}, DIDs: []string{"100", "101"}},
		{Name: "b", Addresses: []string{"198.51.100.0/24", "2001:db8::/32"}, DIDs: []string{"100"}},
	}}
	tests := []struct {
		ip, did, want string
	}{
		{"192.0.2.7", "101", "a"},
		{"192.0.2.7", "100", "a"},
		{"198.51.100.200", "100", "b"},
		{"::ffff:198.51.100.9", "100", "b"}, // IPv4 peer seen on a dual-stack socket
		{"2001:db8::5", "100", "b"},
		{"198.51.100.200", "101", ""}, // right carrier, number it does not deliver
		{"192.0.2.8", "100", ""},      // number known, address not allowed
		{"203.0.113.1", "999", ""},
	}
	for _, tt := range tests {
		trunk, ok := c.TrunkFor(netip.MustParseAddr(tt.ip), tt.did)
		got := ""
		if ok {
			got = trunk.Name
		}
		if got != tt.want {
			t.Errorf("TrunkFor(%s, %s) = %q, want %q", tt.ip, tt.did, got, tt.want)
		}
	}
}

func TestAgentNotFound(t *testing.T) {
	if a := Default().Agent("9999"); a != nil {
		t.Errorf("Agent(9999) = %+v", a)
	}
}

func TestProblemError(t *testing.T) {
	ps := Problems{
		{File: "h.toml", Line: 3, Col: 7, Msg: "one"},
		{File: "h.toml", Line: 4, Msg: "two"},
		{File: "h.toml", Msg: "three"},
	}
	if got, want := ps.Error(), "h.toml:3:7: one\nh.toml:4: two\nh.toml: three"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestDurationText(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("1m30s")); err != nil || d.Duration != 90*time.Second {
		t.Errorf("1m30s -> %v, %v", d, err)
	}
	if err := d.UnmarshalText([]byte("15")); err == nil {
		t.Error("15 without a unit was accepted")
	}
	if text, _ := (Duration{1500 * time.Millisecond}).MarshalText(); string(text) != "1.5s" {
		t.Errorf("MarshalText = %s", text)
	}
}

// Parsing happens at start and on reload, never per call; this shows its cost.
func BenchmarkParseDemo(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("demo.toml", DemoTOML); err != nil {
			b.Fatal(err)
		}
	}
}
