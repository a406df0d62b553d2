package config

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// base is a small valid config. Line numbers matter: the cases below replace
// whole lines and expect problems at the line and column counted by hand.
const base = `[sip]
listen = "127.0.0.1:5060"

[[trunk]]
name = "carrier"
addresses = ["127.0.0.1"]
dids = ["+15550100"]
ivr = "main"

[[agent]]
id = "1001"
password = "secret"
skills = ["sales"]

[ivr.main]
entry = "welcome"

[ivr.main.node.welcome]
type = "play"
prompts = ["welcome"]
next = "menu"

[ivr.main.node.menu]
type = "menu"
prompt = "menu"
invalid = "invalid"
fail = "goodbye"
choices = { "1" = "to-sales" }

[ivr.main.node.to-sales]
type = "queue"
queue = "sales"

[ivr.main.node.goodbye]
type = "play"
prompts = ["goodbye"]

[queue.sales]
skill = "sales"
ring_timeout = "15s"
`

// edit returns base with each old line replaced by its new text.
func edit(t *testing.T, pairs ...string) string {
	t.Helper()
	src := base
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(src, pairs[i]) {
			t.Fatalf("base has no %q", pairs[i])
		}
		src = strings.Replace(src, pairs[i], pairs[i+1], 1)
	}
	return src
}

func TestBaseIsValid(t *testing.T) {
	if _, err := Parse("t.toml", []byte(base)); err != nil {
		t.Fatalf("base config: %v", err)
	}
}

func TestProblems(t *testing.T) {
	missingDir := filepath.Join(t.TempDir(), "nowhere")
	tests := []struct {
		name string
		src  string
		want []string // every problem, in order
	}{
		{
			name: "unknown key, as the brief writes it",
			src:  edit(t, `ring_timeout = "15s"`, `  ring_timout = "15s"`),
			want: []string{`t.toml:40:3: unknown key "ring_timout" in [queue.sales]; expected one of: skill, ring_timeout, music_on_hold, strategy, retry`},
		},
		{
			name: "unknown key in an array of tables",
			src:  edit(t, `name = "carrier"`, `nmae = "carrier"`),
			want: []string{
				`t.toml:4:1: trunk #1: name is empty; expected a name like "my-carrier"`,
				`t.toml:5:1: unknown key "nmae" in [[trunk]]; expected one of: name, addresses, dids, ivr, inband_dtmf`,
			},
		},
		{
			name: "unknown top-level table",
			src:  base + "[queues.x]\nskill = \"a\"\n",
			want: []string{`t.toml:41:1: unknown table "queues" at the top level; expected one of: sip, rtp, storage, prompts, acd, trunk, agent, ivr, queue`},
		},
		{
			name: "listening on every address needs an advertised address",
			src:  edit(t, `listen = "127.0.0.1:5060"`, `listen = "0.0.0.0:5060"`),
			want: []string{
				`t.toml:2:1: sip: listen "0.0.0.0:5060" is every address, which phones cannot be told to send to; expected advertise = "PUBLIC-IP" under [sip] as well, or listen on one address`,
			},
		},
		{
			name: "every address with an advertised one is fine, and media follows it",
			src:  edit(t, `listen = "127.0.0.1:5060"`, "listen = \"0.0.0.0:5060\"\nadvertise = \"203.0.113.7\"\n[acd]\nbusy_backoff = \"-1s\""),
			want: []string{`t.toml:5:1: acd: busy_backoff -1s is negative; expected a duration like "30s"`},
		},
		{
			name: "bad advertised address and expiry bounds",
			src:  edit(t, `listen = "127.0.0.1:5060"`, "listen = \"127.0.0.1:5060\"\nadvertise = \"cloud\"\nmin_expires = 600\nmax_expires = 300"),
			want: []string{
				`t.toml:3:1: sip: advertise "cloud": expected the public IP address, optionally with a port, like "203.0.113.7" or "203.0.113.7:5060"`,
				`t.toml:5:1: sip: max_expires 300 is below min_expires 600; expected seconds like 3600`,
			},
		},
		{
			name: "media on every address needs an advertised address",
			src:  edit(t, `listen = "127.0.0.1:5060"`, "listen = \"127.0.0.1:5060\"\n[rtp]\naddress = \"0.0.0.0\""),
			want: []string{`t.toml:4:1: rtp: address "0.0.0.0" is every address, which cannot go into SDP; expected advertise = "PUBLIC-IP" under [rtp] as well, or one address`},
		},
		{
			name: "negative retry",
			src:  edit(t, `ring_timeout = "15s"`, `retry = "-5s"`),
			want: []string{`t.toml:40:1: queue "sales": retry -5s is negative; expected a duration like "5s"`},
		},
		{
			name: "a dotted key makes a table where a string belongs",
			src:  edit(t, `fail = "goodbye"`, `fail.node = "goodbye"`),
			want: []string{`t.toml:27:1: ivr "main" node "menu": fail: expected a string, found a table`},
		},
		{
			name: "unknown strategy",
			src:  edit(t, `ring_timeout = "15s"`, `strategy = "longst-idle"`),
			want: []string{`t.toml:40:1: queue "sales": strategy "longst-idle" is not known; expected "longest-idle"`},
		},
		{
			name: "bad duration",
			src:  edit(t, `ring_timeout = "15s"`, `ring_timeout = "15x"`),
			want: []string{`t.toml:40:1: queue "sales": ring_timeout "15x": expected a duration like "15s"`},
		},
		{
			name: "duration written as a number",
			src:  edit(t, `ring_timeout = "15s"`, `ring_timeout = 15`),
			want: []string{`t.toml:40:1: queue "sales": ring_timeout: expected a duration like "15s", found an integer (15)`},
		},
		{
			name: "wrong type is reported once, not again as empty",
			src:  edit(t, `skill = "sales"`, `skill = 5`),
			want: []string{`t.toml:39:1: queue "sales": skill: expected a string, found an integer (5)`},
		},
		{
			name: "wrong type in an array",
			src:  edit(t, `dids = ["+15550100"]`, `dids = ["+15550100", 15550101]`),
			want: []string{`t.toml:7:22: trunk "carrier": dids[1]: expected a string, found an integer (15550101)`},
		},
		{
			name: "inband_dtmf is a boolean",
			src:  edit(t, `ivr = "main"`, `ivr = "main"`+"\n"+`inband_dtmf = "yes"`),
			want: []string{`t.toml:9:1: trunk "carrier": inband_dtmf: expected true or false, found a string ("yes")`},
		},
		{
			name: "choice goes to a missing node",
			src:  edit(t, `choices = { "1" = "to-sales" }`, `choices = { "1" = "to-sles" }`),
			want: []string{`t.toml:28:13: ivr "main" node "menu": choice "1" goes to node "to-sles", which does not exist; expected one of: "goodbye", "menu", "to-sales", "welcome"`},
		},
		{
			name: "choice is not a single key",
			src:  edit(t, `choices = { "1" = "to-sales" }`, `choices = { "1" = "to-sales", "10" = "to-sales" }`),
			want: []string{`t.toml:28:31: ivr "main" node "menu": choice "10" is not a single key; expected one of 0-9, * or #`},
		},
		{
			name: "menu without choices",
			src:  edit(t, `choices = { "1" = "to-sales" }`, `tries = -1`),
			want: []string{
				`t.toml:23:1: ivr "main" node "menu": choices is empty; expected digits and the nodes they go to, like choices = { "1" = "sales" }`,
				`t.toml:28:1: ivr "main" node "menu": tries -1 is negative; expected 1 or more`,
			},
		},
		{
			name: "TOML syntax error",
			src:  edit(t, `listen = "127.0.0.1:5060"`, `listen = "127.0.0.1:5060`),
			want: []string{`t.toml:2:25: invalid TOML: strings cannot contain newlines`},
		},
		{
			name: "listen is not IP:port",
			src:  edit(t, `listen = "127.0.0.1:5060"`, `listen = "localhost:5060"`),
			want: []string{`t.toml:2:1: sip: listen "localhost:5060": expected an IP address and port like "127.0.0.1:5060" or "[::1]:5060"`},
		},
		{
			name: "unknown transport",
			src:  edit(t, `listen = "127.0.0.1:5060"`, `transports = ["udp", "tls"]`),
			want: []string{`t.toml:2:22: sip: transport "tls" is not known; expected one of: "udp", "tcp"`},
		},
		{
			name: "unknown digest algorithm",
			src:  edit(t, `listen = "127.0.0.1:5060"`, `digest_algorithms = ["MD5", "SHA-1"]`),
			want: []string{`t.toml:2:29: sip: digest algorithm "SHA-1" is not known; expected one of: "SHA-256", "MD5"`},
		},
		{
			name: "odd RTP port",
			src:  edit(t, "[sip]\nlisten = \"127.0.0.1:5060\"", "[rtp]\nport_min = 10001"),
			want: []string{`t.toml:2:1: rtp: port_min 10001 is odd; expected an even port (RTP takes the even port of each pair, RTCP the odd one above it)`},
		},
		{
			name: "RTP range upside down, placed at the table when the key is absent",
			src:  edit(t, "[sip]\nlisten = \"127.0.0.1:5060\"", "[rtp]\nport_min = 30000"),
			want: []string{`t.toml:1:1: rtp: port_max 20000 is not above port_min 30000; expected a range like 10000 to 20000`},
		},
		{
			name: "RTP address",
			src:  edit(t, "[sip]\nlisten = \"127.0.0.1:5060\"", "[rtp]\naddress = \"media.example\""),
			want: []string{`t.toml:2:1: rtp: address "media.example": expected an IP address like "127.0.0.1"`},
		},
		{
			name: "trunk IVR does not exist",
			src:  edit(t, `ivr = "main"`, `ivr = "mian"`),
			want: []string{`t.toml:8:1: trunk "carrier": ivr "mian" does not exist; expected one of: "main"`},
		},
		{
			name: "trunk without DIDs and a bad address",
			src:  edit(t, `dids = ["+15550100"]`, `dids = []`, `addresses = ["127.0.0.1"]`, `addresses = ["127.0.0.1", "10.0.0.0/33"]`),
			want: []string{
				`t.toml:6:27: trunk "carrier": address "10.0.0.0/33": expected an IP address like "203.0.113.5" or a network like "198.51.100.0/24"`,
				`t.toml:7:1: trunk "carrier": dids is empty; expected the numbers the carrier delivers, like ["+15550100"]`,
			},
		},
		{
			name: "agent defined twice",
			src:  base + "[[agent]]\nid = \"1001\"\npassword = \"x\"\n",
			want: []string{`t.toml:42:1: agent "1001" is defined twice (first at line 10)`},
		},
		{
			name: "agent password empty and id missing",
			src:  edit(t, `password = "secret"`, `password = ""`, `id = "1001"`, `name = "Alice"`),
			want: []string{
				`t.toml:10:1: agent #1: id is empty; expected the user name its phone registers with, like "1001"`,
				`t.toml:12:1: agent #1: password is empty; expected the secret its phone registers with`,
			},
		},
		{
			name: "IVR entry does not exist",
			src:  edit(t, `entry = "welcome"`, `entry = "welcom"`),
			want: []string{`t.toml:16:1: ivr "main": entry "welcom" does not exist; expected one of: "goodbye", "menu", "to-sales", "welcome"`},
		},
		{
			name: "unknown node type",
			src:  edit(t, `type = "play"`, `type = "plya"`),
			want: []string{`t.toml:19:1: ivr "main" node "welcome": type "plya" is not known; expected one of: "play", "menu", "queue", "hangup"`},
		},
		{
			name: "key that the node type does not use",
			src:  edit(t, `next = "menu"`, `queue = "sales"`),
			want: []string{`t.toml:21:1: ivr "main" node "welcome": queue is not used by a play node; expected only: type, prompts, next`},
		},
		{
			name: "queue node names a missing queue",
			src:  edit(t, `queue = "sales"`, `queue = "sles"`),
			want: []string{`t.toml:32:1: ivr "main" node "to-sales": queue "sles" does not exist; expected one of: "sales"`},
		},
		{
			name: "play nodes that loop forever",
			src:  edit(t, `prompts = ["goodbye"]`, `prompts = ["goodbye"]`+"\n"+`next = "goodbye"`),
			want: []string{`t.toml:37:1: ivr "main": play nodes goodbye -> goodbye loop forever without asking the caller anything; expected a menu, queue or hangup node in the loop`},
		},
		{
			name: "queue without a skill",
			src:  edit(t, `skill = "sales"`, `skill = ""`),
			want: []string{`t.toml:39:1: queue "sales": skill is empty; expected the skill agents need to take its calls, like "sales"`},
		},
		{
			name: "prompt that does not exist",
			src:  edit(t, `prompts = ["welcome"]`, `prompts = ["welcom"]`),
			want: []string{`t.toml:20:12: ivr "main" node "welcome": prompt "welcom" not found; expected welcom.wav in the embedded demo prompts`},
		},
		{
			name: "prompt written with .wav",
			src:  edit(t, `prompt = "menu"`, `prompt = "menu.wav"`),
			want: []string{`t.toml:25:1: ivr "main" node "menu": prompt "menu.wav": expected the name without .wav, like "menu"`},
		},
		{
			name: "music on hold that does not exist",
			src:  base + "music_on_hold = \"jazz\"\n",
			want: []string{`t.toml:41:1: queue "sales": prompt "jazz" not found; expected jazz.wav in the embedded demo prompts`},
		},
		{
			name: "prompts directory missing",
			src:  base + "[prompts]\ndir = \"" + missingDir + "\"\n",
			want: []string{`t.toml:42:1: prompts: dir "` + missingDir + `" is not a readable directory; expected a directory of NAME.wav files`},
		},
		{
			name: "every problem at once, in file order",
			src: edit(t,
				`ring_timeout = "15s"`, `ring_timeout = "15x"`,
				`ivr = "main"`, `ivr = "mian"`,
				`entry = "welcome"`, `entry = "welcom"`,
				`name = "carrier"`, `nmae = "carrier"`,
			),
			want: []string{
				`t.toml:4:1: trunk #1: name is empty; expected a name like "my-carrier"`,
				`t.toml:5:1: unknown key "nmae" in [[trunk]]; expected one of: name, addresses, dids, ivr, inband_dtmf`,
				`t.toml:8:1: trunk #1: ivr "mian" does not exist; expected one of: "main"`,
				`t.toml:16:1: ivr "main": entry "welcom" does not exist; expected one of: "goodbye", "menu", "to-sales", "welcome"`,
				`t.toml:40:1: queue "sales": ring_timeout "15x": expected a duration like "15s"`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.toml", []byte(tt.src))
			if err == nil {
				t.Fatalf("Parse accepted:\n%s", tt.src)
			}
			if c != nil {
				t.Errorf("Parse returned a config along with problems")
			}
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("error is %T, not Problems: %v", err, err)
			}
			got := strings.Split(err.Error(), "\n")
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("problems:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(tt.want, "\n      "))
			}
		})
	}
}

// A prompt directory of the admin's own: present prompts pass, a missing one is
// named with the directory it was looked for in.
func TestPromptDirectory(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"welcome", "menu", "invalid", "goodbye"} {
		writePrompt(t, dir, name, wavHeader(1, 1, 8000, 16))
	}
	src := base + "[prompts]\ndir = \"" + dir + "\"\n"
	_, err := Parse("t.toml", []byte(src))
	want := `t.toml:38:1: queue "sales": prompt "moh" not found; expected moh.wav in prompts dir "` + dir + `"`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}

	writePrompt(t, dir, "moh", wavHeader(1, 2, 44100, 16)) // converted at load
	c, err := Parse("t.toml", []byte(src))
	if err != nil {
		t.Fatalf("with moh.wav added: %v", err)
	}
	if _, err := c.PromptFS().Open("moh.wav"); err != nil {
		t.Errorf("PromptFS does not serve the directory: %v", err)
	}
}

// A prompt the daemon could not play is a problem at the key that names it,
// saying what the file holds and what is expected.
func TestPromptFormatProblems(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"welcome", "invalid", "goodbye", "moh"} {
		writePrompt(t, dir, name, wavHeader(7, 1, 8000, 8))
	}
	src := base + "[prompts]\ndir = \"" + dir + "\"\n"
	const expected = "expected 8/16-bit PCM, µ-law or A-law, mono or stereo, 8000-48000 Hz"
	for _, tt := range []struct {
		file []byte
		want string
	}{
		{wavHeader(1, 1, 96000, 24), `t.toml:25:1: ivr "main" node "menu": prompt "menu" (menu.wav): 24-bit PCM mono at 96000 Hz is not supported; ` + expected},
		{wavHeader(3, 2, 48000, 32), `t.toml:25:1: ivr "main" node "menu": prompt "menu" (menu.wav): 32-bit floating point stereo at 48000 Hz is not supported; ` + expected},
		{[]byte("ID3\x04 an mp3 renamed"), `t.toml:25:1: ivr "main" node "menu": prompt "menu" (menu.wav): not a RIFF/WAVE file; expected a WAV file`},
		{wavHeader(1, 1, 8000, 16)[:36], `t.toml:25:1: ivr "main" node "menu": prompt "menu" (menu.wav): no "data" chunk`},
	} {
		writePrompt(t, dir, "menu", tt.file)
		_, err := Parse("t.toml", []byte(src))
		if err == nil || err.Error() != tt.want {
			t.Errorf("got %v\nwant %s", err, tt.want)
		}
	}
}

// wavHeader is a WAV file whose data chunk holds one silent frame.
func wavHeader(tag, channels uint16, rate uint32, bits uint16) []byte {
	frame := int(channels) * int(bits) / 8
	b := []byte("RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00")
	b = binary.LittleEndian.AppendUint16(b, tag)
	b = binary.LittleEndian.AppendUint16(b, channels)
	b = binary.LittleEndian.AppendUint32(b, rate)
	b = binary.LittleEndian.AppendUint32(b, rate*uint32(frame))
	b = binary.LittleEndian.AppendUint16(b, uint16(frame))
	b = binary.LittleEndian.AppendUint16(b, bits)
	b = append(b, "data"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(frame))
	b = append(b, make([]byte, frame)...)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)-8))
	return b
}

func writePrompt(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name+".wav"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hotline.toml")
	if err := os.WriteFile(path, []byte(edit(t, `entry = "welcome"`, `entry = "x"`)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+":16:1: ") {
		t.Errorf("Load problem does not name the file and line: %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.toml")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want an os.ErrNotExist error", err)
	}
}
