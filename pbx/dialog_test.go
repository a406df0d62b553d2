package pbx

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotline-pbx/hotline/config"
	"github.com/hotline-pbx/hotline/media"
	hsip "github.com/hotline-pbx/hotline/sip"
	"github.com/hotline-pbx/hotline/sip/siptest"
)

// Calls whose media session changes under way: delayed offers, hold, DTMF
// by INFO, and callers whose phone dies.

func tonePrompt(hz float64) *media.Prompt {
	return media.NewPrompt(fmt.Sprintf("tone-%v", hz), media.Tone(hz, time.Second, 0.3))
}

// promptTones are the demo's prompts as pure tones (400 ms each), so a test
// can tell by frequency what the caller hears.
var promptTones = map[string]float64{"welcome": 300, "menu": 400, "invalid": 500, "moh": 600, "goodbye": 700}

// toneDemo is the demo with promptTones for prompts.
func toneDemo(t *testing.T, rtpMin int, adjust ...func(*config.Config)) *Switch {
	t.Helper()
	dir := t.TempDir()
	for name, hz := range promptTones {
		if err := os.WriteFile(filepath.Join(dir, name+".wav"), monoWAV(media.Tone(hz, 400*time.Millisecond, 0.3)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return startDemo(t, rtpMin, append([]func(*config.Config){func(c *config.Config) { c.Prompts.Dir = dir }}, adjust...)...)
}

// heardPrompts names the prompts a capture holds, in the order heard: the
// audio is cut into 20 ms windows named by their tone (or silence), and a
// run of one tone counts once; silence between two runs of a tone makes
// them two prompts.
func heardPrompts(c *siptest.Capture) []string {
	var names []string
	byTone := map[float64]string{}
	var tones []float64
	for name, hz := range promptTones {
		byTone[hz] = name
		tones = append(tones, hz)
	}
	pcm := c.Samples()
	last, quiet := "", 0
	for i := 0; i+160 <= len(pcm); i += 160 {
		name := byTone[media.DominantFrequency(pcm[i:i+160], tones...)]
		if name == "" {
			if quiet++; quiet >= 5 { // 100 ms of silence ends a prompt
				last = ""
			}
			continue
		}
		if name != last {
			names = append(names, name)
		}
		last, quiet = name, 0
	}
	return names
}

// heard is the tone among the candidates a capture holds over the next
// window, 0 for silence.
func heard(c *siptest.Capture, window time.Duration, candidates ...float64) float64 {
	c.Reset()
	time.Sleep(window)
	return media.DominantFrequency(c.Samples(), candidates...)
}

// hangUpWhenAnswered waits for agent to answer, then the caller hangs up.
func hangUpWhenAnswered(t *testing.T, ctx context.Context, agent *siptest.Phone, call *siptest.Call, never string) {
	t.Helper()
	select {
	case ac := <-agent.Answered:
		_ = call.Hangup(ctx)
		<-ac.Done()
	case <-ctx.Done():
		t.Fatal(never)
	}
}

// A carrier INVITE without SDP gets our offer in the 200 and its answer in
// the ACK; the caller then hears the greeting and reaches the menu.
func TestDelayedOfferFromTheCarrier(t *testing.T) {
	sw := toneDemo(t, 52000)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	agent := registerAgent(t, sw, "127.0.8.6", "1001", 52200, siptest.Answer)
	carrier := siptest.NewPhone(t, "127.0.0.1", "+15557777", 52400, siptest.Busy)
	call, err := carrier.CallDelayedOffer(ctx, sw.SIPAddr(), "+15550100")
	if err != nil {
		t.Fatalf("delayed-offer call: %v", err)
	}
	if f := heard(call.Received, 400*time.Millisecond, 300, 600); f != 300 {
		t.Fatalf("caller heard %v Hz after a delayed offer, want the 300 Hz greeting", f)
	}
	if err := call.Leg.SendDTMF(ctx, '1', 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	hangUpWhenAnswered(t, ctx, agent, call, "the agent was never rung")
}

// A digit sent by SIP INFO works in the menu like an RFC 4733 one.
func TestMenuDigitBySIPInfo(t *testing.T) {
	sw := toneDemo(t, 52600)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	agent := registerAgent(t, sw, "127.0.8.7", "1003", 52800, siptest.Answer)
	call := carrierCall(t, sw, ctx, 53000, "+15550100")
	res, err := call.SendInfo(ctx, "application/dtmf-relay", '2')
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("INFO: %v %v", res, err)
	}
	hangUpWhenAnswered(t, ctx, agent, call, "INFO digit 2 did not reach support's agent 1003")
	if rec := recordOf(t, sw, call.ID()); rec.Digits != "2" || rec.Queue != "support" {
		t.Errorf("record: digits %q queue %q, want 2 and support", rec.Digits, rec.Queue)
	}
}

// Hold from the agent's phone (re-INVITE sendonly): we answer recvonly,
// stop sending to the agent, and the caller hears music on hold until the
// agent resumes. The same from the caller's side.
func TestHoldPlaysMusicAndStopsSending(t *testing.T) {
	sw := toneDemo(t, 53200)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	agent := registerAgent(t, sw, "127.0.8.8", "1001", 53400, siptest.Answer)
	call := callSales(t, sw, ctx, 53600)
	var ac *siptest.Call
	select {
	case ac = <-agent.Answered:
	case <-ctx.Done():
		t.Fatal("agent never rung")
	}
	call.Leg.PlayLoop(tonePrompt(440))
	ac.Leg.PlayLoop(tonePrompt(1000))
	if f := heard(call.Received, 600*time.Millisecond, 600, 1000); f != 1000 {
		t.Fatalf("before hold the caller hears %v Hz, want the agent's 1000", f)
	}

	res, err := ac.Reinvite(ctx, hsip.SendOnly)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("hold re-INVITE: %v %v", res, err)
	}
	if body := string(res.Body()); !strings.Contains(body, "a=recvonly") {
		t.Errorf("answer to sendonly does not say recvonly:\n%s", body)
	}
	if f := heard(call.Received, 600*time.Millisecond, 600, 1000); f != 600 {
		t.Errorf("on hold the caller hears %v Hz, want music on hold (600)", f)
	}
	before := ac.Leg.Stats().PacketsIn
	time.Sleep(400 * time.Millisecond)
	if got := ac.Leg.Stats().PacketsIn - before; got > 2 {
		t.Errorf("the agent on hold still got %d packets in 400 ms", got)
	}

	if res, err := ac.Reinvite(ctx, hsip.SendRecv); err != nil || res.StatusCode != 200 {
		t.Fatalf("resume re-INVITE: %v %v", res, err)
	}
	if f := heard(call.Received, 600*time.Millisecond, 600, 1000); f != 1000 {
		t.Errorf("after resume the caller hears %v Hz, want the agent's 1000", f)
	}
	if f := heard(ac.Received, 600*time.Millisecond, 440, 600); f != 440 {
		t.Errorf("after resume the agent hears %v Hz, want the caller's 440", f)
	}

	// The caller's side holds (inactive): the agent hears the music.
	if res, err := call.Reinvite(ctx, hsip.Inactive); err != nil || res.StatusCode != 200 {
		t.Fatalf("caller hold: %v %v", res, err)
	}
	if f := heard(ac.Received, 600*time.Millisecond, 440, 600); f != 600 {
		t.Errorf("with the caller holding the agent hears %v Hz, want music on hold (600)", f)
	}
	_ = call.Hangup(ctx)
	<-ac.Done()
}

// A caller whose phone dies in the queue (no RTP, no BYE) is hung up after
// rtp.timeout, recorded as a media timeout, and never reaches an agent.
func TestDeadCallerIsHungUpOnMediaTimeout(t *testing.T) {
	sw := toneDemo(t, 53800, func(c *config.Config) { c.RTP.Timeout.Duration = time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	call := carrierCall(t, sw, ctx, 54000, "+15550100")
	call.Leg.PlayLoop(tonePrompt(440)) // alive through the menu
	if err := call.Leg.SendDTMF(ctx, '1', 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	call.Leg.PlayLoop(tonePrompt(440))
	waitFor(t, "caller queued", 5*time.Second, func() bool {
		q, _ := sw.ACD().Snapshot().Queue("sales")
		return len(q.Waiting) == 1
	})
	call.Leg.StopPlay() // the phone dies: no more RTP, no BYE
	select {
	case <-call.Done():
	case <-ctx.Done():
		t.Fatal("a silent caller was kept")
	}
	rec := recordOf(t, sw, call.ID())
	if rec.HangupCause != "media-timeout" || rec.HangupSide != "caller" || rec.End.IsZero() {
		t.Errorf("record: %s by %s, end %v; want media-timeout by caller", rec.HangupCause, rec.HangupSide, rec.End)
	}
	agent := registerAgent(t, sw, "127.0.8.9", "1001", 54200, siptest.Answer)
	time.Sleep(500 * time.Millisecond)
	if n := agent.Invites.Load(); n != 0 {
		t.Errorf("an agent was rung %d times for a caller who was gone", n)
	}
}

// monoWAV is pcm as an 8 kHz mono 16-bit WAV file.
func monoWAV(pcm []int16) []byte {
	data := make([]byte, 44+2*len(pcm))
	copy(data, "RIFF")
	binary.LittleEndian.PutUint32(data[4:], uint32(36+2*len(pcm)))
	copy(data[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(data[16:], 16)
	binary.LittleEndian.PutUint16(data[20:], 1) // PCM
	binary.LittleEndian.PutUint16(data[22:], 1) // mono
	binary.LittleEndian.PutUint32(data[24:], 8000)
	binary.LittleEndian.PutUint32(data[28:], 16000)
	binary.LittleEndian.PutUint16(data[32:], 2)
	binary.LittleEndian.PutUint16(data[34:], 16)
	copy(data[36:], "data")
	binary.LittleEndian.PutUint32(data[40:], uint32(2*len(pcm)))
	for i, s := range pcm {
		binary.LittleEndian.PutUint16(data[44+2*i:], uint16(s))
	}
	return data
}

// Behind 1:1 NAT (a cloud VM) the switch listens on every address and tells
// peers the public one: in Contact and Via, and in SDP. Here the "public"
// addresses are other loopback addresses, which reach the same sockets.
func TestAdvertisedAddresses(t *testing.T) {
	sw := toneDemo(t, 54400, func(c *config.Config) {
		c.SIP.Listen, c.SIP.Advertise = "0.0.0.0:0", "127.0.8.200"
		c.RTP.Address, c.RTP.Advertise = "0.0.0.0", "127.0.8.201"
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	agent := registerAgent(t, sw, "127.0.8.10", "1001", 54600, siptest.Answer)
	call := callSales(t, sw, ctx, 54800)
	var ac *siptest.Call
	select {
	case ac = <-agent.Answered:
	case <-ctx.Done():
		t.Fatal("agent never rung")
	}
	inv := ac.Invite()
	port := sw.SIPAddr().Port()
	if c := inv.Contact(); c == nil || c.Address.Host != "127.0.8.200" || c.Address.Port != int(port) {
		t.Errorf("Contact %v, want the advertised 127.0.8.200:%d", c, port)
	}
	if v := inv.Via(); v == nil || v.Host != "127.0.8.200" {
		t.Errorf("Via %v, want the advertised host", v)
	}
	if !strings.Contains(string(inv.Body()), "c=IN IP4 127.0.8.201") {
		t.Errorf("offer to the agent does not name the advertised media address:\n%s", inv.Body())
	}
	if !strings.Contains(string(call.Response.Body()), "c=IN IP4 127.0.8.201") {
		t.Errorf("answer to the carrier does not name the advertised media address:\n%s", call.Response.Body())
	}
	call.Leg.PlayLoop(tonePrompt(440))
	ac.Leg.PlayLoop(tonePrompt(1000))
	if f := heard(call.Received, 600*time.Millisecond, 440, 1000); f != 1000 {
		t.Errorf("through the advertised addresses the caller hears %v Hz, want 1000", f)
	}
	_ = call.Hangup(ctx)
	<-ac.Done()
}

// An attacker on another address sprays RTP at the caller's and the agent's
// ports (ports it could guess when they were handed out in order): its
// digit must not drive the menu, and neither the agent nor the recording
// may hear its audio.
func TestRTPFromAStrangerIsIgnored(t *testing.T) {
	sw := toneDemo(t, 57600)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sales := registerAgent(t, sw, "127.0.8.15", "1001", 57800, siptest.Answer)
	support := registerAgent(t, sw, "127.0.8.16", "1002", 58000, siptest.Answer)
	call := carrierCall(t, sw, ctx, 58200, "+15550100")
	callerPort, err := hsip.ParseSDP(call.Response.Body())
	if err != nil {
		t.Fatal(err)
	}
	attacker := strangerLeg(t, "127.0.8.66", 58400, callerPort.Params.Remote)
	attacker.PlayLoop(tonePrompt(2000))
	call.Leg.PlayLoop(tonePrompt(440))
	if err := attacker.SendDTMF(ctx, '2', 100*time.Millisecond); err != nil { // support, if it were believed
		t.Fatal(err)
	}
	attacker.PlayLoop(tonePrompt(2000))
	time.Sleep(300 * time.Millisecond)
	if err := call.Leg.SendDTMF(ctx, '1', 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	call.Leg.PlayLoop(tonePrompt(440))
	var ac *siptest.Call
	select {
	case ac = <-sales.Answered:
	case <-support.Answered:
		t.Fatal("the stranger's digit 2 chose the support queue")
	case <-ctx.Done():
		t.Fatal("the caller's digit 1 did not reach sales")
	}
	agentPort, err := hsip.ParseSDP(ac.Invite().Body())
	if err != nil {
		t.Fatal(err)
	}
	onAgent := strangerLeg(t, "127.0.8.67", 58600, agentPort.Params.Remote)
	onAgent.PlayLoop(tonePrompt(2000))
	ac.Leg.PlayLoop(tonePrompt(1000))
	ac.Received.Reset()
	call.Received.Reset()
	time.Sleep(time.Second)
	agentHeard, callerHeard := ac.Received.Samples(), call.Received.Samples()
	if f := media.DominantFrequency(agentHeard, 440, 2000); f != 440 || media.Goertzel(agentHeard, 2000) > media.MinTonePower {
		t.Errorf("the agent hears %v Hz (stranger's 2000 Hz at power %.4f), want only the caller's 440", f, media.Goertzel(agentHeard, 2000))
	}
	if p := media.Goertzel(callerHeard, 2000); p > media.MinTonePower {
		t.Errorf("the caller hears the stranger's 2000 Hz (power %.4f)", p)
	}
	_ = call.Hangup(ctx)
	<-ac.Done()
	rec := recordOf(t, sw, call.ID())
	left, right := readStereoWAV(t, rec.RecordingPath)
	for side, pcm := range map[string][]int16{"caller (left)": left, "agent (right)": right} {
		if p := media.Goertzel(pcm, 2000); p > media.MinTonePower {
			t.Errorf("the recording's %s channel has the stranger's 2000 Hz (power %.4f)", side, p)
		}
	}
}

// strangerLeg is an RTP sender on ip aimed at target, as an attacker's.
func strangerLeg(t *testing.T, ip string, rtpMin int, target netip.AddrPort) *media.Leg {
	t.Helper()
	eng, err := media.NewEngine(media.Config{IP: netip.MustParseAddr(ip), PortMin: rtpMin, PortMax: rtpMin + 98, Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	leg, err := eng.NewLeg("stranger")
	if err != nil {
		t.Fatal(err)
	}
	leg.SetParams(media.Params{Remote: target, Codec: media.PCMU, PayloadType: 0, DTMFPayloadType: 101, PtimeMS: 20})
	return leg
}
