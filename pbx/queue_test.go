package pbx

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/hotline-pbx/hotline/config"
	"github.com/hotline-pbx/hotline/media"
	"github.com/hotline-pbx/hotline/sip/siptest"
	"github.com/hotline-pbx/hotline/store"
)

// registerAgent registers a phone as agent id and waits until the ACD has it.
func registerAgent(t *testing.T, sw *Switch, ip, id string, rtpMin int, mode siptest.Mode) *siptest.Phone {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p := siptest.NewPhone(t, ip, id, rtpMin, mode)
	res, err := p.Register(ctx, sw.SIPAddr(), "demo"+id)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("register %s: %v %v", id, res, err)
	}
	waitFor(t, "agent "+id+" available", 2*time.Second, func() bool {
		a, ok := sw.ACD().Snapshot().Agent(id)
		return ok && a.State.String() == "available"
	})
	return p
}

// callSales calls the demo DID and presses 1 as soon as the menu starts.
func callSales(t *testing.T, sw *Switch, ctx context.Context, rtpMin int) *siptest.Call {
	t.Helper()
	return callAndPress1(t, sw, ctx, rtpMin, "+15550100")
}

// carrierCall is a call from the demo trunk's address to did.
func carrierCall(t *testing.T, sw *Switch, ctx context.Context, rtpMin int, did string) *siptest.Call {
	t.Helper()
	carrier := siptest.NewPhone(t, "127.0.0.1", "+15557777", rtpMin, siptest.Busy)
	call, err := carrier.Call(ctx, sw.SIPAddr(), did, media.PCMU)
	if err != nil {
		t.Fatalf("call %s: %v", did, err)
	}
	return call
}

func callAndPress1(t *testing.T, sw *Switch, ctx context.Context, rtpMin int, did string) *siptest.Call {
	t.Helper()
	call := carrierCall(t, sw, ctx, rtpMin, did)
	time.Sleep(sw.snap.Load().prompts["welcome"].Duration() + 200*time.Millisecond)
	if err := call.Leg.SendDTMF(ctx, '1', 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	return call
}

// recordOf waits for the record of call id to be complete (the call over).
func recordOf(t *testing.T, sw *Switch, id string) store.CallRecord {
	t.Helper()
	var rec store.CallRecord
	waitFor(t, "call record", 5*time.Second, func() bool {
		recs, err := sw.Records().Recent(context.Background(), 5)
		for _, r := range recs {
			if err == nil && r.CallID == id && !r.InProgress() {
				rec = r
				return true
			}
		}
		return false
	})
	return rec
}

// A busy agent (486) is skipped for the next one; when the agent hangs up,
// the caller gets a BYE and the record says the agent ended it.
func TestBusyAgentThenNextAndAgentHangsUp(t *testing.T) {
	sw := startDemo(t, 44000)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	registerAgent(t, sw, "127.0.0.2", "1001", 44200, siptest.Busy) // longest idle: rung first
	time.Sleep(10 * time.Millisecond)
	second := registerAgent(t, sw, "127.0.0.3", "1003", 44300, siptest.Answer)

	call := callSales(t, sw, ctx, 44400)
	var agentCall *siptest.Call
	select {
	case agentCall = <-second.Answered:
	case <-ctx.Done():
		t.Fatal("1003 never answered after 1001 was busy")
	}
	time.Sleep(200 * time.Millisecond)
	if err := agentCall.Hangup(ctx); err != nil {
		t.Fatalf("agent BYE: %v", err)
	}
	select {
	case <-call.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("caller was not hung up after the agent's BYE")
	}
	rec := recordOf(t, sw, call.ID())
	if rec.Agent != "1003" || rec.HangupSide != "agent" || rec.HangupCause != "normal" {
		t.Errorf("record: agent %q, %s by %s; want 1003, normal by agent", rec.Agent, rec.HangupCause, rec.HangupSide)
	}
	if a, _ := sw.ACD().Snapshot().Agent("1001"); a.State.String() != "available" {
		t.Errorf("1001 after refusing is %s, want available", a.State)
	}
}

// An agent who does not answer within the ring timeout is CANCELled and the
// next agent rings; a caller who hangs up while an agent rings cancels it.
func TestRingTimeoutAndCallerAbandons(t *testing.T) {
	sw := startDemo(t, 45000, func(c *config.Config) { c.Queues["sales"].RingTimeout.Duration = 1500 * time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ringer := registerAgent(t, sw, "127.0.0.2", "1001", 45200, siptest.Ring)
	time.Sleep(10 * time.Millisecond)
	answerer := registerAgent(t, sw, "127.0.0.3", "1003", 45300, siptest.Answer)

	call := callSales(t, sw, ctx, 45400)
	select {
	case <-ringer.Cancelled:
	case <-ctx.Done():
		t.Fatal("1001 was not cancelled after the ring timeout")
	}
	select {
	case agentCall := <-answerer.Answered:
		// The phone's 200 is not yet the switch's connect: a BYE racing it
		// would rightly leave the agent out of the record.
		waitFor(t, "1003 connected", 2*time.Second, func() bool { return agentState(sw, "1003") == "busy" })
		_ = call.Hangup(ctx)
		<-agentCall.Done()
	case <-ctx.Done():
		t.Fatal("1003 was not rung after 1001's ring timeout")
	}
	if rec := recordOf(t, sw, call.ID()); rec.Agent != "1003" {
		t.Errorf("first call answered by %q, want 1003", rec.Agent)
	}

	// 1001 is now the longest idle again; the caller gives up while it rings.
	waitFor(t, "1003 back to available", 2*time.Second, func() bool {
		a, _ := sw.ACD().Snapshot().Agent("1003")
		return a.State.String() == "available"
	})
	call = callSales(t, sw, ctx, 45500)
	waitFor(t, "1001 reserved", 3*time.Second, func() bool {
		a, _ := sw.ACD().Snapshot().Agent("1001")
		return a.State.String() == "reserved"
	})
	time.Sleep(100 * time.Millisecond) // let the INVITE reach the phone
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ringer.Cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the ringing agent was not CANCELled when the caller hung up")
	}
	rec := recordOf(t, sw, call.ID())
	if rec.HangupCause != "caller-abandoned" || rec.HangupSide != "caller" || rec.Agent != "" || !rec.Answer.IsZero() {
		t.Errorf("abandoned record: %s by %s, agent %q, answer %v", rec.HangupCause, rec.HangupSide, rec.Agent, rec.Answer)
	}
	waitFor(t, "1001 available again", 2*time.Second, func() bool {
		a, _ := sw.ACD().Snapshot().Agent("1001")
		return a.State.String() == "available"
	})
}

// An agent registered over TCP is rung over the connection it opened (it
// listens on no TCP port, as behind NAT) and talks.
func TestAgentOverTCP(t *testing.T) {
	sw := startDemo(t, 46000)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	agent := siptest.NewPhone(t, "127.0.0.4", "1001", 46200, siptest.Answer)
	if res, err := agent.RegisterTCP(ctx, sw.SIPAddr(), "demo1001"); err != nil || res.StatusCode != 200 {
		t.Fatalf("register over TCP: %v %v", res, err)
	}
	if b, ok := sw.Registrar().Lookup("1001"); !ok || b.Transport != "TCP" {
		t.Fatalf("binding %+v, want TCP", b)
	}
	waitFor(t, "agent 1001 available", 2*time.Second, func() bool {
		a, ok := sw.ACD().Snapshot().Agent("1001")
		return ok && a.State.String() == "available"
	})
	call := callSales(t, sw, ctx, 46400)
	var agentCall *siptest.Call
	select {
	case agentCall = <-agent.Answered:
	case <-ctx.Done():
		t.Fatal("agent on TCP was never rung")
	}
	// The phone's in-dialog requests (its BYE) must come back over TCP:
	// our Contact says so.
	if c := agentCall.Invite().Contact(); c == nil || !strings.Contains(c.Address.String(), "transport=tcp") {
		t.Errorf("our Contact to a TCP phone is %v, want ;transport=tcp", c)
	}
	agentCall.Leg.PlayLoop(media.NewPrompt("agent-1000", media.Tone(1000, time.Second, 0.3)))
	time.Sleep(300 * time.Millisecond)
	call.Received.Reset()
	time.Sleep(700 * time.Millisecond)
	if f := dominant(call.Received.Samples()); f != 1000 {
		t.Errorf("caller heard %v Hz from the TCP agent, want 1000", f)
	}
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-agentCall.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("BYE did not reach the TCP agent")
	}
}

// A reload changes what new calls get; registered agents stay available.
func TestReloadKeepsAgentsAndRoutesNewCalls(t *testing.T) {
	sw := startDemo(t, 47000)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	agent := registerAgent(t, sw, "127.0.0.2", "1001", 47200, siptest.Answer)

	next := config.Default()
	next.SIP = sw.snap.Load().cfg.SIP
	next.Storage = sw.snap.Load().cfg.Storage
	next.Trunks[0].DIDs = []string{"+15550200"}
	if err := sw.Reload(next); err != nil {
		t.Fatal(err)
	}
	if a, _ := sw.ACD().Snapshot().Agent("1001"); a.State.String() != "available" {
		t.Fatalf("1001 after reload is %s, want available", a.State)
	}
	carrier := siptest.NewPhone(t, "127.0.0.1", "+15557777", 47400, siptest.Busy)
	if _, err := carrier.Call(ctx, sw.SIPAddr(), "+15550100", media.PCMU); err == nil {
		t.Fatal("the old DID still answers after the reload")
	}
	call := callAndPress1(t, sw, ctx, 47500, "+15550200")
	select {
	case <-agent.Answered:
	case <-ctx.Done():
		t.Fatal("agent registered before the reload was not rung after it")
	}
	_ = call.Hangup(ctx)
}

// A reload applies what [sip] can change live (user agent, realm, digest
// algorithms) and names, in the log, what only a restart changes.
func TestReloadAppliesSIPSettingsLive(t *testing.T) {
	var logs lockedBuffer
	sw := startDemoLogging(t, 47600, slog.New(slog.NewTextHandler(&logs, nil)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	next := *sw.snap.Load().cfg
	next.SIP.UserAgent, next.SIP.Realm = "hotline-reloaded", "reloaded-realm"
	next.SIP.Listen = "127.0.0.1:5999"
	next.RTP.PortMin = 30000
	if err := sw.Reload(&next); err != nil {
		t.Fatal(err)
	}
	phone := siptest.NewPhone(t, "127.0.0.2", "1001", 47800, siptest.Busy)
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: sw.SIPAddr().Addr().String(), Port: int(sw.SIPAddr().Port())})
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "1001", Host: "127.0.0.2", Port: int(phone.Addr.Port())}})
	res, err := phone.Do(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if h := res.GetHeader("Server"); h == nil || h.Value() != "hotline-reloaded" {
		t.Errorf("Server after reload: %v, want hotline-reloaded", h)
	}
	if h := res.GetHeader("WWW-Authenticate"); res.StatusCode != 401 || h == nil || !strings.Contains(h.Value(), `realm="reloaded-realm"`) {
		t.Errorf("challenge after reload: %d %v, want realm reloaded-realm", res.StatusCode, h)
	}
	for _, name := range []string{"sip.listen", "rtp.port_min"} {
		if !strings.Contains(logs.String(), "setting="+name) {
			t.Errorf("the log does not name %s as needing a restart:\n%s", name, logs.String())
		}
	}
	if strings.Contains(logs.String(), "setting=sip.user_agent") {
		t.Error("the log says user_agent needs a restart; it applies live")
	}
}

// lockedBuffer is a log sink tests can read while the switch writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A caller who presses a wrong key and then nothing hears the invalid
// prompt, the menu again, and after the last try goodbye and a BYE.
func TestMenuInvalidThenTimeoutsHangUp(t *testing.T) {
	sw := toneDemo(t, 48000, func(c *config.Config) {
		c.IVRs["main"].Nodes["menu"].Timeout.Duration = 300 * time.Millisecond
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	call := carrierCall(t, sw, ctx, 48200, "+15550100")
	waitFor(t, "the menu", 5*time.Second, func() bool { return slices.Contains(heardPrompts(call.Received), "menu") })
	if err := call.Leg.SendDTMF(ctx, '9', 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	select {
	case <-call.Done():
	case <-ctx.Done():
		t.Fatal("the switch never hung up after three failed tries")
	}
	// 9 cuts the menu short; invalid; two more tries that time out; goodbye.
	want := []string{"welcome", "menu", "invalid", "menu", "menu", "goodbye"}
	if got := heardPrompts(call.Received); !slices.Equal(got, want) {
		t.Errorf("the caller heard %q, want %q", got, want)
	}
	rec := recordOf(t, sw, call.ID())
	if rec.Digits != "9" || rec.Queue != "" || rec.HangupSide != "system" || rec.HangupCause != "ivr-hangup" {
		t.Errorf("record: digits %q queue %q, %s by %s; want 9, no queue, ivr-hangup by system", rec.Digits, rec.Queue, rec.HangupCause, rec.HangupSide)
	}
}
