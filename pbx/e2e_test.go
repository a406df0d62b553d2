package pbx

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hotline-pbx/hotline/config"
	"github.com/hotline-pbx/hotline/media"
	"github.com/hotline-pbx/hotline/sip/siptest"
)

// startDemo runs the embedded demo config on a free SIP port, with its
// database and recordings in a temporary directory.
func startDemo(t *testing.T, rtpMin int, adjust ...func(*config.Config)) *Switch {
	t.Helper()
	return startDemoLogging(t, rtpMin, nil, adjust...)
}

// startDemoLogging is startDemo logging to log (nil: stderr, warnings only
// unless -v).
func startDemoLogging(t *testing.T, rtpMin int, log *slog.Logger, adjust ...func(*config.Config)) *Switch {
	t.Helper()
	cfg := config.Default()
	for _, q := range cfg.Queues {
		q.Retry.Duration = 200 * time.Millisecond // tests count rings, they do not wait them out
	}
	cfg.SIP.Listen = "127.0.0.1:0"
	for _, f := range adjust {
		f(cfg)
	}
	cfg.RTP.PortMin, cfg.RTP.PortMax = rtpMin, rtpMin+198
	dir := t.TempDir()
	cfg.Storage.Database = filepath.Join(dir, "hotline.db")
	cfg.Storage.Recordings = filepath.Join(dir, "recordings")
	switch {
	case log != nil:
	case testing.Verbose():
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	default:
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	sw, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sw.Stop() })
	return sw
}

func waitFor(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func dominant(pcm []int16) float64 { return media.DominantFrequency(pcm, 440, 1000) }

// TestDemoCallEndToEnd is the whole product in one call: a trunk call to
// the DID, DTMF 1 in the menu, queue sales, agent 1001 rings and answers,
// the two talk (440 Hz caller, 1000 Hz agent), the caller hangs up; the
// recording and the call record say what happened.
func TestDemoCallEndToEnd(t *testing.T) {
	sw := startDemo(t, 41000)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	agent := registerAgent(t, sw, "127.0.0.2", "1001", 42000, siptest.Answer)

	carrier := siptest.NewPhone(t, "127.0.0.1", "+15551234", 42200, siptest.Busy)
	call, err := carrier.Call(ctx, sw.SIPAddr(), "+15550100", media.PCMA)
	if err != nil {
		t.Fatalf("call the DID: %v", err)
	}
	t.Logf("INVITE to 200 OK: %v", call.InviteToAnswer)

	// The greeting plays, the caller presses 1 (RFC 4733) during the menu.
	time.Sleep(sw.snap.Load().prompts["welcome"].Duration() + 300*time.Millisecond)
	if dominantHeard := call.Received.Samples(); len(dominantHeard) == 0 {
		t.Fatal("caller heard nothing after answer (greeting expected)")
	}
	dtmfAt := time.Now()
	dtmfSent := make(chan error, 1)
	go func() { dtmfSent <- call.Leg.SendDTMF(ctx, '1', 100*time.Millisecond) }()
	var agentCall *siptest.Call
	select {
	case agentCall = <-agent.Answered:
	case <-ctx.Done():
		t.Fatal("agent 1001 was never rung")
	}
	t.Logf("DTMF key down to agent answered (the phone answers at once): %v", time.Since(dtmfAt))
	if err := <-dtmfSent; err != nil {
		t.Fatal(err)
	}

	// Both sides talk; each must hear the other's tone through the switch.
	call.Leg.PlayLoop(media.NewPrompt("caller-440", media.Tone(440, time.Second, 0.3)))
	agentCall.Leg.PlayLoop(media.NewPrompt("agent-1000", media.Tone(1000, time.Second, 0.3)))
	time.Sleep(300 * time.Millisecond) // music on hold fades from the caller's buffer
	call.Received.Reset()
	agentCall.Received.Reset()
	time.Sleep(1500 * time.Millisecond)
	callerHeard, agentHeard := call.Received.Samples(), agentCall.Received.Samples()
	if len(callerHeard) < 8000 || len(agentHeard) < 8000 {
		t.Fatalf("too little audio: caller heard %d samples, agent %d", len(callerHeard), len(agentHeard))
	}
	if f := dominant(callerHeard); f != 1000 {
		t.Errorf("caller heard %v Hz, want the agent's 1000 Hz", f)
	}
	if f := dominant(agentHeard); f != 440 {
		t.Errorf("agent heard %v Hz, want the caller's 440 Hz", f)
	}

	if err := call.Hangup(ctx); err != nil {
		t.Fatalf("caller BYE: %v", err)
	}
	select {
	case <-agentCall.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("agent leg not hung up after the caller's BYE")
	}

	rec := recordOf(t, sw, call.ID())
	if rec.Queue != "sales" || rec.Agent != "1001" || rec.Digits != "1" || rec.DID != "+15550100" || rec.Caller != "+15551234" {
		t.Errorf("record = queue %q agent %q digits %q did %q caller %q; want sales 1001 1 +15550100 +15551234",
			rec.Queue, rec.Agent, rec.Digits, rec.DID, rec.Caller)
	}
	if rec.HangupSide != "caller" || rec.HangupCause != "normal" {
		t.Errorf("hangup = %s by %s, want normal by caller", rec.HangupCause, rec.HangupSide)
	}
	if !(rec.Start.Before(rec.Answer) && rec.Answer.Before(rec.End)) {
		t.Errorf("times out of order: start %v answer %v end %v", rec.Start, rec.Answer, rec.End)
	}
	// Talk time is the record's own end minus its answer (stored in ms).
	if want := rec.End.Sub(rec.Answer).Seconds(); math.Abs(rec.TalkSeconds-want) > 0.002 {
		t.Errorf("talk %.3f s, but end - answer is %.3f s", rec.TalkSeconds, want)
	}
	// Both phones talked over loopback: their audio reached us whole.
	t.Logf("quality: caller %d packets, %.2f%% lost, jitter %.2f ms, RTT %.3f ms; agent %d, %.2f%%, %.2f ms, %.3f ms",
		rec.CallerPackets, rec.CallerLossPct, rec.CallerJitterMS, rec.CallerRTTMS, rec.AgentPackets, rec.AgentLossPct, rec.AgentJitterMS, rec.AgentRTTMS)
	if rec.CallerPackets < 50 || rec.AgentPackets < 50 || rec.CallerLossPct != 0 || rec.AgentLossPct != 0 {
		t.Errorf("quality: caller %d packets %.2f%% lost, agent %d packets %.2f%% lost; want each 50+ and none lost",
			rec.CallerPackets, rec.CallerLossPct, rec.AgentPackets, rec.AgentLossPct)
	}
	if n := agentCall.Leg.Stats().DTMFEvents; n != 0 {
		t.Errorf("the agent received %d DTMF events; the digit that chose the queue must not reach it", n)
	}

	left, right := readStereoWAV(t, rec.RecordingPath)
	if f := dominant(left); f != 440 {
		t.Errorf("recording left (caller) is %v Hz, want 440", f)
	}
	if f := dominant(right); f != 1000 {
		t.Errorf("recording right (agent) is %v Hz, want 1000", f)
	}
	if st, err := os.Stat(rec.RecordingPath); err == nil {
		t.Logf("recording %s: %d bytes, %.2f s", filepath.Base(rec.RecordingPath), st.Size(), float64(len(left))/8000)
	}
}

// readStereoWAV reads a 16-bit stereo WAV into its two channels.
func readStereoWAV(t *testing.T, path string) (left, right []int16) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("recording: %v", err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil || len(data) < 44 {
		t.Fatalf("recording %s: %d bytes, %v", path, len(data), err)
	}
	if string(data[0:4]) != "RIFF" || string(data[8:12]) != "WAVE" {
		t.Fatalf("recording is not a WAV file")
	}
	if ch := binary.LittleEndian.Uint16(data[22:24]); ch != 2 {
		t.Fatalf("recording has %d channels, want 2", ch)
	}
	if rate := binary.LittleEndian.Uint32(data[24:28]); rate != 8000 {
		t.Fatalf("recording rate %d, want 8000", rate)
	}
	// Walk chunks to "data".
	pos := 12
	for pos+8 <= len(data) {
		id, size := string(data[pos:pos+4]), int(binary.LittleEndian.Uint32(data[pos+4:pos+8]))
		pos += 8
		if id == "data" {
			if pos+size > len(data) {
				t.Fatalf("data chunk says %d bytes, file has %d", size, len(data)-pos)
			}
			for i := pos; i+4 <= pos+size; i += 4 {
				left = append(left, int16(binary.LittleEndian.Uint16(data[i:])))
				right = append(right, int16(binary.LittleEndian.Uint16(data[i+2:])))
			}
			return left, right
		}
		pos += size + size%2
	}
	t.Fatal("recording has no data chunk")
	return nil, nil
}
