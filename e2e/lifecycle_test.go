package e2e

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo"

	"github.com/hotline-pbx/hotline/media"
	"github.com/hotline-pbx/hotline/sip/siptest"
)

// drainingLine is what the daemon logs when a SIGTERM starts the drain of
// the tests' one call.
const drainingLine = `msg="draining: new calls are refused; waiting for calls in progress" calls=1`

// TestDaemonKill9LosesNothingCommitted kills the daemon with SIGKILL while
// an agent talks to a caller. The call's record is already in the database,
// open; the next start closes it as interrupted at its answer time, and the
// agent's registration comes back from the database: the next call rings
// the same phone although it never registered again.
func TestDaemonKill9LosesNothingCommitted(t *testing.T) {
	r := newLifecycleRig(t, 0)
	s := r.startWithCall()
	daemon, agent, call := s.daemon, s.agent, s.call
	r.checkTalking(call, "before the kill")
	callID := call.caller.ID()
	// The record is written at our answer and again when the agent answers:
	// wait for the second one to be committed.
	connected := r.recordOf(callID, "answered by the agent", func(rec callRecord) bool { return !rec.Answer.IsZero() })

	if err := daemon.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-daemon.done
	t.Logf("daemon killed: %v", daemon.waitErr)
	// The phones go on sending to a daemon that is gone; silence them so a
	// new call on the same ports hears nothing of this one.
	call.caller.Leg.Close()
	call.agent.Leg.Close()

	// Before any restart, `hotline cdr` shows the call in progress.
	before := r.recordOf(callID, "present", func(callRecord) bool { return true })
	if !before.End.IsZero() || before.HangupCause != "" {
		t.Errorf("after kill -9 the record is closed (end %v, cause %q); want it open", before.End, before.HangupCause)
	}
	if before.Agent != lifecycleAgent || before.Queue != "sales" || !before.Answer.Equal(connected.Answer) {
		t.Errorf("after kill -9: agent %q queue %q answer %v; want %s, sales, %v", before.Agent, before.Queue, before.Answer, lifecycleAgent, connected.Answer)
	}
	recordings := recordingFiles(t, r.recordings)
	if len(recordings) != 1 {
		t.Errorf("recordings after kill -9: %v, want the interrupted call's", recordings)
	}
	for _, path := range recordings {
		if st, err := os.Stat(path); err == nil {
			t.Logf("recording of the interrupted call: %s, %d bytes (its header is repaired by a later issue)", path, st.Size())
		}
		if before.RecordingPath != path {
			t.Errorf("the open record names recording %q; the call is recorded in %q", before.RecordingPath, path)
		}
	}

	invitesBefore := agent.Invites.Load()
	daemon = r.start()

	rec := r.recordOf(callID, "closed", closedRecord)
	checkSystemEnd(t, rec, "interrupted")
	if !rec.End.Equal(rec.Answer) {
		t.Errorf("interrupted record ends at %v, want its answer time %v", rec.End, rec.Answer)
	}
	if rec.TalkSeconds != rec.End.Sub(rec.Answer).Seconds() {
		t.Errorf("interrupted record: talk %.3f s, its answer and end say %.3f s", rec.TalkSeconds, rec.End.Sub(rec.Answer).Seconds())
	}
	if !rec.Start.Equal(before.Start) || rec.WaitSeconds != before.WaitSeconds {
		t.Errorf("closing changed the record: start %v wait %.3f, was %v %.3f", rec.Start, rec.WaitSeconds, before.Start, before.WaitSeconds)
	}

	// The agent's phone did not register again: a new call rings it.
	next := r.callAgent(s.carrier, agent)
	if n := agent.Invites.Load() - invitesBefore; n != 1 {
		t.Errorf("the agent's phone got %d INVITEs for the call after the restart, want 1", n)
	}
	r.checkTalking(next, "after the restart")
	if err := next.caller.Hangup(r.ctx); err != nil {
		t.Fatal(err)
	}
	waitHungUp(t, "agent", next.agent)
	r.waitLine(daemon, `msg="closed call records left open by a crash" records=1 cause=interrupted`)
	r.waitLine(daemon, `msg="registrations restored" part=sip live=1 stored=1`)
}

// TestDaemonSIGTERMEndsCalls stops the daemon with SIGTERM while a call is
// up: both phones get a BYE, the daemon exits 0 and the record says the
// system ended the call at shutdown.
func TestDaemonSIGTERMEndsCalls(t *testing.T) {
	r := newLifecycleRig(t, 1)
	s := r.startWithCall()
	r.checkTalking(s.call, "before SIGTERM")
	sendSignal(t, s.daemon, syscall.SIGTERM)
	r.endedAtShutdown(s)
}

// TestDaemonSIGTERMByeFromItsSIPAddress: the BYE that ends an agent's call
// at shutdown comes from the daemon's SIP address, like every other request
// to the phone (a phone behind NAT gets nothing from anywhere else), and the
// phone's 200 OK reaches the daemon: it is sent once.
func TestDaemonSIGTERMByeFromItsSIPAddress(t *testing.T) {
	r := newLifecycleRig(t, 5)
	daemon := r.start()
	agent := r.rawAgent()
	carrier := siptest.NewPhone(t, r.carrierIP, "+15550999", r.carrierRTP, siptest.Busy)
	caller := r.carrierCall(carrier)
	invite, heard := r.answerRaw(agent)
	if f := r.heard(caller); f != agentToneHz {
		t.Fatalf("the caller heard %v Hz, want the agent's %d Hz: the call is not up", f, agentToneHz)
	}
	if invite.From != r.sip {
		t.Fatalf("the INVITE came from %v, want the daemon's SIP address %v", invite.From, r.sip)
	}
	if n := len(heard.Samples()); n == 0 {
		t.Error("the agent's phone received no audio")
	}

	sendSignal(t, daemon, syscall.SIGTERM)
	isBye := byeOf(invite)
	bye, ok := agent.Next(20*time.Second, isBye)
	if !ok {
		t.Fatal("the agent's phone got no BYE")
	}
	agent.Respond(bye, 200, "OK", nil)
	if bye.From != r.sip {
		t.Errorf("the BYE came from %v, not from the daemon's SIP address %v: its SIP socket closed before the calls ended", bye.From, r.sip)
	}
	waitHungUp(t, "caller", caller)
	if code := exitStatus(t, daemon, 30*time.Second); code != 0 {
		t.Errorf("the daemon exited with status %d after SIGTERM, want 0", code)
	}
	if n := agent.Count(isBye); n != 0 {
		t.Errorf("the BYE was sent again %d times after the phone answered it: the 200 OK never reached the daemon", n)
	}
}

// TestDaemonDrainLetsCallsFinish runs `hotline run --drain 30s`: after
// SIGTERM a new call gets 503 with Retry-After, the call in progress keeps
// its audio, and when its caller hangs up the daemon exits 0 by itself.
func TestDaemonDrainLetsCallsFinish(t *testing.T) {
	r := newLifecycleRig(t, 2)
	s := r.startWithCall("--drain", "30s")
	daemon, agent, call := s.daemon, s.agent, s.call

	sendSignal(t, daemon, syscall.SIGTERM)
	r.waitLine(daemon, drainingLine)
	_, err := s.carrier.Call(r.ctx, r.sip, lifecycleDID, media.PCMA)
	var refused *sipgo.ErrDialogResponse
	switch {
	case !errors.As(err, &refused):
		t.Errorf("a new call while draining: %v, want 503", err)
	case refused.Res.StatusCode != 503 || refused.Res.GetHeader("Retry-After") == nil:
		t.Errorf("a new call while draining got %q, want 503 with Retry-After", refused.Res.StartLine())
	}
	r.checkTalking(call, "while draining")
	if invites := agent.Invites.Load(); invites != 1 {
		t.Errorf("the agent's phone got %d INVITEs, want 1: the refused call was offered", invites)
	}

	if err := call.caller.Hangup(r.ctx); err != nil {
		t.Fatal(err)
	}
	waitHungUp(t, "agent", call.agent)
	// Well within the 30 s drain: the daemon noticed the last call ended.
	if code := exitStatus(t, daemon, 20*time.Second); code != 0 {
		t.Errorf("the daemon exited with status %d after draining, want 0", code)
	}
	rec := r.recordOf(call.caller.ID(), "closed", closedRecord)
	if rec.HangupCause != "normal" || rec.HangupSide != "caller" {
		t.Errorf("record: cause %q side %q, want normal by caller", rec.HangupCause, rec.HangupSide)
	}
	if recs := r.records(); len(recs) != 1 {
		t.Errorf("%d call records, want 1: the refused call has none", len(recs))
	}
}

// TestDaemonSecondSIGTERMEndsTheDrain: while `--drain 30s` waits for a call,
// a second SIGTERM ends it at once.
func TestDaemonSecondSIGTERMEndsTheDrain(t *testing.T) {
	r := newLifecycleRig(t, 3)
	s := r.startWithCall("--drain", "30s")
	sendSignal(t, s.daemon, syscall.SIGTERM)
	r.waitLine(s.daemon, drainingLine)
	select {
	case <-s.call.caller.Done():
		t.Fatal("the first SIGTERM of a drain ended the call")
	default:
	}
	sendSignal(t, s.daemon, syscall.SIGTERM)
	r.endedAtShutdown(s)
	r.waitLine(s.daemon, `msg="second signal; ending the calls left now" calls=1`)
}

// TestDaemonRestoredBindingQualified: a registration restored at start-up
// whose phone no longer answers OPTIONS is not rung; the caller waits in
// the queue until the phone answers a probe again, and only then rings it.
func TestDaemonRestoredBindingQualified(t *testing.T) {
	r := newLifecycleRig(t, 4)
	daemon := r.start()
	agent := r.agent()
	sendSignal(t, daemon, syscall.SIGTERM)
	if code := exitStatus(t, daemon, 20*time.Second); code != 0 {
		t.Fatalf("the daemon exited with status %d, want 0", code)
	}

	agent.SetSilent(true)
	probes := agent.OptionsReceived()
	daemon = r.start()
	r.waitLine(daemon, `msg="registrations restored" part=sip live=1 stored=1`)
	r.waitLine(daemon, `msg="agent presence" part=sip agent=1001 presence=unreachable`)
	if agent.OptionsReceived() == probes {
		t.Fatal("the restored binding became unreachable without being probed")
	}

	carrier := siptest.NewPhone(t, r.carrierIP, "+15550999", r.carrierRTP, siptest.Busy)
	caller := r.carrierCall(carrier)
	r.waitLine(daemon, `msg=queued`)
	// Two more probes unanswered while the caller waits: no ring.
	r.waitProbes(agent, agent.OptionsReceived()+2)
	if n := agent.Invites.Load(); n != 0 {
		t.Fatalf("the phone that stopped answering OPTIONS got %d INVITEs", n)
	}

	// The phone answers again: the waiting caller reaches it.
	agent.SetSilent(false)
	answered := r.answeredBy(agent)
	if n := agent.Invites.Load(); n != 1 {
		t.Errorf("the phone got %d INVITEs, want 1", n)
	}
	r.checkTalking(talkingCall{caller: caller, agent: answered}, "after the phone came back")
	if err := caller.Hangup(r.ctx); err != nil {
		t.Fatal(err)
	}
	waitHungUp(t, "agent", answered)
}
