package e2e

import (
	"context"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/hotline-pbx/hotline/media"
	hsip "github.com/hotline-pbx/hotline/sip"
	"github.com/hotline-pbx/hotline/sip/siptest"
)

// The lifecycle tests run the built daemon and restart or stop it under a
// call. Each test has a slot: its own loopback addresses and ports, so they
// never meet each other or another engineer's run.
const (
	lifecycleDID      = "+15550900"
	lifecycleAgent    = "1001"
	lifecyclePassword = "lifecycle-1001"
	// heardSamples is how much audio a side must receive before its last
	// second is checked (the first half second may still be music on hold).
	heardSamples = 12000
)

// lifecycleConfig is a daemon that puts trunk calls straight into the sales
// queue, with agent 1001 in it. The queue retries soon after a failed ring
// and phones are qualified every second, so the tests count events instead
// of waiting out the defaults.
const lifecycleConfig = `# Written by e2e/lifecycle_helpers_test.go.
[sip]
listen = %[1]q
transports = ["udp"]
qualify_interval = "1s"

[rtp]
address = %[2]q
port_min = %[3]d
port_max = %[4]d

[storage]
database = %[5]q
recordings = %[6]q

[[trunk]]
name = "carrier"
addresses = [%[7]q]
dids = [%[8]q]
ivr = "straight"

[[agent]]
id = %[9]q
password = %[10]q
skills = ["sales"]

[ivr.straight]
entry = "sales"

[ivr.straight.node.sales]
type = "queue"
queue = "sales"

[queue.sales]
skill = "sales"
ring_timeout = "10s"
retry = "200ms"
`

// lifecycleRig is one daemon under test, its files and its two peers' addresses.
type lifecycleRig struct {
	t          *testing.T
	ctx        context.Context
	bin, dir   string
	cfgPath    string
	recordings string
	sip        netip.AddrPort
	agentIP    string
	carrierIP  string
	agentRTP   int // the phones' RTP ranges: 100 ports each
	carrierRTP int
	runs       int
}

// newLifecycleRig builds the daemon and writes the config of slot (0..5):
// daemon 127.0.9.(10*slot+1), SIP port 35000+slot, RTP 35100+100*slot up;
// agent and carrier on the two addresses above, RTP from 35700+200*slot.
// Everything the test does is bounded by three minutes.
func newLifecycleRig(t *testing.T, slot int) *lifecycleRig {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r := &lifecycleRig{
		t: t, ctx: ctx, dir: dir, bin: buildDaemon(t, ctx, root, dir),
		cfgPath:    filepath.Join(dir, "hotline.toml"),
		recordings: filepath.Join(dir, "recordings"),
		sip:        netip.AddrPortFrom(netip.MustParseAddr(fmt.Sprintf("127.0.9.%d", 10*slot+1)), uint16(35000+slot)),
		agentIP:    fmt.Sprintf("127.0.9.%d", 10*slot+2),
		carrierIP:  fmt.Sprintf("127.0.9.%d", 10*slot+3),
		agentRTP:   35700 + 200*slot,
		carrierRTP: 35800 + 200*slot,
	}
	rtpMin := 35100 + 100*slot
	cfg := fmt.Sprintf(lifecycleConfig, r.sip.String(), r.sip.Addr().String(), rtpMin, rtpMin+98,
		filepath.Join(dir, "hotline.db"), r.recordings, r.carrierIP, lifecycleDID, lifecycleAgent, lifecyclePassword)
	if err := os.WriteFile(r.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return r
}

// start runs `hotline run -c FILE [extra...]` and waits until it serves.
func (r *lifecycleRig) start(extra ...string) *process {
	r.t.Helper()
	r.runs++
	argv := append([]string{r.bin, "run", "-c", r.cfgPath}, extra...)
	d := startProcess(r.t, r.ctx, "hotline", r.dir, filepath.Join(r.dir, fmt.Sprintf("hotline-%d.log", r.runs)), argv...)
	r.waitLine(d, `msg="hotline running"`)
	return d
}

// waitLine waits up to 20 s for a line of the daemon's log.
func (r *lifecycleRig) waitLine(d *process, want string) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(r.ctx, 20*time.Second)
	defer cancel()
	if _, err := d.waitForLine(ctx, want); err != nil {
		r.t.Fatal(err)
	}
}

// agent registers a phone for agent 1001 that answers every call.
func (r *lifecycleRig) agent() *siptest.Phone {
	r.t.Helper()
	phone := siptest.NewPhone(r.t, r.agentIP, lifecycleAgent, r.agentRTP, siptest.Answer)
	res, err := phone.Register(r.ctx, r.sip, lifecyclePassword)
	if err != nil || res.StatusCode != 200 {
		r.t.Fatalf("agent REGISTER: %v %v", res, err)
	}
	return phone
}

// talkingCall is a carrier call that reached the agent, both sides sending a tone.
type talkingCall struct {
	caller, agent *siptest.Call
}

// scene is a running daemon with the agent's phone registered and a
// carrier call connected to it.
type scene struct {
	daemon         *process
	agent, carrier *siptest.Phone
	call           talkingCall
}

// startWithCall starts the daemon (run flags extra), registers the agent's
// phone and connects a carrier call to it.
func (r *lifecycleRig) startWithCall(extra ...string) scene {
	r.t.Helper()
	s := scene{daemon: r.start(extra...), agent: r.agent()}
	s.carrier = siptest.NewPhone(r.t, r.carrierIP, "+15550999", r.carrierRTP, siptest.Busy)
	s.call = r.callAgent(s.carrier, s.agent)
	return s
}

// endedAtShutdown checks what a stop that ends s's call shows: both phones
// get a BYE, the daemon exits 0 and the record says the system ended the
// call at shutdown.
func (r *lifecycleRig) endedAtShutdown(s scene) {
	r.t.Helper()
	waitHungUp(r.t, "caller", s.call.caller)
	waitHungUp(r.t, "agent", s.call.agent)
	if code := exitStatus(r.t, s.daemon, 30*time.Second); code != 0 {
		r.t.Errorf("the daemon exited with status %d, want 0", code)
	}
	checkSystemEnd(r.t, r.recordOf(s.call.caller.ID(), "closed", closedRecord), "shutdown")
}

// callAgent places a carrier call and waits until agent's phone answered
// it; the caller then sends 440 Hz, the agent 1000 Hz.
func (r *lifecycleRig) callAgent(carrier, agent *siptest.Phone) talkingCall {
	r.t.Helper()
	caller := r.carrierCall(carrier)
	return talkingCall{caller: caller, agent: r.answeredBy(agent)}
}

// answeredBy waits for agent's phone to answer a call and starts the
// agent's tone on it.
func (r *lifecycleRig) answeredBy(agent *siptest.Phone) *siptest.Call {
	r.t.Helper()
	select {
	case answered := <-agent.Answered:
		answered.Leg.PlayLoop(media.NewPrompt("agent", media.Tone(agentToneHz, time.Second, 0.3)))
		return answered
	case <-time.After(20 * time.Second):
		r.t.Fatalf("the agent's phone answered no call (INVITEs received: %d)", agent.Invites.Load())
		return nil
	}
}

// carrierCall places a call to the DID (answered at once: the IVR queues
// it) and starts the caller's tone.
func (r *lifecycleRig) carrierCall(carrier *siptest.Phone) *siptest.Call {
	r.t.Helper()
	caller, err := carrier.Call(r.ctx, r.sip, lifecycleDID, media.PCMA)
	if err != nil {
		r.t.Fatalf("carrier call: %v", err)
	}
	caller.Leg.PlayLoop(media.NewPrompt("caller", media.Tone(callerToneHz, time.Second, 0.3)))
	return caller
}

// checkTalking checks that each side hears the other's tone, now.
func (r *lifecycleRig) checkTalking(c talkingCall, when string) {
	r.t.Helper()
	if f := r.heard(c.agent); f != callerToneHz {
		r.t.Errorf("%s: the agent heard %v Hz, want the caller's %d Hz", when, f, callerToneHz)
	}
	if f := r.heard(c.caller); f != agentToneHz {
		r.t.Errorf("%s: the caller heard %v Hz, want the agent's %d Hz", when, f, agentToneHz)
	}
}

// heard forgets what c received so far, waits for 1.5 s of new audio and
// returns the dominant tone of its last second (0: silence or noise).
func (r *lifecycleRig) heard(c *siptest.Call) float64 {
	r.t.Helper()
	c.Received.Reset()
	deadline := time.After(20 * time.Second)
	for {
		if pcm := c.Received.Samples(); len(pcm) >= heardSamples {
			return media.DominantFrequency(pcm[len(pcm)-8000:], callerToneHz, agentToneHz)
		}
		select {
		case <-deadline:
			r.t.Fatalf("received %d samples in 20 s: the call has no media", len(c.Received.Samples()))
		case <-c.Done():
			r.t.Fatal("the call ended while its audio was checked")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// records runs `hotline cdr --json` on the test's database.
func (r *lifecycleRig) records() []callRecord {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(r.ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.bin, "cdr", "--json", "-c", r.cfgPath, "--limit", "50")
	cmd.Dir = r.dir
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		r.t.Fatalf("hotline cdr --json: %v\n%s", err, stderr)
	}
	recs, err := decodeRecords(out)
	if err != nil {
		r.t.Fatalf("hotline cdr --json: %v\n%s", err, out)
	}
	return recs
}

// recordOf polls `hotline cdr --json` until the record of callID satisfies
// ready (records are written asynchronously) and returns it.
func (r *lifecycleRig) recordOf(callID, what string, ready func(callRecord) bool) callRecord {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var last *callRecord
		for _, rec := range r.records() {
			if rec.CallID == callID {
				last = &rec
				if ready(rec) {
					return rec
				}
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("the record of call %s never became %s; last seen: %+v", callID, what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func closedRecord(rec callRecord) bool { return !rec.End.IsZero() }

// sendSignal sends sig to the daemon.
func sendSignal(t *testing.T, d *process, sig syscall.Signal) {
	t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to the daemon: %v", sig, err)
	}
}

// exitStatus waits up to within for the daemon to exit by itself and
// returns its exit code (-1 when killed by a signal).
func exitStatus(t *testing.T, d *process, within time.Duration) int {
	t.Helper()
	select {
	case <-d.done:
	case <-time.After(within):
		t.Fatalf("the daemon is still running %v later", within)
	}
	return d.cmd.ProcessState.ExitCode()
}

// waitHungUp waits until the far end hung up c (its BYE arrived).
func waitHungUp(t *testing.T, who string, c *siptest.Call) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(20 * time.Second):
		t.Fatalf("the %s got no BYE", who)
	}
}

// recordingFiles lists the WAV files under dir.
func recordingFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() && strings.HasSuffix(path, ".wav") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("recordings: %v", err)
	}
	return files
}

// checkSystemEnd checks a record closed by the daemon itself with cause.
func checkSystemEnd(t *testing.T, rec callRecord, cause string) {
	t.Helper()
	if rec.HangupCause != cause || rec.HangupSide != "system" {
		t.Errorf("record: cause %q side %q, want %q by system", rec.HangupCause, rec.HangupSide, cause)
	}
	if rec.Agent != lifecycleAgent || rec.Queue != "sales" || rec.Answer.IsZero() || rec.End.Before(rec.Answer) {
		t.Errorf("record: agent %q queue %q answer %v end %v; want agent %s, queue sales, end after the answer",
			rec.Agent, rec.Queue, rec.Answer, rec.End, lifecycleAgent)
	}
}

// rawAgent registers agent 1001 from a RawPhone, so the test sees every
// request the daemon sends the agent and answers each itself.
func (r *lifecycleRig) rawAgent() *siptest.RawPhone {
	r.t.Helper()
	phone := siptest.NewRawPhone(r.t, r.agentIP, lifecycleAgent)
	if err := phone.Register(r.ctx, r.sip, lifecyclePassword); err != nil {
		r.t.Fatal(err)
	}
	return phone
}

// answerRaw waits for the INVITE an offer sends phone, answers it 200 with
// SDP for a leg of its own that sends the agent's tone, and returns the
// INVITE and the leg's capture.
func (r *lifecycleRig) answerRaw(phone *siptest.RawPhone) (siptest.Received, *siptest.Capture) {
	r.t.Helper()
	invite, ok := phone.Next(20*time.Second, siptest.Method(sip.INVITE))
	if !ok {
		r.t.Fatal("the agent's phone was never rung")
	}
	offer, err := hsip.ParseSDP(invite.Request().Body())
	if err != nil {
		r.t.Fatalf("the offer to the agent: %v", err)
	}
	engine, err := media.NewEngine(media.Config{IP: netip.MustParseAddr(r.agentIP), PortMin: r.agentRTP, PortMax: r.agentRTP + 99, Shards: 1})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { engine.Close() })
	leg, err := engine.NewLeg("raw-agent")
	if err != nil {
		r.t.Fatal(err)
	}
	heard := &siptest.Capture{}
	leg.AddTap(heard)
	leg.SetParams(offer.Params)
	phone.Respond(invite, 200, "OK", hsip.NewLocalSDP(leg.LocalAddr()).Answer(offer))
	leg.PlayLoop(media.NewPrompt("agent", media.Tone(agentToneHz, time.Second, 0.3)))
	return invite, heard
}

// byeOf matches the BYEs of the call invite started.
func byeOf(invite siptest.Received) func(sip.Message) bool {
	callID := invite.Request().CallID().Value()
	return func(m sip.Message) bool {
		req, ok := m.(*sip.Request)
		return ok && req.Method == sip.BYE && req.CallID() != nil && req.CallID().Value() == callID
	}
}

// waitProbes waits until phone has received n OPTIONS in all.
func (r *lifecycleRig) waitProbes(phone *siptest.Phone, n int) {
	r.t.Helper()
	deadline := time.After(30 * time.Second)
	for phone.OptionsReceived() < n {
		select {
		case <-deadline:
			r.t.Fatalf("the phone received %d OPTIONS, want %d: the daemon does not qualify it", phone.OptionsReceived(), n)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
