package acd

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// describe renders what a supervisor reads about an agent in a snapshot, with
// times as offsets from t0 and zero values left out.
func describe(st AgentStatus) string {
	parts := []string{st.State.String()}
	if st.CallID != "" {
		parts = append(parts, "call="+st.CallID)
	}
	if !st.IdleSince.IsZero() {
		parts = append(parts, "idle="+st.IdleSince.Sub(t0).String())
	}
	if !st.NotBefore.IsZero() {
		parts = append(parts, "notBefore="+st.NotBefore.Sub(t0).String())
	}
	if st.NoAnswers > 0 {
		parts = append(parts, fmt.Sprintf("noAnswers=%d", st.NoAnswers))
	}
	if st.Paused {
		parts = append(parts, "paused="+st.PauseReason)
	}
	return strings.Join(parts, " ")
}

func expectDescribed(t *testing.T, a *ACD, id, want string) {
	t.Helper()
	if got := describe(agentStatus(t, a, id)); got != want {
		t.Fatalf("agent %s = %q, want %q", id, got, want)
	}
}

// callNotBefore returns the retry deadline the snapshot shows for a waiting call.
func callNotBefore(t *testing.T, a *ACD, queue, callID string) time.Time {
	t.Helper()
	q, _ := a.Snapshot().Queue(queue)
	for _, c := range q.Waiting {
		if c.ID == callID {
			return c.NotBefore
		}
	}
	t.Fatalf("call %s not waiting in %s: %+v", callID, queue, q)
	return time.Time{}
}

var (
	salesRetry5s = QueueSpec{Name: "sales", Skill: "sales", Retry: 5 * time.Second}
	annAndBob    = []AgentSpec{{ID: "ann", Skills: []string{"sales"}}, {ID: "bob", Skills: []string{"sales"}}}
)

// TestOfferOutcomes: how each result of ann's offer (rung at 10s, ended at
// 11s) leaves ann and the call, and who rings next once the retry is over.
func TestOfferOutcomes(t *testing.T) {
	tests := []struct {
		outcome     Outcome
		connected   bool
		ann         string // at 11s, after the result
		callRetryAt time.Duration
		nextAt16    string // who rings for c1 at 16s
	}{
		{OfferAnswered, true, "busy call=c1 idle=0s", 0, ""},
		{OfferBusy, false, "available idle=0s notBefore=41s", 16 * time.Second, "bob"},
		{OfferUnreachable, false, "unreachable idle=0s", 16 * time.Second, "bob"},
		{OfferNoAnswer, false, "available idle=0s noAnswers=1", 16 * time.Second, "bob"},
		{OfferFailed, false, "available idle=0s", 16 * time.Second, "bob"},
		// Reported before Leave: no penalty for anyone, the call is offered at once.
		{OfferAbandoned, false, "reserved call=c1 idle=0s", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.outcome.String(), func(t *testing.T) {
			a, clock := startACDWith(t, Settings{BusyBackoff: 30 * time.Second, MaxNoAnswer: 3}, []QueueSpec{salesRetry5s}, annAndBob)
			reachableInTurn(a, clock, "ann", "bob")
			clock.Advance(9 * time.Second)
			ch := mustJoin(t, a, "c1", "sales")
			expectOffer(t, a, ch, "c1", "ann")
			clock.Advance(time.Second)

			if got := a.OfferResult("c1", "ann", tt.outcome); got != tt.connected {
				t.Fatalf("OfferResult = %v, want %v", got, tt.connected)
			}
			checkInvariants(t, a.Snapshot())
			expectDescribed(t, a, "ann", tt.ann)
			if tt.callRetryAt != 0 {
				if got := callNotBefore(t, a, "sales", "c1"); !got.Equal(t0.Add(tt.callRetryAt)) {
					t.Fatalf("c1 not before %s, want %s", got.Sub(t0), tt.callRetryAt)
				}
				expectNoOffer(t, a, ch)
				clock.Advance(4 * time.Second)
				expectNoOffer(t, a, ch)
			}
			clock.Advance(time.Second)
			if tt.nextAt16 == "" {
				if tt.outcome == OfferAbandoned {
					expectOffer(t, a, ch, "c1", "ann")
				}
				expectNoOffer(t, a, ch)
				return
			}
			expectOffer(t, a, ch, "c1", tt.nextAt16)
		})
	}
}

// TestResultAfterLeaveAppliesToAgent: the caller left while ann's phone rang;
// the leg's result still decides what ann is next.
func TestResultAfterLeaveAppliesToAgent(t *testing.T) {
	tests := []struct {
		outcome Outcome
		ann     string
	}{
		{OfferAnswered, "available idle=7s"}, // answered late: ACKed and hung up, that was work
		{OfferBusy, "available idle=0s notBefore=37s"},
		{OfferUnreachable, "unreachable idle=0s"},
		{OfferNoAnswer, "paused idle=0s noAnswers=1 paused=no-answer"},
		{OfferFailed, "available idle=0s"},
		{OfferAbandoned, "available idle=0s"},
	}
	for _, tt := range tests {
		t.Run(tt.outcome.String(), func(t *testing.T) {
			a, clock := startACDWith(t, Settings{BusyBackoff: 30 * time.Second, MaxNoAnswer: 1}, []QueueSpec{salesRetry5s}, annAndBob[:1])
			a.Presence("ann", PresenceReachable)
			ch := mustJoin(t, a, "c1", "sales")
			expectOffer(t, a, ch, "c1", "ann")
			clock.Advance(5 * time.Second)
			a.Leave("c1")
			clock.Advance(2 * time.Second)
			expectDescribed(t, a, "ann", "reserved call=c1 idle=0s")
			if a.OfferResult("c1", "ann", tt.outcome) {
				t.Fatal("result for a call that left reported it connected")
			}
			expectDescribed(t, a, "ann", tt.ann)
			if a.OfferResult("c1", "ann", tt.outcome) {
				t.Fatal("repeated result reported the call connected")
			}
			expectDescribed(t, a, "ann", tt.ann)
		})
	}
}

// TestNoOfferLoopSpins drives one lone failing agent and one caller for 10 s
// of fake time in 10 ms steps; the call layer reports every result at once.
// It records when ann was offered the call.
func TestNoOfferLoopSpins(t *testing.T) {
	tests := []struct {
		name     string
		settings Settings
		outcome  Outcome
		want     []time.Duration
	}{
		{"busy, back-off 30s", Settings{BusyBackoff: 30 * time.Second}, OfferBusy, []time.Duration{0}},
		{"busy, no back-off", Settings{}, OfferBusy, []time.Duration{0, 5 * time.Second, 10 * time.Second}},
		{"other failure", Settings{BusyBackoff: 30 * time.Second}, OfferFailed, []time.Duration{0, 5 * time.Second, 10 * time.Second}},
		{"unreachable", Settings{}, OfferUnreachable, []time.Duration{0}},
		{"no answer, paused after 2", Settings{MaxNoAnswer: 2}, OfferNoAnswer, []time.Duration{0, 5 * time.Second}},
		{"no answer, never paused", Settings{}, OfferNoAnswer, []time.Duration{0, 5 * time.Second, 10 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, clock := startACDWith(t, tt.settings, []QueueSpec{salesRetry5s}, annAndBob[:1])
			a.Presence("ann", PresenceReachable)
			ch := mustJoin(t, a, "c1", "sales")
			var offered []time.Duration
			for step := range 1001 {
				if step > 0 {
					clock.Advance(10 * time.Millisecond)
				}
				a.Snapshot() // every deadline passed so far has been routed
				for {
					var o Offer
					select {
					case o = <-ch:
					default:
					}
					if o.AgentID == "" {
						break
					}
					offered = append(offered, clock.Now().Sub(t0))
					if len(offered) > 100 {
						t.Fatalf("offer loop spins: %d offers by %s", len(offered), clock.Now().Sub(t0))
					}
					a.OfferResult(o.CallID, o.AgentID, tt.outcome) // routes before it returns
				}
			}
			t.Logf("%d offers in 10s: %v", len(offered), offered)
			if !slices.Equal(offered, tt.want) {
				t.Fatalf("offers at %v, want %v", offered, tt.want)
			}
		})
	}
}

// TestOwnerWakesAtEarliestDeadline: with back-offs and retries pending on
// several agents and calls, the owner keeps one timer at the earliest
// deadline, and when it fires the owner routes without any event.
func TestOwnerWakesAtEarliestDeadline(t *testing.T) {
	a, clock := startACDWith(t, Settings{BusyBackoff: 30 * time.Second}, []QueueSpec{salesRetry5s}, annAndBob)
	a.Presence("ann", PresenceReachable)
	a.Presence("bob", PresenceReachable)
	c1 := mustJoin(t, a, "c1", "sales")
	c2 := mustJoin(t, a, "c2", "sales")
	expectOffer(t, a, c1, "c1", "ann")
	expectOffer(t, a, c2, "c2", "bob")
	a.OfferResult("c1", "ann", OfferBusy) // ann until 30s, c1 until 5s
	clock.Advance(2 * time.Second)
	a.OfferResult("c2", "bob", OfferBusy) // bob until 32s, c2 until 7s
	a.Snapshot()
	if got := clock.pending(); !slices.Equal(got, []time.Time{at(5)}) {
		t.Fatalf("pending timers at %v, want one at %v", got, at(5))
	}

	clock.Advance(5 * time.Second) // both retries over; both agents still backed off
	expectNoOffer(t, a, c1)
	expectNoOffer(t, a, c2)
	if got := clock.pending(); !slices.Equal(got, []time.Time{at(30)}) {
		t.Fatalf("pending timers at %v, want one at %v", got, at(30))
	}

	// No event from here: only the timer can make the owner offer ann again.
	clock.Advance(23 * time.Second)
	select {
	case o := <-c1:
		if o.AgentID != "ann" {
			t.Fatalf("got offer %+v, want c1 to ann", o)
		}
	case <-time.After(10 * time.Second): // a hang guard, not a measurement
		t.Fatal("no offer after the back-off deadline passed: the owner did not wake")
	}
	if n := clock.timersCreated(); n != 1 {
		t.Fatalf("the owner created %d timers, want 1", n)
	}
	expectDescribed(t, a, "ann", "reserved call=c1 idle=0s")
	expectDescribed(t, a, "bob", "available idle=0s notBefore=32s")
}

// TestEventAfterDeadlineIsRoutedFirst: an event that reaches the owner after a
// deadline passed sees the routing of that deadline, even if the timer has not
// fired yet (a late timer, or a fake clock whose timers never fire).
func TestEventAfterDeadlineIsRoutedFirst(t *testing.T) {
	a, clock := startACDWith(t, Settings{}, []QueueSpec{salesRetry5s}, annAndBob[:1])
	clock.silent = true
	a.Presence("ann", PresenceReachable)
	ch := mustJoin(t, a, "c1", "sales")
	expectOffer(t, a, ch, "c1", "ann")
	a.OfferResult("c1", "ann", OfferFailed)
	clock.Advance(5 * time.Second)
	expectDescribed(t, a, "ann", "reserved call=c1 idle=0s")
}

func TestNoAnswersPauseAgentUntilResume(t *testing.T) {
	a, clock := startACDWith(t, Settings{MaxNoAnswer: 3}, []QueueSpec{salesQueue}, annAndBob[:1])
	a.Presence("ann", PresenceReachable)
	ch := mustJoin(t, a, "c1", "sales")

	// Two missed rings, then an answer: the count starts over.
	for range 2 {
		expectOffer(t, a, ch, "c1", "ann")
		a.OfferResult("c1", "ann", OfferNoAnswer)
	}
	expectOffer(t, a, ch, "c1", "ann")
	expectDescribed(t, a, "ann", "reserved call=c1 idle=0s noAnswers=2")
	a.OfferResult("c1", "ann", OfferAnswered)
	expectDescribed(t, a, "ann", "busy call=c1 idle=0s")
	clock.Advance(time.Second)
	a.Leave("c1")

	// Three in a row: paused, and not offered any more.
	ch = mustJoin(t, a, "c2", "sales")
	for range 3 {
		expectOffer(t, a, ch, "c2", "ann")
		a.OfferResult("c2", "ann", OfferNoAnswer)
	}
	expectNoOffer(t, a, ch)
	expectDescribed(t, a, "ann", "paused idle=1s noAnswers=3 paused=no-answer")

	// The agent undoes it; the count starts over.
	if err := a.Resume("ann"); err != nil {
		t.Fatal(err)
	}
	expectOffer(t, a, ch, "c2", "ann")
	expectDescribed(t, a, "ann", "reserved call=c2 idle=1s")
}

func TestPauseRingingAgentKeepsOfferUntilResult(t *testing.T) {
	a, clock := startACD(t, []QueueSpec{salesQueue}, annAndBob)
	a.Presence("ann", PresenceReachable)
	ch := mustJoin(t, a, "c1", "sales")
	expectOffer(t, a, ch, "c1", "ann")

	if err := a.Pause("ann", "lunch"); err != nil {
		t.Fatal(err)
	}
	expectNoOffer(t, a, ch) // not withdrawn: ann's phone still rings for c1
	expectDescribed(t, a, "ann", "reserved call=c1 idle=0s paused=lunch")
	a.OfferResult("c1", "ann", OfferAnswered)
	expectDescribed(t, a, "ann", "busy call=c1 idle=0s paused=lunch")
	clock.Advance(time.Minute)
	a.Leave("c1")
	expectDescribed(t, a, "ann", "paused idle=1m0s paused=lunch")

	// Paused agents are not offered; a missed ring during the pause keeps its reason.
	ch = mustJoin(t, a, "c2", "sales")
	expectNoOffer(t, a, ch)
	if err := a.Resume("ann"); err != nil {
		t.Fatal(err)
	}
	expectOffer(t, a, ch, "c2", "ann")
	if err := a.Pause("ann", "meeting"); err != nil {
		t.Fatal(err)
	}
	a.OfferResult("c2", "ann", OfferNoAnswer)
	expectNoOffer(t, a, ch)
	expectDescribed(t, a, "ann", "paused idle=1m0s noAnswers=1 paused=meeting")

	// A pause outlives the phone going away and coming back.
	a.Presence("ann", PresenceOffline)
	a.Presence("ann", PresenceReachable)
	expectDescribed(t, a, "ann", "paused idle=1m0s noAnswers=1 paused=meeting")

	for _, err := range []error{a.Pause("mallory", "x"), a.Resume("mallory")} {
		if !errors.Is(err, ErrUnknownAgent) {
			t.Errorf("Pause/Resume of an unknown agent: err = %v, want ErrUnknownAgent", err)
		}
	}
}

func TestPresenceComingBackAndRefreshes(t *testing.T) {
	a, clock := startACD(t, []QueueSpec{salesQueue}, annAndBob)
	a.Presence("ann", PresenceReachable)
	a.Snapshot()
	clock.Advance(10 * time.Second)
	a.Presence("ann", PresenceReachable) // registration refresh
	a.Presence("mallory", PresenceReachable)
	a.Presence("ann", Presence(7)) // not a presence: ignored
	expectDescribed(t, a, "ann", "available idle=0s")
	if n := len(a.Snapshot().Agents); n != 2 {
		t.Fatalf("snapshot has %d agents, want 2", n)
	}

	// Back from unreachable: available, idle from now.
	a.Presence("ann", PresenceUnreachable)
	a.Presence("ann", PresenceUnreachable)
	clock.Advance(5 * time.Second)
	expectDescribed(t, a, "ann", "unreachable idle=0s")
	a.Presence("ann", PresenceReachable)
	expectDescribed(t, a, "ann", "available idle=15s")

	// Unreachable during a call, then back: still busy with it.
	ch := mustJoin(t, a, "c1", "sales")
	expectOffer(t, a, ch, "c1", "ann")
	a.OfferResult("c1", "ann", OfferAnswered)
	a.Presence("ann", PresenceUnreachable)
	expectDescribed(t, a, "ann", "unreachable call=c1 idle=15s")
	a.Presence("ann", PresenceReachable)
	expectDescribed(t, a, "ann", "busy call=c1 idle=15s")
}

func TestReconfigureAppliesSettingsAndRetry(t *testing.T) {
	a, clock := startACDWith(t, Settings{BusyBackoff: 30 * time.Second}, []QueueSpec{salesRetry5s}, annAndBob[:1])
	a.Presence("ann", PresenceReachable)
	ch := mustJoin(t, a, "c1", "sales")
	expectOffer(t, a, ch, "c1", "ann")
	a.Reconfigure(Settings{BusyBackoff: 10 * time.Second}, []QueueSpec{{Name: "sales", Skill: "sales", Retry: 2 * time.Second}}, annAndBob[:1])
	a.OfferResult("c1", "ann", OfferBusy)
	expectDescribed(t, a, "ann", "available idle=0s notBefore=10s")
	if got := callNotBefore(t, a, "sales", "c1"); !got.Equal(at(2)) {
		t.Fatalf("c1 not before %s, want 2s", got.Sub(t0))
	}
	clock.Advance(10 * time.Second)
	expectOffer(t, a, ch, "c1", "ann")
}
