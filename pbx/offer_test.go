package pbx

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/hotline-pbx/hotline/config"
	"github.com/hotline-pbx/hotline/media"
	hsip "github.com/hotline-pbx/hotline/sip"
	"github.com/hotline-pbx/hotline/sip/siptest"
)

// Offers and rings against phones that misbehave the way real ones do. The
// agent here is a RawPhone: it answers nothing unless the test says so, so
// each race is played out in a fixed order.

// agentState is the ACD's state of an agent, by name.
func agentState(sw *Switch, id string) string {
	a, _ := sw.ACD().Snapshot().Agent(id)
	return a.State.String()
}

// rawAgent registers a RawPhone as agent id and waits until it is offered calls.
func rawAgent(t *testing.T, sw *Switch, ip, id string) *siptest.RawPhone {
	t.Helper()
	p := siptest.NewRawPhone(t, ip, id)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Register(ctx, sw.SIPAddr(), "demo"+id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "agent "+id+" available", 2*time.Second, func() bool { return agentState(sw, id) == "available" })
	return p
}

// answerFor is the SDP a raw phone answers the switch's offer with.
func answerFor(t *testing.T, invite siptest.Received, at string) []byte {
	t.Helper()
	offer, err := hsip.ParseSDP(invite.Request().Body())
	if err != nil {
		t.Fatalf("switch's offer: %v", err)
	}
	return hsip.AnswerSDP(netip.MustParseAddrPort(at), offer)
}

// rungRawAgent starts the demo, registers a raw phone as agent 1001, calls
// sales and returns the INVITE the phone got; the phone has not answered.
func rungRawAgent(t *testing.T, ctx context.Context, rtpMin int, ip string) (*Switch, *siptest.RawPhone, *siptest.Call, siptest.Received) {
	t.Helper()
	sw := startDemo(t, rtpMin)
	phone := rawAgent(t, sw, ip, "1001")
	call := callSales(t, sw, ctx, rtpMin+200)
	invite, ok := phone.Next(5*time.Second, siptest.Method(sip.INVITE))
	if !ok {
		t.Fatal("agent never rung")
	}
	return sw, phone, call, invite
}

// otherInvites counts INVITEs that are not retransmissions of first.
func otherInvites(p *siptest.RawPhone, first siptest.Received) int {
	callID := first.Request().CallID().Value()
	return p.Count(func(m sip.Message) bool {
		req, ok := m.(*sip.Request)
		return ok && req.Method == sip.INVITE && req.CallID().Value() != callID
	})
}

// A caller who hangs up while the agent's phone has said nothing yet: no
// CANCEL may go out before a provisional response (RFC 3261 §9.1), the
// agent stays reserved, and the CANCEL follows the phone's first 180.
func TestCallerLeavesWhileAgentPhoneSilent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sw, phone, call, invite := rungRawAgent(t, ctx, 50000, "127.0.8.2")
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	rec := recordOf(t, sw, call.ID())
	if rec.HangupCause != "caller-abandoned" || rec.End.IsZero() {
		t.Errorf("record while the phone is silent: %s, end %v; want caller-abandoned, ended", rec.HangupCause, rec.End)
	}
	if call := rec.End.Sub(rec.Start).Seconds(); rec.WaitSeconds <= 0 || rec.WaitSeconds > call {
		t.Errorf("wait %.3f s for a call of %.3f s", rec.WaitSeconds, call)
	}
	if _, sent := phone.Next(700*time.Millisecond, siptest.Method(sip.CANCEL)); sent {
		t.Fatal("CANCEL sent before the phone sent any provisional response")
	}
	if s := agentState(sw, "1001"); s != "reserved" {
		t.Errorf("agent is %s while its phone may still ring, want reserved", s)
	}

	phone.Respond(invite, 180, "Ringing", nil)
	cancelReq, ok := phone.Next(3*time.Second, siptest.Method(sip.CANCEL))
	if !ok {
		t.Fatal("no CANCEL after the phone's 180")
	}
	phone.Respond(cancelReq, 200, "OK", nil)
	phone.Respond(invite, 487, "Request Terminated", nil)
	if _, ok := phone.Next(3*time.Second, siptest.Method(sip.ACK)); !ok {
		t.Error("the 487 was not ACKed")
	}
	waitFor(t, "agent available after the CANCEL", 3*time.Second, func() bool { return agentState(sw, "1001") == "available" })
	if n := otherInvites(phone, invite); n != 0 {
		t.Errorf("%d more INVITEs for a caller who left", n)
	}
}

// A phone that answers 200 after the caller left (its CANCEL could not be
// sent yet) gets ACK, then BYE; the agent is then free.
func TestLateAnswerAfterCallerLeftIsAckedAndHungUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sw, phone, call, invite := rungRawAgent(t, ctx, 50400, "127.0.8.3")
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	recordOf(t, sw, call.ID()) // the caller is gone
	phone.Respond(invite, 200, "OK", answerFor(t, invite, "127.0.8.3:50700"))
	first, ok := phone.Next(3*time.Second, func(m sip.Message) bool {
		req, ok := m.(*sip.Request)
		return ok && (req.Method == sip.ACK || req.Method == sip.BYE)
	})
	if !ok || first.Request().Method != sip.ACK {
		t.Fatalf("after the late 200: first request %v, want ACK", first.Msg)
	}
	bye, ok := phone.Next(3*time.Second, siptest.Method(sip.BYE))
	if !ok {
		t.Fatal("late answer was not hung up")
	}
	phone.Respond(bye, 200, "OK", nil)
	waitFor(t, "agent available after the late answer", 3*time.Second, func() bool { return agentState(sw, "1001") == "available" })
	if rec := recordOf(t, sw, call.ID()); rec.Agent != "" || !rec.Answer.IsZero() {
		t.Errorf("record says agent %q answered at %v; the caller had left", rec.Agent, rec.Answer)
	}
}

// A 200 that crosses our CANCEL is ACKed and hung up too.
func TestAnswerCrossingCancel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sw, phone, call, invite := rungRawAgent(t, ctx, 50800, "127.0.8.4")
	phone.Respond(invite, 180, "Ringing", nil)
	time.Sleep(100 * time.Millisecond) // the 180 arrives before the caller leaves
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	cancelReq, ok := phone.Next(3*time.Second, siptest.Method(sip.CANCEL))
	if !ok {
		t.Fatal("no CANCEL for a ringing phone whose caller left")
	}
	// The phone had already answered: 200 to the INVITE, then to the CANCEL
	// a 481-free 200 as RFC 3261 §9.2 allows.
	phone.Respond(invite, 200, "OK", answerFor(t, invite, "127.0.8.4:51100"))
	phone.Respond(cancelReq, 200, "OK", nil)
	if _, ok := phone.Next(3*time.Second, siptest.Method(sip.ACK)); !ok {
		t.Fatal("200 crossing the CANCEL was not ACKed")
	}
	bye, ok := phone.Next(3*time.Second, siptest.Method(sip.BYE))
	if !ok {
		t.Fatal("200 crossing the CANCEL was not hung up")
	}
	phone.Respond(bye, 200, "OK", nil)
	waitFor(t, "agent available", 3*time.Second, func() bool { return agentState(sw, "1001") == "available" })
}

// A phone that answers 486 to everything is rung once while one caller
// waits, not in a loop: busy keeps it out of offers for busy_backoff.
func TestLoneBusyAgentIsRungOnce(t *testing.T) {
	sw := startDemo(t, 51200, func(c *config.Config) {
		c.ACD.BusyBackoff.Duration = time.Hour
		c.Queues["sales"].Retry.Duration = 100 * time.Millisecond
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	agent := registerAgent(t, sw, "127.0.8.5", "1001", 51400, siptest.Busy)
	call := callSales(t, sw, ctx, 51600)
	call.Leg.PlayLoop(tonePrompt(440)) // a live caller sends audio
	waitFor(t, "the first ring", 5*time.Second, func() bool { return agent.Invites.Load() >= 1 })
	time.Sleep(3 * time.Second) // the caller waits on; retry is 100 ms
	if n := agent.Invites.Load(); n != 1 {
		t.Errorf("a lone busy agent got %d INVITEs while one caller waited 3 s, want 1", n)
	}
	select {
	case <-call.Done():
		t.Fatal("the caller was hung up")
	default:
	}
}

// An agent with two phones (a desk phone and a softphone) has both rung at
// once; the first to answer takes the call and the other is CANCELled.
// When one phone unregisters, the agent stays reachable on the other.
func TestAgentWithTwoDevices(t *testing.T) {
	sw := startDemo(t, 55000)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	desk := registerAgent(t, sw, "127.0.8.11", "1001", 55200, siptest.Ring)
	soft := registerAgent(t, sw, "127.0.8.12", "1001", 55400, siptest.Answer)
	if n := len(sw.Registrar().Devices("1001")); n != 2 {
		t.Fatalf("agent 1001 has %d reachable devices, want 2", n)
	}
	call := callSales(t, sw, ctx, 55600)
	var ac *siptest.Call
	select {
	case ac = <-soft.Answered:
	case <-ctx.Done():
		t.Fatal("the softphone was never rung")
	}
	select {
	case <-desk.Cancelled:
	case <-ctx.Done():
		t.Fatal("the desk phone kept ringing after the softphone answered")
	}
	if desk.Invites.Load() != 1 || soft.Invites.Load() != 1 {
		t.Errorf("INVITEs: desk %d, softphone %d; want one each, at once", desk.Invites.Load(), soft.Invites.Load())
	}
	_ = call.Hangup(ctx)
	<-ac.Done()

	// The desk phone goes away for good: the softphone still gets calls.
	if res, err := desk.Unregister(ctx, sw.SIPAddr(), "demo1001"); err != nil || res.StatusCode != 200 {
		t.Fatalf("unregister the desk phone: %v %v", res, err)
	}
	waitFor(t, "agent 1001 available", 3*time.Second, func() bool { return agentState(sw, "1001") == "available" })
	call = callSales(t, sw, ctx, 55800)
	select {
	case ac = <-soft.Answered:
	case <-ctx.Done():
		t.Fatal("after the desk phone unregistered, the softphone was not rung")
	}
	if desk.Invites.Load() != 1 {
		t.Errorf("the unregistered desk phone was rung again")
	}
	_ = call.Hangup(ctx)
	<-ac.Done()
}

// An agent who lets max_no_answer rings go unanswered is paused with reason
// "no-answer", and is not rung while paused; dialling *48 from the phone
// (digest-authenticated) makes them ready again. Codes are for agents
// only: an unknown user is challenged like a known one and refused.
func TestNoAnswerPauseUndoneByTheAgent(t *testing.T) {
	sw := startDemo(t, 56200, func(c *config.Config) {
		c.ACD.MaxNoAnswer = 1
		c.Queues["sales"].RingTimeout.Duration = 500 * time.Millisecond
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	agent := registerAgent(t, sw, "127.0.8.13", "1001", 56400, siptest.Ring)
	call := callSales(t, sw, ctx, 56600)
	call.Leg.PlayLoop(tonePrompt(440))
	waitFor(t, "agent paused", 5*time.Second, func() bool {
		a, _ := sw.ACD().Snapshot().Agent("1001")
		return a.State.String() == "paused" && a.PauseReason == "no-answer"
	})
	time.Sleep(time.Second) // the caller keeps waiting
	if n := agent.Invites.Load(); n != 1 {
		t.Errorf("a paused agent was rung: %d INVITEs, want 1", n)
	}

	if _, err := agent.Call(ctx, sw.SIPAddr(), "*48", media.PCMU); err == nil {
		t.Fatal("*48 without credentials was answered")
	}
	stranger := siptest.NewPhone(t, "127.0.8.14", "9999", 56800, siptest.Busy)
	if _, err := stranger.CallAuth(ctx, sw.SIPAddr(), "*48", "guess"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("an unknown user dialling *48: %v, want 403", err)
	}
	if _, err := agent.CallAuth(ctx, sw.SIPAddr(), "+15551234", "demo1001"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("an agent dialling out: %v, want 403 (nothing dials out)", err)
	}
	ready, err := agent.CallAuth(ctx, sw.SIPAddr(), "*48", "demo1001")
	if err != nil {
		t.Fatalf("*48: %v", err)
	}
	<-ready.Done() // the switch hangs up after its tone
	if f := media.DominantFrequency(ready.Received.Samples(), 400, 880, 1320); f != 880 && f != 1320 {
		t.Errorf("*48 played %v Hz, want the confirmation beeps (880/1320)", f)
	}
	waitFor(t, "the waiting caller rung on the agent's phone again", 5*time.Second, func() bool { return agent.Invites.Load() == 2 })
	_ = call.Hangup(ctx)
}

// A phone that hangs up the moment our ACK arrives (as early as RFC 3261
// §15 lets it) finds its dialog, because we store it before the ACK goes
// out: the BYE gets 200, not 481, and the caller is hung up too.
func TestAgentByeRightAfterAnswer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sw, phone, call, invite := rungRawAgent(t, ctx, 59000, "127.0.8.17")
	phone.Respond(invite, 200, "OK", answerFor(t, invite, "127.0.8.17:59100"))
	if _, ok := phone.Next(3*time.Second, siptest.Method(sip.ACK)); !ok {
		t.Fatal("the 200 was not ACKed")
	}
	phone.Bye(invite)
	res, ok := phone.Next(3*time.Second, siptest.Status(0, sip.BYE))
	if !ok {
		t.Fatal("no answer to the BYE sent right after the 200")
	}
	if code := res.Msg.(*sip.Response).StatusCode; code != 200 {
		t.Errorf("BYE right after the 200 answered %d, want 200", code)
	}
	select {
	case <-call.Done():
	case <-ctx.Done():
		t.Fatal("the caller was not hung up after the agent's BYE")
	}
	waitFor(t, "agent available", 3*time.Second, func() bool { return agentState(sw, "1001") == "available" })
}
