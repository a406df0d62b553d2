// Package e2e runs the hotline daemon against real SIP peers: SIPp (Debian's
// sip-tester) as the carrier and baresip as the agent's softphone.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// What the demo config promises (config/demo/hotline.toml).
const (
	demoDID       = "+15550100"
	demoQueue     = "sales"
	demoAgent     = "1001"
	carrierCaller = "+15550199" // From user in testdata/sipp/carrier.xml
	agentToneHz   = 1000
	callerToneHz  = 440 // what in-process carrier phones send
)

// Ports and timings of the test call. The ports are away from the demo's
// defaults so a developer's `make run` can keep running.
const (
	daemonSIPPort  = 5090
	daemonRTPMin   = 30000
	daemonRTPMax   = 31000
	baresipSIPPort = 5094 // UDP and TCP; baresip 1.0 also listens on TCP 5095
	baresipRTPMin  = 31000
	baresipRTPMax  = 31098
	sippSIPPort    = 5096
	sippMediaPort  = 32000
	speechLength   = 7080 * time.Millisecond // g711a.pcap: 236 packets of 30 ms
	agentWait      = 2500 * time.Millisecond // DTMF -> agent rung and auto-answered
	tailAfterTalk  = 1000 * time.Millisecond
)

// skipEnv lets a machine without the real peers skip this test on purpose.
const skipEnv = "HOTLINE_SKIP_REAL_PEERS"

// requireRealPeers fails the test when a peer is missing, unless skipEnv=1.
func requireRealPeers(t *testing.T) (moduleDir string) {
	t.Helper()
	if os.Getenv(skipEnv) == "1" {
		t.Skipf("%s=1: not running the end-to-end call with SIPp and baresip", skipEnv)
	}
	var missing []string
	for _, tool := range []string{"sipp", "baresip", "sox"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	dir, err := findBaresipModules()
	if err != nil {
		missing = append(missing, err.Error())
	}
	for _, name := range []string{"g711a.pcap", dtmfCapture("1")} {
		if _, err := findSIPpCapture(name); err != nil {
			missing = append(missing, err.Error())
		}
	}
	if len(missing) > 0 {
		t.Fatalf("the end-to-end test needs SIPp, baresip and sox: missing %s.\n"+
			"Install them with: apt-get install sip-tester baresip-core sox\n"+
			"or set %s=1 to skip this test.", strings.Join(missing, "; "), skipEnv)
	}
	return dir
}

// TestRealPeersCallReachesAgent places one carrier call with SIPp into the demo
// IVR, presses 1 for sales, and checks that the registered baresip agent 1001 is
// rung, answers, hears the caller's speech, and that the call record says so.
func TestRealPeersCallReachesAgent(t *testing.T) {
	moduleDir := requireRealPeers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)

	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	bin := buildDaemon(t, ctx, root, tmp)

	// 1. The daemon, on the demo config moved to test ports and the temp dir.
	setup := testSetup{
		ModuleRoot:    root,
		DemoConfig:    filepath.Join(root, "config", "demo", "hotline.toml"),
		SIPPort:       pickPort(t, daemonSIPPort),
		RTPMin:        daemonRTPMin,
		RTPMax:        daemonRTPMax,
		DatabasePath:  filepath.Join(tmp, "hotline.db"),
		RecordingsDir: filepath.Join(tmp, "recordings"),
	}
	cfgPath, plan, err := writeTestConfig(setup, tmp, demoDID, demoQueue, demoAgent)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("call plan from the demo config: trunk %q, DID %s, press %q for queue %q; greeting+menu last %v",
		plan.Trunk, plan.DID, plan.Digit, plan.Queue, plan.MenuEnds)
	daemonAddr := fmt.Sprintf("127.0.0.1:%d", setup.SIPPort)
	daemon := startProcess(t, ctx, "hotline", tmp, filepath.Join(tmp, "hotline.log"), bin, "run", "-c", cfgPath)
	upCtx, upCancel := context.WithTimeout(ctx, 20*time.Second)
	defer upCancel()
	if err := waitSIPAnswers(upCtx, daemonAddr, daemon); err != nil {
		t.Fatal(err)
	}

	// 2. The agent: baresip registers as 1001, answers automatically, sends a tone.
	tone := filepath.Join(tmp, "tone-1000Hz.wav")
	if err := makeTone(ctx, tone, agentToneHz, 180); err != nil {
		t.Fatal(err)
	}
	agentDir := filepath.Join(tmp, "baresip")
	if err := os.MkdirAll(agentDir, 0o755); err != nil {
		t.Fatal(err)
	}
	agent := startBaresip(t, ctx, baresipSetup{
		Dir: agentDir, ModuleDir: moduleDir,
		SIPPort: pickPort(t, baresipSIPPort, 0, 1),
		RTPMin:  baresipRTPMin, RTPMax: baresipRTPMax,
		User: plan.AgentID, Password: plan.AgentPassword, Registrar: daemonAddr,
		Tone: tone, RunSeconds: 180,
	})
	regStart := time.Now()
	regCtx, regCancel := context.WithTimeout(ctx, 15*time.Second)
	defer regCancel()
	regAt, err := agent.waitRegistered(regCtx)
	if err != nil {
		hint := ""
		if strings.Contains(err.Error(), "Function not implemented") {
			hint = "\nbaresip 1.x (libre 1.x) knows only MD5 digest and gives up on a 401 that offers any other " +
				"algorithm (SHA-256) in any of its WWW-Authenticate headers: the daemon must be able to challenge with MD5 alone."
		}
		t.Fatalf("agent %s did not register: %v%s", plan.AgentID, err, hint)
	}
	t.Logf("baresip registered as %s in %v", plan.AgentID, regAt.Sub(regStart).Round(time.Millisecond))

	// 3. The carrier call.
	dtmfPcap, _ := findSIPpCapture(dtmfCapture(plan.Digit))
	speechPcap, _ := findSIPpCapture("g711a.pcap")
	sippDir := filepath.Join(tmp, "sipp")
	if err := os.MkdirAll(sippDir, 0o755); err != nil {
		t.Fatal(err)
	}
	call := carrierCall{
		Scenario:  filepath.Join(root, "testdata", "sipp", "carrier.xml"),
		Dir:       sippDir,
		LocalPort: pickPort(t, sippSIPPort), MediaPort: pickPort(t, sippMediaPort, 0, 1, 2, 3),
		Target: daemonAddr, DID: plan.DID,
		DTMFPcap: dtmfPcap, SpeechPcap: speechPcap,
		// Press the digit once the menu prompt has surely finished playing.
		MenuWait: plan.MenuEnds + time.Second, AgentWait: agentWait, Tail: tailAfterTalk,
		Timeout:     plan.MenuEnds + agentWait + speechLength + tailAfterTalk + 30*time.Second,
		ErrorFile:   filepath.Join(sippDir, "errors.log"),
		MessageFile: filepath.Join(sippDir, "messages.log"),
		LogFile:     filepath.Join(sippDir, "scenario.log"),
		ScreenFile:  filepath.Join(sippDir, "screen.log"),
	}
	res, err := call.run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sipp: %s", strings.Join(res.Argv, " "))
	t.Logf("sipp exit %d after %v; scenario events (ms since sipp started): %q",
		res.ExitCode, res.Duration.Round(time.Millisecond), res.Events)
	if res.InviteTo200Err != nil {
		t.Logf("INVITE->200: %v", res.InviteTo200Err)
	} else {
		t.Logf("INVITE->200 as SIPp saw it: %v", res.InviteTo200)
	}
	if res.ExitCode != 0 {
		t.Errorf("sipp exited %d, want 0 (the call did not complete as scripted)\n--- sipp errors (%s) ---\n%s\n--- SIP messages (%s) ---\n%s\n--- sipp output ---\n%s",
			res.ExitCode, call.ErrorFile, tailFile(call.ErrorFile, 40), call.MessageFile, tailFile(call.MessageFile, 150), tailLines(res.Output, 40))
	}
	if est, ok := agent.proc.out.firstSeen("Call established"); ok {
		if pressed, ok := res.eventAt("pressing"); ok {
			t.Logf("agent answered about %v after the digit was sent (wall clocks of two processes)",
				est.Sub(res.Started.Add(pressed)).Round(10*time.Millisecond))
		}
	}

	// Let baresip finish its WAV files: sndfile fixes the headers on close.
	agent.proc.stop()

	// 4a. The agent heard the caller: the speech of g711a.pcap, not silence.
	checkAgentHeardCaller(t, agent, speechPcap)

	// 4b. The call record.
	rec := newestCallRecord(t, ctx, bin, tmp, cfgPath)
	if rec == nil {
		return
	}
	checkCallRecord(t, rec, plan)

	// 4c. The recording has both sides.
	if rec.RecordingPath == "" {
		t.Errorf("call record has no recording_path; the call was to be recorded")
		return
	}
	path := rec.RecordingPath
	if !filepath.IsAbs(path) {
		path = filepath.Join(tmp, path)
	}
	checkRecording(t, path, speechPcap)
}

// speechReference decodes the caller's speech from g711a.pcap.
func speechReference(t *testing.T, pcapPath string) []float64 {
	t.Helper()
	b, err := os.ReadFile(pcapPath)
	if err != nil {
		t.Fatal(err)
	}
	packets, err := pcapRTP(b)
	if err != nil {
		t.Fatalf("%s: %v", pcapPath, err)
	}
	speech := alawSpeech(packets)
	if got, want := time.Duration(len(speech))*time.Second/8000, speechLength; got != want {
		t.Fatalf("%s holds %v of PCMA, want %v: the capture changed, update speechLength", pcapPath, got, want)
	}
	return speech
}

// minOverlapFrames is how much of the 7.08 s of speech (in 10 ms frames) must be
// found: the agent may pick up a little late.
const minOverlapFrames = 400

// checkAgentHeardCaller finds the caller's speech in what baresip received.
func checkAgentHeardCaller(t *testing.T, agent *baresipAgent, speechPcap string) {
	t.Helper()
	dumps, err := agent.receivedDumps()
	if err != nil || len(dumps) != 1 {
		t.Errorf("want one received-audio dump (one call answered) in %s, have %v (%v)", agent.DumpDir, dumps, err)
		return
	}
	heard, rate, err := readWAVMono(dumps[0])
	if err != nil {
		t.Errorf("agent's received audio: %v", err)
		return
	}
	info, _ := os.Stat(dumps[0])
	t.Logf("agent received %.2f s of audio at %d Hz (%s, %d bytes); RMS %.0f",
		float64(len(heard))/float64(rate), rate, filepath.Base(dumps[0]), info.Size(), rms(heard))
	if rate != 8000 {
		t.Errorf("agent's received audio is at %d Hz, want 8000 (G.711)", rate)
		return
	}
	ref := speechReference(t, speechPcap)
	a := bestAlignment(envelope(ref, 8000, 0), envelope(heard, 8000, 0), minOverlapFrames)
	t.Logf("caller speech found in the agent's audio at %+.2f s: envelope correlation %.3f over %.2f s",
		float64(a.Lag)/100, a.Corr, float64(a.Overlap)/100)
	if a.Corr < 0.8 {
		t.Errorf("the agent did not hear the caller's speech: best envelope correlation %.3f (want >= 0.8)", a.Corr)
		return
	}
	refPart, heardPart := alignedParts(ref, heard, a, 80)
	level := dB(rms(heardPart) / rms(refPart))
	t.Logf("speech level at the agent: RMS %.0f vs %.0f sent (%+.1f dB)", rms(heardPart), rms(refPart), level)
	if level < -12 || level > 6 {
		t.Errorf("caller speech reached the agent at %+.1f dB of what the caller sent, want within -12..+6 dB", level)
	}
	if share := toneShare(heard, agentToneHz, rate); share > 0.1 {
		t.Errorf("%.0f%% of what the agent heard is its own %d Hz tone: the daemon loops the agent's audio back", share*100, agentToneHz)
	}
}

// alignedParts cuts the samples of ref and got that an alignment of frames of
// frame samples says are the same.
func alignedParts(ref, got []float64, a alignment, frame int) ([]float64, []float64) {
	from := max(0, -a.Lag) * frame
	to := from + a.Overlap*frame
	return ref[from:to], got[from+a.Lag*frame : to+a.Lag*frame]
}

// callRecord mirrors store.CallRecord's JSON (store/store.go).
type callRecord struct {
	CallID        string    `json:"call_id"`
	Caller        string    `json:"caller"`
	DID           string    `json:"did"`
	Trunk         string    `json:"trunk"`
	Start         time.Time `json:"start"`
	Answer        time.Time `json:"answer"`
	End           time.Time `json:"end"`
	Digits        string    `json:"digits"`
	Queue         string    `json:"queue"`
	Agent         string    `json:"agent"`
	WaitSeconds   float64   `json:"wait_seconds"`
	TalkSeconds   float64   `json:"talk_seconds"`
	HangupCause   string    `json:"hangup_cause"`
	HangupSide    string    `json:"hangup_side"`
	RecordingPath string    `json:"recording_path"`
}

// newestCallRecord asks `hotline cdr` until the call's record is complete
// (records are written asynchronously, and a call in progress already has
// an open one) and returns the newest. The database is the
// test's own, so every record in it is from this test.
func newestCallRecord(t *testing.T, ctx context.Context, bin, dir, cfgPath string) *callRecord {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		cmdCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cmd := exec.CommandContext(cmdCtx, bin, "cdr", "-c", cfgPath, "--json", "--limit", "5")
		cmd.Dir = dir
		out, err := cmd.Output()
		cancel()
		var recs []callRecord
		if err == nil {
			recs, err = decodeRecords(out)
		}
		if err == nil && len(recs) > 0 && !recs[0].End.IsZero() {
			if len(recs) != 1 {
				t.Errorf("%d call records for one call: %+v", len(recs), recs)
			}
			return &recs[0]
		}
		if time.Now().After(deadline) {
			var stderr string
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Errorf("no call record: hotline cdr --json: %v\nstdout: %s\nstderr: %s", err, out, stderr)
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// decodeRecords reads a JSON array of records, or one JSON object per line.
func decodeRecords(out []byte) ([]callRecord, error) {
	var recs []callRecord
	if err := json.Unmarshal(out, &recs); err == nil {
		return recs, nil
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var r callRecord
		if err := dec.Decode(&r); err != nil {
			return nil, fmt.Errorf("decode call records: %w", err)
		}
		recs = append(recs, r)
	}
	return recs, nil
}

func checkCallRecord(t *testing.T, r *callRecord, plan callPlan) {
	t.Helper()
	t.Logf("call record: %+v", *r)
	for _, f := range []struct{ name, got, want string }{
		{"agent", r.Agent, plan.AgentID},
		{"queue", r.Queue, plan.Queue},
		{"digits", r.Digits, plan.Digit},
		{"did", r.DID, plan.DID},
		{"trunk", r.Trunk, plan.Trunk},
		{"caller", r.Caller, carrierCaller},
		{"hangup_side", r.HangupSide, "caller"}, // SIPp sends the BYE
	} {
		if f.got != f.want {
			t.Errorf("call record %s = %q, want %q", f.name, f.got, f.want)
		}
	}
	if r.Answer.IsZero() {
		t.Errorf("call record has no answer time; the agent answered")
	} else if r.Answer.Before(r.Start) || r.End.Before(r.Answer) {
		t.Errorf("call record times out of order: start %v answer %v end %v", r.Start, r.Answer, r.End)
	}
	// The agent answered before the speech started and the caller hung up after it.
	if r.TalkSeconds < speechLength.Seconds() {
		t.Errorf("call record talk_seconds = %.2f, want >= %.2f (the speech played while talking)", r.TalkSeconds, speechLength.Seconds())
	}
	t.Logf("queue wait %.2f s, talk %.2f s, call %.2f s, hangup %s/%s",
		r.WaitSeconds, r.TalkSeconds, r.End.Sub(r.Start).Seconds(), r.HangupSide, r.HangupCause)
}

// checkRecording finds both sides of the conversation in the call's recording:
// the agent's 1000 Hz tone, and the caller's speech once the tone is taken out.
func checkRecording(t *testing.T, path, speechPcap string) {
	t.Helper()
	x, rate, err := readWAVMono(path)
	if err != nil {
		t.Errorf("recording: %v", err)
		return
	}
	info, _ := os.Stat(path)
	n := frameLen(rate)
	var toneFrames int
	for start := 0; start+n <= len(x); start += n {
		if toneShare(x[start:start+n], agentToneHz, rate) > 0.5 {
			toneFrames++
		}
	}
	toneSeconds := float64(toneFrames) / 100
	t.Logf("recording %s: %d bytes, %.2f s at %d Hz; agent tone in %.2f s of it",
		path, info.Size(), float64(len(x))/float64(rate), rate, toneSeconds)
	if toneSeconds < speechLength.Seconds() {
		t.Errorf("recording has the agent's %d Hz tone for %.2f s, want >= %.2f s (the agent talked all through the caller's speech)",
			agentToneHz, toneSeconds, speechLength.Seconds())
	}
	ref := speechReference(t, speechPcap)
	// The reference at the recording's rate: repeat samples (a crude resampler is
	// enough for an envelope).
	if rate != 8000 {
		if rate%8000 != 0 {
			t.Errorf("recording at %d Hz, want a multiple of 8000", rate)
			return
		}
		up := make([]float64, 0, len(ref)*rate/8000)
		for _, v := range ref {
			for range rate / 8000 {
				up = append(up, v)
			}
		}
		ref = up
	}
	a := bestAlignment(envelope(ref, rate, 0), envelope(x, rate, agentToneHz), minOverlapFrames)
	t.Logf("caller speech found in the recording at %+.2f s: envelope correlation %.3f over %.2f s",
		float64(a.Lag)/100, a.Corr, float64(a.Overlap)/100)
	if a.Corr < 0.7 {
		t.Errorf("the recording does not have the caller's speech: best envelope correlation %.3f (want >= 0.7)", a.Corr)
	}
}
