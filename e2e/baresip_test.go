package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// baresipModuleDirs are where Debian (and a source install) put baresip's modules.
var baresipModuleDirs = []string{
	"/usr/lib/baresip/modules",
	"/usr/lib/x86_64-linux-gnu/baresip/modules",
	"/usr/lib/aarch64-linux-gnu/baresip/modules",
	"/usr/local/lib/baresip/modules",
}

// baresipModules are the modules the agent's softphone needs. baresip-core ships
// them all; nothing here opens a sound device or talks to the network beyond SIP
// and RTP on loopback (no stun, turn, ice, dns lookups).
var baresipModules = []string{
	"g711.so",     // PCMA and PCMU
	"aufile.so",   // audio source: a WAV file (the agent's 1000 Hz tone)
	"aubridge.so", // audio player that needs no device
	"sndfile.so",  // audio filter: dumps what is sent (-enc) and received (-dec) to WAV
	"account.so",  // reads the accounts file
}

// findBaresipModules returns the first module directory holding every module.
func findBaresipModules() (string, error) {
	for _, dir := range baresipModuleDirs {
		ok := true
		for _, m := range baresipModules {
			if _, err := os.Stat(filepath.Join(dir, m)); err != nil {
				ok = false
				break
			}
		}
		if ok {
			return dir, nil
		}
	}
	return "", fmt.Errorf("no directory of %v has all of %v (Debian package baresip-core)", baresipModuleDirs, baresipModules)
}

// baresipAgent is a headless baresip registered as an agent, answering every call
// at once, sending a tone and dumping what it hears to DumpDir.
type baresipAgent struct {
	proc    *process
	DumpDir string
}

type baresipSetup struct {
	Dir        string // config directory (-f), dump directory inside it
	ModuleDir  string
	SIPPort    int // baresip also listens on SIPPort+1 (TCP); pick both free
	RTPMin     int
	RTPMax     int
	User       string
	Password   string
	Registrar  string // host:port
	Tone       string // 8 kHz mono 16-bit WAV to send
	RunSeconds int    // baresip -t: it quits on its own after this
}

// startBaresip writes baresip's config and accounts files and starts it.
func startBaresip(t *testing.T, ctx context.Context, s baresipSetup) *baresipAgent {
	t.Helper()
	dump := filepath.Join(s.Dir, "dump")
	if err := os.MkdirAll(dump, 0o755); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`# baresip for the hotline end-to-end test: headless, loopback only.
poll_method		epoll
sip_listen		127.0.0.1:%d
net_interface		127.0.0.1
call_local_timeout	60
call_max_calls		4
audio_player		aubridge,e2e
audio_alert		aubridge,e2e
audio_source		aufile,%s
ausrc_srate		8000
auplay_srate		8000
ausrc_channels		1
auplay_channels		1
rtp_ports		%d-%d
dns_server		127.0.0.1:53	# nothing here needs DNS; if anything asks, it stays on loopback
rtcp_mux		no
jitter_buffer_delay	1-10
module_path		%s
module			g711.so
module			sndfile.so
module			aufile.so
module			aubridge.so
module_tmp		account.so
snd_path		%s
`, s.SIPPort, s.Tone, s.RTPMin, s.RTPMax, s.ModuleDir, dump)
	// answermode=auto: answer every incoming call at once. PCMA first: what the
	// carrier offers, so the daemon need not transcode.
	account := fmt.Sprintf("<sip:%s@%s;transport=udp>;auth_pass=%s;answermode=auto;regint=60;audio_codecs=PCMA,PCMU\n",
		s.User, s.Registrar, s.Password)
	for name, body := range map[string]string{"config": config, "accounts": account, "contacts": ""} {
		if err := os.WriteFile(filepath.Join(s.Dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	proc := startProcess(t, ctx, "baresip", s.Dir, filepath.Join(s.Dir, "baresip.log"),
		"baresip", "-f", s.Dir, "-t", strconv.Itoa(s.RunSeconds))
	return &baresipAgent{proc: proc, DumpDir: dump}
}

// waitRegistered waits for baresip to print its successful REGISTER: a line like
// "1001@127.0.0.1: {0/UDP/v4} 200 OK () [1 binding]".
func (b *baresipAgent) waitRegistered(ctx context.Context) (time.Time, error) {
	// A failure reads "reg: sip:1001@...: Register: Function not implemented"
	// (colour codes in front) or "reg: sip:...: 403 Forbidden".
	return b.proc.waitForLine(ctx, "} 200 ", "reg: sip:")
}

// receivedDumps returns the -dec.wav files sndfile wrote: audio baresip received
// and decoded, one file per call.
func (b *baresipAgent) receivedDumps() ([]string, error) {
	return filepath.Glob(filepath.Join(b.DumpDir, "dump-*-dec.wav"))
}

// makeTone writes seconds of a freq Hz sine at half scale, 8 kHz mono 16-bit, with sox.
func makeTone(ctx context.Context, path string, freq, seconds int) error {
	cmd := exec.CommandContext(ctx, "sox", "-n", "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer",
		path, "synth", strconv.Itoa(seconds), "sine", strconv.Itoa(freq), "vol", "0.5")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("sox: %w: %s", err, out)
	}
	return nil
}
