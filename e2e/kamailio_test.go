package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/hotline-pbx/hotline/media"
	hsip "github.com/hotline-pbx/hotline/sip"
	"github.com/hotline-pbx/hotline/sip/siptest"
)

// Addresses of the Kamailio test: Kamailio, hotline and the two phones each
// on their own loopback address.
const (
	kamProxyIP       = "127.0.10.1"
	kamProxyPort     = 37000
	kamHotlineIP     = "127.0.10.2"
	kamHotlinePort   = 37010
	kamHotlineRTPMin = 37100
	kamHotlineRTPMax = 37298
	kamAgentIP       = "127.0.10.3"
	kamAgentRTPMin   = 37300 // siptest phones take 100 ports from here
	kamCarrierIP     = "127.0.10.4"
	kamCarrierRTPMin = 37400
	kamQualify       = time.Second // hotline's qualify_interval
)

var (
	kamProxy   = netip.MustParseAddrPort(fmt.Sprintf("%s:%d", kamProxyIP, kamProxyPort))
	kamHotline = netip.MustParseAddrPort(fmt.Sprintf("%s:%d", kamHotlineIP, kamHotlinePort))
)

// requireKamailio returns the kamailio binary. A machine without it fails
// the test, unless skipEnv=1 says it may skip.
func requireKamailio(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"kamailio", "/usr/sbin/kamailio"} { // sbin is not on every user's PATH
		if bin, err := exec.LookPath(name); err == nil {
			return bin
		}
	}
	if os.Getenv(skipEnv) == "1" {
		t.Skipf("kamailio is not installed and %s=1: not running the calls through Kamailio", skipEnv)
	}
	t.Fatalf("the Kamailio test needs kamailio: install it with: apt-get install kamailio (make test does)\n"+
		"or set %s=1 to skip this test.", skipEnv)
	return ""
}

// TestKamailioPathReachesAgent puts a real Kamailio in front of hotline as
// the proxy phones register through, as a contact centre with several nodes
// behind Kamailio does. The agent's REGISTER gets a Path there; hotline's
// qualify OPTIONS and the INVITEs of two carrier calls must come back
// through Kamailio, and everything inside the calls (ACK, BYE from either
// side) must stay on it, while RTP flows directly between phone and hotline.
func TestKamailioPathReachesAgent(t *testing.T) {
	kamailio := requireKamailio(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	bin := buildDaemon(t, ctx, root, tmp)
	cfgPath, plan := writeKamailioHotlineConfig(t, root, tmp)
	daemon := startProcess(t, ctx, "hotline", tmp, filepath.Join(tmp, "hotline.log"), bin, "run", "-c", cfgPath)
	upCtx, upCancel := context.WithTimeout(ctx, 20*time.Second)
	defer upCancel()
	if err := waitSIPAnswers(upCtx, kamHotline.String(), daemon); err != nil {
		t.Fatal(err)
	}
	proxy := startKamailio(t, ctx, kamailio, tmp)
	fromHotline, fromAgent := " from "+kamHotlineIP+":", " from "+kamAgentIP+":"

	// 1. The agent registers to the proxy; hotline challenges, through it.
	agent := siptest.NewPhone(t, kamAgentIP, plan.AgentID, kamAgentRTPMin, siptest.Answer)
	res, err := agent.Register(ctx, kamProxy, plan.AgentPassword)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("REGISTER through Kamailio: %v %v", res, err)
	}
	if c := res.Contact(); c == nil || c.Address.Host != kamAgentIP {
		t.Errorf("the 200 to the REGISTER lists contact %v, want the agent's own (%s)", c, agent.ContactURI())
	}
	for _, want := range []string{"e2e relay REGISTER" + fromAgent, "e2e reply 401 REGISTER" + fromHotline, "e2e reply 200 REGISTER" + fromHotline} {
		if !proxy.logged(ctx, want, 1) {
			t.Errorf("Kamailio did not log %q: the REGISTER and hotline's challenge did not both go through it", want)
		}
	}

	// 2. Qualify: hotline's OPTIONS reach the phone through Kamailio.
	options := waitOptions(t, ctx, agent, proxy, 3)
	t.Logf("%d qualify OPTIONS reached the agent through Kamailio", options)

	// 3. A carrier call; the caller hangs up.
	carrier := siptest.NewPhone(t, kamCarrierIP, carrierCaller, kamCarrierRTPMin, siptest.Busy)
	call, agentCall := callAgentThroughProxy(t, ctx, carrier, agent, plan)
	checkTalk(t, call, agentCall)
	if err := call.Hangup(ctx); err != nil {
		t.Fatalf("caller BYE: %v", err)
	}
	waitDone(t, agentCall.Done(), "the agent's leg after the caller hung up")
	if !proxy.logged(ctx, "e2e relay BYE"+fromHotline, 1) {
		t.Errorf("hotline's BYE to the agent did not go through Kamailio")
	}

	// 4. The agent is still reachable once qualify has gone on past the
	// call; this time the agent hangs up, and its BYE goes through Kamailio.
	options = waitOptions(t, ctx, agent, proxy, options+2)
	call, agentCall = callAgentThroughProxy(t, ctx, carrier, agent, plan)
	checkTalk(t, call, agentCall)
	if err := agentCall.Hangup(ctx); err != nil {
		t.Fatalf("agent BYE: %v", err)
	}
	waitDone(t, call.Done(), "the caller's leg after the agent hung up")
	if !proxy.logged(ctx, "e2e relay BYE"+fromAgent, 1) || !proxy.logged(ctx, "e2e reply 200 BYE"+fromHotline, 1) {
		t.Errorf("the agent's BYE and hotline's 200 did not both go through Kamailio")
	}
	if !proxy.logged(ctx, "e2e relay ACK"+fromHotline, 2) {
		t.Errorf("Kamailio relayed %d ACKs from hotline, want one per answered call (2): ACKs must follow the Record-Route",
			proxy.count("e2e relay ACK"+fromHotline))
	}
	t.Logf("Kamailio relayed: %d INVITE, %d ACK, %d BYE from hotline, %d BYE from the agent, %d OPTIONS",
		proxy.count("e2e relay INVITE"+fromHotline), proxy.count("e2e relay ACK"+fromHotline),
		proxy.count("e2e relay BYE"+fromHotline), proxy.count("e2e relay BYE"+fromAgent), proxy.count("e2e relay OPTIONS"+fromHotline))
}

// writeKamailioHotlineConfig is the demo config on the test's addresses,
// with the carrier's trunk at kamCarrierIP and a short qualify interval.
func writeKamailioHotlineConfig(t *testing.T, root, dir string) (string, callPlan) {
	t.Helper()
	setup := testSetup{ModuleRoot: root, DemoConfig: filepath.Join(root, "config", "demo", "hotline.toml"),
		SIPPort: kamHotlinePort, RTPMin: kamHotlineRTPMin, RTPMax: kamHotlineRTPMax,
		DatabasePath: filepath.Join(dir, "hotline.db"), RecordingsDir: filepath.Join(dir, "recordings")}
	path, plan, err := writeTestConfig(setup, dir, demoDID, demoQueue, demoAgent)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if _, err := toml.DecodeFile(path, &cfg); err != nil {
		t.Fatal(err)
	}
	sip := table(cfg, "sip")
	sip["listen"] = kamHotline.String()
	sip["transports"] = []string{"udp"}
	sip["qualify_interval"] = kamQualify.String()
	table(cfg, "rtp")["address"] = kamHotlineIP
	for _, tr := range tables(cfg["trunk"]) {
		if tr["name"] == plan.Trunk {
			tr["addresses"] = []string{kamCarrierIP}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := toml.NewEncoder(f).Encode(cfg); err != nil {
		t.Fatal(err)
	}
	return path, plan
}

// startKamailio renders testdata/kamailio/kamailio.cfg for the test's
// addresses and runs Kamailio in the foreground, its runtime files in dir.
func startKamailio(t *testing.T, ctx context.Context, bin, dir string) *process {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := template.ParseFiles(filepath.Join(root, "testdata", "kamailio", "kamailio.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(dir, "kamailio")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "kamailio.cfg")
	f, err := os.Create(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// debug=2 logs the script's relay lines; HOTLINE_KAMAILIO_DEBUG=3 every message.
	debug := os.Getenv("HOTLINE_KAMAILIO_DEBUG")
	if debug == "" {
		debug = "2"
	}
	err = tmpl.Execute(f, struct{ Debug, Proxy, Hotline string }{debug, kamProxy.String(), kamHotline.String()})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("render %s: %v", cfgPath, err)
	}
	p := startProcess(t, ctx, "kamailio", dir, filepath.Join(dir, "kamailio.log"), bin,
		"-DD", "-E", "-f", cfgPath, "-Y", dir, "-P", filepath.Join(dir, "kamailio.pid"), "-w", dir, "-m", "32", "-M", "8")
	upCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := waitSIPAnswers(upCtx, kamProxy.String(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

// count is how many times the process has printed s.
func (p *process) count(s string) int { return strings.Count(p.out.String(), s) }

// logged waits until the process has printed s at least n times and says
// whether it did. Kamailio logs a message before it forwards it, but its
// log reaches us through a pipe, a little later.
func (p *process) logged(ctx context.Context, s string, n int) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for p.count(s) < n {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
	return true
}

// waitOptions waits until the agent has received at least n qualify OPTIONS,
// each of which Kamailio must have relayed from hotline, and returns how
// many it received.
func waitOptions(t *testing.T, ctx context.Context, agent *siptest.Phone, proxy *process, n int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*kamQualify+5*time.Second)
	defer cancel()
	relayed := "e2e relay OPTIONS from " + kamHotlineIP + ":"
	for {
		got := agent.OptionsReceived()
		if got >= n {
			// Every one of them went through Kamailio.
			if !proxy.logged(ctx, relayed, got) {
				t.Fatalf("the agent received %d OPTIONS but Kamailio relayed only %d from hotline: hotline qualifies around the Path", got, proxy.count(relayed))
			}
			return got
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the agent received %d qualify OPTIONS (Kamailio relayed %d from hotline), want %d", got, proxy.count(relayed), n)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// callAgentThroughProxy places a carrier call to the DID, presses the queue's
// digit and returns the call once the agent has answered. The agent's INVITE
// must have come through Kamailio, record-routed, with hotline's own
// address for media in its SDP.
func callAgentThroughProxy(t *testing.T, ctx context.Context, carrier, agent *siptest.Phone, plan callPlan) (caller, answered *siptest.Call) {
	t.Helper()
	call, err := carrier.Call(ctx, kamHotline, plan.DID, media.PCMA)
	if err != nil {
		t.Fatalf("carrier call to %s: %v", plan.DID, err)
	}
	// The digit once the menu has surely started listening.
	select {
	case <-time.After(plan.MenuEnds + 300*time.Millisecond):
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	if err := call.Leg.SendDTMF(ctx, plan.Digit[0], 100*time.Millisecond); err != nil {
		t.Fatalf("press %s: %v", plan.Digit, err)
	}
	select {
	case answered = <-agent.Answered:
	case <-time.After(15 * time.Second):
		// The phone counts an answered call once hotline has ACKed its 200.
		t.Fatalf("agent %s has no answered call through Kamailio; INVITEs it received: %d", plan.AgentID, agent.Invites.Load())
	}
	invite := answered.Invite()
	if src, err := netip.ParseAddrPort(invite.Source()); err != nil || src != kamProxy {
		t.Errorf("the agent's INVITE came from %s, want Kamailio (%s)", invite.Source(), kamProxy)
	}
	if rr := invite.GetHeader("Record-Route"); rr == nil || !strings.Contains(rr.Value(), kamProxy.String()) {
		t.Errorf("the agent's INVITE has Record-Route %v, want Kamailio's (%s)", rr, kamProxy)
	}
	if offer, err := hsip.ParseSDP(invite.Body()); err != nil || offer.Params.Remote.Addr().String() != kamHotlineIP {
		t.Errorf("the agent's INVITE offers media at %+v (%v), want hotline's address %s: RTP goes direct", offer.Params.Remote, err, kamHotlineIP)
	}
	return call, answered
}

// checkTalk has caller and agent play tones and checks each hears the other.
func checkTalk(t *testing.T, call, agentCall *siptest.Call) {
	t.Helper()
	call.Leg.PlayLoop(media.NewPrompt("caller", media.Tone(callerToneHz, time.Second, 0.3)))
	agentCall.Leg.PlayLoop(media.NewPrompt("agent", media.Tone(agentToneHz, time.Second, 0.3)))
	time.Sleep(300 * time.Millisecond) // what was on its way before the tones
	call.Received.Reset()
	agentCall.Received.Reset()
	time.Sleep(1500 * time.Millisecond)
	callerHeard, agentHeard := call.Received.Samples(), agentCall.Received.Samples()
	t.Logf("caller heard %d samples, agent %d", len(callerHeard), len(agentHeard))
	if f := media.DominantFrequency(agentHeard, callerToneHz, agentToneHz); f != callerToneHz {
		t.Errorf("the agent heard %v Hz (0: silence) in %d samples, want the caller's %d Hz", f, len(agentHeard), callerToneHz)
	}
	if f := media.DominantFrequency(callerHeard, callerToneHz, agentToneHz); f != agentToneHz {
		t.Errorf("the caller heard %v Hz (0: silence) in %d samples, want the agent's %d Hz", f, len(callerHeard), agentToneHz)
	}
}

func waitDone(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not end", what)
	}
}
