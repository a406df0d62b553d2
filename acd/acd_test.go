package acd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// startACD runs an ACD with no back-off, retry or pause (Settings{}), with a
// fake clock at t0 until the test ends.
func startACD(t *testing.T, queues []QueueSpec, agents []AgentSpec) (*ACD, *fakeClock) {
	t.Helper()
	return startACDWith(t, Settings{}, queues, agents)
}

func startACDWith(t *testing.T, settings Settings, queues []QueueSpec, agents []AgentSpec) (*ACD, *fakeClock) {
	t.Helper()
	clock := &fakeClock{now: t0}
	a := New(settings, queues, agents, clock, nil)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		a.Run(ctx)
		close(stopped)
	}()
	t.Cleanup(func() {
		cancel()
		<-stopped
	})
	return a, clock
}

var (
	salesQueue   = QueueSpec{Name: "sales", Skill: "sales"}
	supportQueue = QueueSpec{Name: "support", Skill: "support"}
)

// expectOffer waits for every earlier event to be applied (Snapshot goes through
// the owner in order) and then requires an offer to be ready on ch.
func expectOffer(t *testing.T, a *ACD, ch <-chan Offer, wantCall, wantAgent string) {
	t.Helper()
	a.Snapshot()
	select {
	case o, ok := <-ch:
		if !ok {
			t.Fatalf("offer channel of %s closed, want an offer to %s", wantCall, wantAgent)
		}
		if o.CallID != wantCall || o.AgentID != wantAgent {
			t.Fatalf("got offer %+v, want call %s to agent %s", o, wantCall, wantAgent)
		}
	default:
		t.Fatalf("no offer for %s, want one to %s", wantCall, wantAgent)
	}
	checkInvariants(t, a.Snapshot())
}

func expectNoOffer(t *testing.T, a *ACD, ch <-chan Offer) {
	t.Helper()
	a.Snapshot()
	select {
	case o, ok := <-ch:
		if ok {
			t.Fatalf("unexpected offer %+v", o)
		}
	default:
	}
}

func expectClosed(t *testing.T, a *ACD, ch <-chan Offer) {
	t.Helper()
	a.Snapshot()
	select {
	case o, ok := <-ch:
		if ok {
			t.Fatalf("unexpected offer %+v, want the channel closed", o)
		}
	default:
		t.Fatal("offer channel still open")
	}
}

// reachableInTurn makes the agents reachable one second apart, the first at
// the clock's now: the first is then the longest idle.
func reachableInTurn(a *ACD, clock *fakeClock, ids ...string) {
	for i, id := range ids {
		if i > 0 {
			a.Snapshot()
			clock.Advance(time.Second)
		}
		a.Presence(id, PresenceReachable)
	}
	a.Snapshot()
}

func mustJoin(t *testing.T, a *ACD, callID, queue string) <-chan Offer {
	t.Helper()
	ch, err := a.Join(callID, queue)
	if err != nil {
		t.Fatalf("Join(%s, %s): %v", callID, queue, err)
	}
	return ch
}

func agentStatus(t *testing.T, a *ACD, id string) AgentStatus {
	t.Helper()
	st, ok := a.Snapshot().Agent(id)
	if !ok {
		t.Fatalf("agent %s not in snapshot", id)
	}
	return st
}

func expectAgent(t *testing.T, a *ACD, id string, state AgentState, callID string, idleSince time.Time) {
	t.Helper()
	st := agentStatus(t, a, id)
	if st.State != state || st.CallID != callID || !st.IdleSince.Equal(idleSince) {
		t.Fatalf("agent %s = %s call %q idle since %s, want %s call %q idle since %s",
			id, st.State, st.CallID, st.IdleSince.Format(time.TimeOnly),
			state, callID, idleSince.Format(time.TimeOnly))
	}
}

func checkInvariants(t testing.TB, snap Snapshot) {
	t.Helper()
	if err := invariantError(snap); err != nil {
		t.Fatal(err)
	}
}

// invariantError checks the reservation rules on a snapshot: a Busy agent
// belongs to exactly one call that names it, a Reserved one too unless that
// call has left (its phone still rings), and no call names two agents or
// shares its agent with another call.
func invariantError(snap Snapshot) error {
	callAgent := map[string]string{}  // call -> agent it names
	callWaiting := map[string]bool{}  // call -> not answered yet
	agentOwner := map[string]string{} // agent -> call naming it
	note := func(c CallStatus, waiting bool) error {
		callWaiting[c.ID] = waiting
		if c.AgentID == "" {
			return nil
		}
		if other, dup := agentOwner[c.AgentID]; dup {
			return fmt.Errorf("agent %s named by calls %s and %s", c.AgentID, other, c.ID)
		}
		agentOwner[c.AgentID] = c.ID
		callAgent[c.ID] = c.AgentID
		return nil
	}
	for _, q := range snap.Queues {
		for _, c := range q.Waiting {
			if err := note(c, true); err != nil {
				return err
			}
		}
		for _, c := range q.Answered {
			if err := note(c, false); err != nil {
				return err
			}
		}
	}
	for _, ag := range snap.Agents {
		if _, present := callWaiting[ag.CallID]; ag.State == AgentReserved && ag.CallID != "" && !present {
			continue // the call left while the phone rang
		}
		switch ag.State {
		case AgentReserved, AgentBusy:
			if ag.CallID == "" || callAgent[ag.CallID] != ag.ID {
				return fmt.Errorf("agent %s is %s for call %q, but that call names agent %q",
					ag.ID, ag.State, ag.CallID, callAgent[ag.CallID])
			}
			if (ag.State == AgentReserved) != callWaiting[ag.CallID] {
				return fmt.Errorf("agent %s is %s but call %s waiting=%v", ag.ID, ag.State, ag.CallID, callWaiting[ag.CallID])
			}
		case AgentAvailable, AgentPaused:
			if ag.CallID != "" {
				return fmt.Errorf("available agent %s still holds call %s", ag.ID, ag.CallID)
			}
		}
	}
	for call, agent := range callAgent {
		st, ok := snap.Agent(agent)
		if !ok || st.CallID != call {
			return fmt.Errorf("call %s names agent %s, who holds call %q", call, agent, st.CallID)
		}
	}
	return nil
}

func TestLongestIdleThenNextAgentThenStartOver(t *testing.T) {
	// Bob is idle since t0 and ann since t0+1s: bob is offered first although
	// ann sorts first by ID.
	a, clock := startACD(t, []QueueSpec{salesQueue}, []AgentSpec{{ID: "ann", Skills: []string{"sales"}}, {ID: "bob", Skills: []string{"sales"}}})
	reachableInTurn(a, clock, "bob", "ann")
	clock.Advance(10 * time.Second)

	ch := mustJoin(t, a, "c1", "sales")
	expectOffer(t, a, ch, "c1", "bob")
	expectAgent(t, a, "bob", AgentReserved, "c1", at(0))

	// Ring timeout: the next agent.
	if a.OfferResult("c1", "bob", OfferNoAnswer) {
		t.Fatal("a ring timeout reported the call connected")
	}
	expectOffer(t, a, ch, "c1", "ann")
	expectAgent(t, a, "bob", AgentAvailable, "", at(0)) // a missed ring keeps the idle time

	// Both tried: start over with the longest idle.
	a.OfferResult("c1", "ann", OfferNoAnswer)
	expectOffer(t, a, ch, "c1", "bob")

	if !a.OfferResult("c1", "bob", OfferAnswered) {
		t.Fatal("answer to the live offer did not connect")
	}
	expectNoOffer(t, a, ch)
	expectAgent(t, a, "bob", AgentBusy, "c1", at(0))
	if q, _ := a.Snapshot().Queue("sales"); len(q.Waiting) != 0 || len(q.Answered) != 1 || q.Answered[0].AgentID != "bob" {
		t.Fatalf("sales queue = %+v, want c1 answered by bob", q)
	}

	// Leave of an answered call frees the agent, idle from now.
	clock.Advance(30 * time.Second)
	a.Leave("c1")
	expectClosed(t, a, ch)
	expectAgent(t, a, "bob", AgentAvailable, "", at(41))
	expectAgent(t, a, "ann", AgentAvailable, "", at(1))
}

func TestCallerLeavesDuringOfferAgentStaysReservedUntilResult(t *testing.T) {
	a, clock := startACD(t, []QueueSpec{salesQueue}, []AgentSpec{{ID: "ann", Skills: []string{"sales"}}})
	a.Presence("ann", PresenceReachable)
	ch := mustJoin(t, a, "c1", "sales")
	expectOffer(t, a, ch, "c1", "ann")

	// The caller hangs up while ann's phone rings: no more offers for c1, but
	// ann is still reserved until the call layer has resolved her leg.
	clock.Advance(5 * time.Second)
	a.Leave("c1")
	expectClosed(t, a, ch)
	expectAgent(t, a, "ann", AgentReserved, "c1", at(0))
	ch2 := mustJoin(t, a, "c2", "sales")
	expectNoOffer(t, a, ch2)

	// The leg was cancelled: ann is free, her idle time unchanged, and takes c2.
	if a.OfferResult("c1", "ann", OfferAbandoned) {
		t.Fatal("result for a call that left reported it connected")
	}
	expectOffer(t, a, ch2, "c2", "ann")
	a.Leave("c1") // a second Leave is harmless
	expectAgent(t, a, "ann", AgentReserved, "c2", at(0))
}

func TestLateAnswerForCallThatLeftFreesAgent(t *testing.T) {
	a, clock := startACDWith(t, Settings{MaxNoAnswer: 3}, []QueueSpec{salesQueue}, []AgentSpec{{ID: "ann", Skills: []string{"sales"}}})
	a.Presence("ann", PresenceReachable)
	ch := mustJoin(t, a, "c1", "sales")
	expectOffer(t, a, ch, "c1", "ann")
	a.OfferResult("c1", "ann", OfferNoAnswer)
	expectOffer(t, a, ch, "c1", "ann")
	clock.Advance(5 * time.Second)
	a.Leave("c1")
	clock.Advance(time.Second)

	// The 200 came after the caller left: the call layer must ACK and hang up.
	if a.OfferResult("c1", "ann", OfferAnswered) {
		t.Fatal("late answer for a call that left reported it connected")
	}
	st := agentStatus(t, a, "ann")
	if st.State != AgentAvailable || st.CallID != "" || !st.IdleSince.Equal(at(6)) || st.NoAnswers != 0 {
		t.Fatalf("ann = %+v, want available, idle since the late answer at 6s, no-answers reset", st)
	}
	if a.OfferResult("c1", "ann", OfferAnswered) {
		t.Fatal("a repeated late answer reported the call connected")
	}
}

func TestLeaveBeforeOfferReadFreesAgentAtOnce(t *testing.T) {
	a, clock := startACD(t, []QueueSpec{salesQueue}, []AgentSpec{{ID: "ann", Skills: []string{"sales"}}})
	a.Presence("ann", PresenceReachable)
	ch := mustJoin(t, a, "c1", "sales")
	a.Snapshot() // the offer to ann waits in the channel, unread
	clock.Advance(time.Second)
	a.Leave("c1") // nothing rings: no result will ever come
	expectClosed(t, a, ch)
	expectAgent(t, a, "ann", AgentAvailable, "", at(0))
}

func TestAgentWithTwoSkillsServesOlderCallFirst(t *testing.T) {
	a, clock := startACD(t, []QueueSpec{salesQueue, supportQueue},
		[]AgentSpec{{ID: "xia", Skills: []string{"sales", "support"}}})
	support := mustJoin(t, a, "s1", "support")
	clock.Advance(time.Second)
	sales := mustJoin(t, a, "s2", "sales")
	expectNoOffer(t, a, support)

	a.Presence("xia", PresenceReachable)
	expectOffer(t, a, support, "s1", "xia")
	expectNoOffer(t, a, sales)

	a.OfferResult("s1", "xia", OfferAnswered)
	a.Leave("s1")
	expectOffer(t, a, sales, "s2", "xia")
}

// TestAgentAwayDuringOfferReroutes: a phone that unregisters, or stops
// answering qualify, loses the offer ringing on it; the call rings the next
// agent at once.
func TestAgentAwayDuringOfferReroutes(t *testing.T) {
	for _, away := range []Presence{PresenceOffline, PresenceUnreachable} {
		t.Run(away.String(), func(t *testing.T) {
			a, clock := startACD(t, []QueueSpec{salesQueue}, []AgentSpec{{ID: "ann", Skills: []string{"sales"}}, {ID: "bob", Skills: []string{"sales"}}})
			reachableInTurn(a, clock, "ann", "bob")

			ch := mustJoin(t, a, "c1", "sales")
			expectOffer(t, a, ch, "c1", "ann")
			a.Presence("ann", away)
			expectOffer(t, a, ch, "c1", "bob")
			if a.OfferResult("c1", "ann", OfferAnswered) {
				t.Fatal("answer from a withdrawn offer was applied")
			}
			expectAgent(t, a, "ann", map[Presence]AgentState{PresenceOffline: AgentOffline, PresenceUnreachable: AgentUnreachable}[away], "", at(0))
			expectAgent(t, a, "bob", AgentReserved, "c1", at(1))

			// A withdrawn offer the call has not read yet is taken back: the call sees
			// only the offer to the next agent.
			ch2 := mustJoin(t, a, "c2", "sales")
			a.OfferResult("c1", "bob", OfferAnswered) // c1 keeps bob; c2 has nobody yet
			expectNoOffer(t, a, ch2)
			a.Presence("ann", PresenceReachable)
			a.Snapshot()
			a.Presence("ann", away) // before c2 read its offer to ann
			a.Leave("c1")           // bob free again
			expectOffer(t, a, ch2, "c2", "bob")
			expectNoOffer(t, a, ch2)
		})
	}
}

// TestResultOfWithdrawnOfferAfterSameAgentReoffered: ann's phone flaps while
// ringing for c1, and c1 is offered to ann again before the call layer has
// reported the first leg. That report must not end the new offer.
func TestResultOfWithdrawnOfferAfterSameAgentReoffered(t *testing.T) {
	a, _ := startACD(t, []QueueSpec{salesQueue}, []AgentSpec{{ID: "ann", Skills: []string{"sales"}}})
	a.Presence("ann", PresenceReachable)
	ch := mustJoin(t, a, "c1", "sales")
	expectOffer(t, a, ch, "c1", "ann")
	a.Presence("ann", PresenceUnreachable)
	a.Presence("ann", PresenceReachable) // c1 is offered to ann again, unread

	if a.OfferResult("c1", "ann", OfferNoAnswer) {
		t.Fatal("result of the withdrawn leg connected the call")
	}
	expectDescribed(t, a, "ann", "reserved call=c1 idle=0s")
	expectOffer(t, a, ch, "c1", "ann")
	if !a.OfferResult("c1", "ann", OfferAnswered) {
		t.Fatal("answer to the new offer did not connect")
	}
}

func TestWithdrawnOfferIsTakenBackFromTheChannel(t *testing.T) {
	a, _ := startACD(t, []QueueSpec{salesQueue}, []AgentSpec{{ID: "ann", Skills: []string{"sales"}}})
	a.Presence("ann", PresenceReachable)
	ch := mustJoin(t, a, "c1", "sales")
	a.Snapshot() // the offer to ann is now in the channel, unread
	a.Presence("ann", PresenceOffline)
	expectNoOffer(t, a, ch) // nobody left to ring: the call must not ring ann
	if q, _ := a.Snapshot().Queue("sales"); len(q.Waiting) != 1 || q.Waiting[0].AgentID != "" {
		t.Fatalf("sales queue = %+v, want c1 waiting without an offer", q)
	}
}

func TestAgentOfflineWhileBusy(t *testing.T) {
	a, clock := startACD(t, []QueueSpec{salesQueue}, []AgentSpec{{ID: "ann", Skills: []string{"sales"}}})
	a.Presence("ann", PresenceReachable)
	ch := mustJoin(t, a, "c1", "sales")
	expectOffer(t, a, ch, "c1", "ann")
	a.OfferResult("c1", "ann", OfferAnswered)

	// A missed qualify during the call, then back: still busy with the call.
	a.Presence("ann", PresenceOffline)
	expectAgent(t, a, "ann", AgentOffline, "c1", at(0))
	a.Presence("ann", PresenceReachable)
	expectAgent(t, a, "ann", AgentBusy, "c1", at(0))

	// Offline when the call ends: stays offline until it registers again.
	a.Presence("ann", PresenceOffline)
	clock.Advance(time.Minute)
	a.Leave("c1")
	expectAgent(t, a, "ann", AgentOffline, "", at(60))
	clock.Advance(time.Minute)
	a.Presence("ann", PresenceReachable)
	expectAgent(t, a, "ann", AgentAvailable, "", at(120))
}

func TestJoinErrors(t *testing.T) {
	clock := &fakeClock{now: t0}
	a := New(Settings{}, []QueueSpec{salesQueue}, nil, clock, nil)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		a.Run(ctx)
		close(stopped)
	}()

	if _, err := a.Join("c1", "nope"); !errors.Is(err, ErrUnknownQueue) {
		t.Errorf("Join to unknown queue: err = %v, want ErrUnknownQueue", err)
	}
	ch := mustJoin(t, a, "c1", "sales")
	if _, err := a.Join("c1", "sales"); !errors.Is(err, ErrDuplicateCall) {
		t.Errorf("second Join of c1: err = %v, want ErrDuplicateCall", err)
	}

	cancel()
	<-stopped
	if _, ok := <-ch; ok {
		t.Error("offer channel of a waiting call still open after stop")
	}
	if _, err := a.Join("c2", "sales"); !errors.Is(err, ErrStopped) {
		t.Errorf("Join after stop: err = %v, want ErrStopped", err)
	}
	if a.OfferResult("c1", "ann", OfferAnswered) {
		t.Error("OfferResult after stop reported applied")
	}
	if err := a.Pause("ann", "lunch"); !errors.Is(err, ErrStopped) {
		t.Errorf("Pause after stop: err = %v, want ErrStopped", err)
	}
	if err := a.Resume("ann"); !errors.Is(err, ErrStopped) {
		t.Errorf("Resume after stop: err = %v, want ErrStopped", err)
	}
	if snap := a.Snapshot(); len(snap.Queues) != 0 {
		t.Errorf("Snapshot after stop = %+v, want empty", snap)
	}
	a.Presence("ann", PresenceReachable) // must not block or panic
	a.Leave("c1")
}

func TestReconfigureKeepsAgentStates(t *testing.T) {
	oldQueue := QueueSpec{Name: "old", Skill: "legacy"}
	a, clock := startACD(t, []QueueSpec{salesQueue, supportQueue, oldQueue}, []AgentSpec{
		{ID: "ann", Skills: []string{"sales"}},
		{ID: "bob", Skills: []string{"sales"}},
		{ID: "cid", Skills: []string{"support"}},
		{ID: "dan", Skills: []string{"legacy"}},
	})
	reachableInTurn(a, clock, "ann", "bob", "cid")
	clock.Advance(time.Second)

	c1 := mustJoin(t, a, "c1", "sales")
	expectOffer(t, a, c1, "c1", "ann")
	a.OfferResult("c1", "ann", OfferAnswered)
	c4 := mustJoin(t, a, "c4", "support")
	expectOffer(t, a, c4, "c4", "cid")
	a.OfferResult("c4", "cid", OfferAnswered)
	c6 := mustJoin(t, a, "c6", "support") // waits: cid is busy
	clock.Advance(time.Second)
	c2 := mustJoin(t, a, "c2", "sales")
	expectOffer(t, a, c2, "c2", "bob") // left ringing across the reload
	c3 := mustJoin(t, a, "c3", "old")
	expectNoOffer(t, a, c3)

	// Reload: support now routes by skill "help", queue old is gone, bob (ringing)
	// and cid (busy) are removed, ann learns "help", eve is new.
	a.Reconfigure(Settings{},
		[]QueueSpec{salesQueue, {Name: "support", Skill: "help"}},
		[]AgentSpec{
			{ID: "ann", Skills: []string{"sales", "help"}},
			{ID: "dan", Skills: []string{"legacy"}},
			{ID: "eve", Skills: []string{"sales"}},
		})
	snap := a.Snapshot()
	checkInvariants(t, snap)
	expectAgent(t, a, "ann", AgentBusy, "c1", at(0))
	if ann, _ := snap.Agent("ann"); !slices.Equal(ann.Skills, []string{"sales", "help"}) {
		t.Errorf("ann skills = %v, want [sales help]", ann.Skills)
	}
	if _, ok := snap.Agent("bob"); ok {
		t.Error("removed idle agent bob still present")
	}
	if cid, ok := snap.Agent("cid"); !ok || !cid.Removed || cid.State != AgentBusy || cid.CallID != "c4" {
		t.Errorf("cid = %+v, want kept busy on c4 and marked removed", cid)
	}
	expectAgent(t, a, "eve", AgentOffline, "", time.Time{})
	expectAgent(t, a, "dan", AgentOffline, "", time.Time{})
	if a.OfferResult("c2", "bob", OfferAnswered) {
		t.Error("answer from removed agent bob was applied")
	}
	old, ok := snap.Queue("old")
	if !ok || !old.Removed || len(old.Waiting) != 1 || old.Waiting[0].ID != "c3" {
		t.Errorf("old queue = %+v, want removed with c3 still waiting", old)
	}
	if _, err := a.Join("c5", "old"); !errors.Is(err, ErrUnknownQueue) {
		t.Errorf("Join to removed queue: err = %v, want ErrUnknownQueue", err)
	}

	// c6 (support, older than c2) now needs "help": ann has it once free.
	a.Leave("c1")
	expectOffer(t, a, c6, "c6", "ann")
	expectNoOffer(t, a, c2)
	// c2 waits for the new agent; c3 in the removed queue keeps its old skill.
	a.Presence("eve", PresenceReachable)
	expectOffer(t, a, c2, "c2", "eve")
	a.Presence("dan", PresenceReachable)
	expectOffer(t, a, c3, "c3", "dan")

	// The removed agent leaves with its call.
	a.Leave("c4")
	a.Snapshot()
	if _, ok := a.Snapshot().Agent("cid"); ok {
		t.Error("removed agent cid still present after its call ended")
	}
}

func TestRunTwiceIsIgnored(t *testing.T) {
	a, _ := startACD(t, []QueueSpec{salesQueue}, []AgentSpec{{ID: "ann", Skills: []string{"sales"}}})
	a.Snapshot()                // the owner is running once this returns
	a.Run(context.Background()) // must return at once instead of racing the owner
	a.Presence("ann", PresenceReachable)
	expectAgent(t, a, "ann", AgentAvailable, "", at(0))
}

func ExampleACD() {
	a := New(Settings{}, []QueueSpec{{Name: "sales", Skill: "sales"}}, []AgentSpec{{ID: "ann", Skills: []string{"sales"}}}, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.Run(ctx)

	a.Presence("ann", PresenceReachable)
	offers, _ := a.Join("call-1", "sales")
	o := <-offers
	fmt.Println("ring", o.AgentID, "for", o.CallID)
	if a.OfferResult(o.CallID, o.AgentID, OfferAnswered) {
		fmt.Println("connected")
	}
	a.Leave("call-1")
	// Output:
	// ring ann for call-1
	// connected
}
