package acd

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// connections plays the media side: which caller each agent is bridged to.
// Bridging an agent that is already bridged, or a caller to a second agent,
// is exactly what the ACD must make impossible.
type connections struct {
	mu       sync.Mutex
	byAgent  map[string]string
	byCaller map[string]string
	total    int
	stale    int // answers refused because the offer was withdrawn
}

func (c *connections) connect(t *testing.T, callID, agentID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if other, busy := c.byAgent[agentID]; busy {
		t.Errorf("agent %s connected to %s while still connected to %s", agentID, callID, other)
	}
	if other, busy := c.byCaller[callID]; busy {
		t.Errorf("caller %s connected to agent %s while already connected to %s", callID, agentID, other)
	}
	c.byAgent[agentID] = callID
	c.byCaller[callID] = agentID
	c.total++
}

func (c *connections) disconnect(callID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if agent, ok := c.byCaller[callID]; ok {
		delete(c.byAgent, agent)
		delete(c.byCaller, callID)
	}
}

// TestConcurrentCallsNeverShareAnAgent runs many callers that join, let offers
// ring out, fail in every way, answer or hang up mid-ring, while agents flap
// offline, unreachable and paused and a checker reads snapshots. Back-off and
// retry are short real durations, so the owner's timer runs too. Run it with
// -race.
func TestConcurrentCallsNeverShareAnAgent(t *testing.T) {
	const callers, callsEach, agentCount = 40, 5, 8
	queues := []QueueSpec{salesQueue, supportQueue}
	var agents []AgentSpec
	for i := range agentCount {
		skills := [][]string{{"sales"}, {"support"}, {"sales", "support"}}[i%3]
		agents = append(agents, AgentSpec{ID: fmt.Sprintf("agent%d", i), Skills: skills})
	}
	settings := Settings{BusyBackoff: time.Millisecond, MaxNoAnswer: 2}
	for i := range queues {
		queues[i].Retry = time.Millisecond
	}
	a := New(settings, queues, agents, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		a.Run(ctx)
		close(stopped)
	}()
	defer func() {
		cancel()
		<-stopped
	}()
	for _, ag := range agents {
		a.Presence(ag.ID, PresenceReachable)
	}

	conns := &connections{byAgent: map[string]string{}, byCaller: map[string]string{}}
	var callersDone sync.WaitGroup
	for i := range callers {
		callersDone.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			for n := range callsEach {
				callID := fmt.Sprintf("call%d-%d", i, n)
				runCaller(t, a, conns, rng, callID, queues[rng.IntN(len(queues))].Name)
			}
		})
	}

	// Agents flap (a missed qualify, then a re-registration) for as long as the
	// callers run, so offers get withdrawn while they ring.
	flapStop := make(chan struct{})
	flapDone := make(chan struct{})
	go func() {
		defer close(flapDone)
		rng := rand.New(rand.NewPCG(99, 2))
		for {
			select {
			case <-flapStop:
				return
			default:
			}
			id := agents[rng.IntN(len(agents))].ID
			switch rng.IntN(3) {
			case 0:
				a.Presence(id, PresenceOffline)
			case 1:
				a.Presence(id, PresenceUnreachable)
			default:
				if err := a.Pause(id, "flap"); err != nil {
					t.Error(err)
				}
			}
			a.Snapshot() // let routing see the agent gone before it returns
			a.Presence(id, PresenceReachable)
			if err := a.Resume(id); err != nil {
				t.Error(err)
			}
		}
	}()

	checkerStop := make(chan struct{})
	checkerDone := make(chan struct{})
	go func() {
		defer close(checkerDone)
		for {
			select {
			case <-checkerStop:
				return
			default:
				if err := invariantError(a.Snapshot()); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()

	callersDone.Wait()
	close(flapStop)
	<-flapDone
	close(checkerStop)
	<-checkerDone

	for _, ag := range agents { // undo what the last flaps and failures left
		a.Presence(ag.ID, PresenceReachable)
		if err := a.Resume(ag.ID); err != nil {
			t.Error(err)
		}
	}
	snap := a.Snapshot()
	checkInvariants(t, snap)
	for _, q := range snap.Queues {
		if len(q.Waiting)+len(q.Answered) != 0 {
			t.Errorf("queue %s still has calls after all callers left: %+v", q.Name, q)
		}
	}
	for _, ag := range snap.Agents {
		if ag.State != AgentAvailable {
			t.Errorf("agent %s is %s after all calls ended, want available", ag.ID, ag.State)
		}
	}
	if conns.total == 0 {
		t.Error("no call was ever connected")
	}
	t.Logf("%d calls connected, %d answers to withdrawn offers refused", conns.total, conns.stale)
}

// runCaller is one call's life as the call layer would run it: ring each offer,
// answer some, let some ring out or fail, hang up during some (then resolve
// the leg: cancelled, or answered late and hung up).
func runCaller(t *testing.T, a *ACD, conns *connections, rng *rand.Rand, callID, queue string) {
	offers, err := a.Join(callID, queue)
	if err != nil {
		t.Errorf("Join(%s): %v", callID, err)
		return
	}
	for o := range offers {
		if o.CallID != callID {
			t.Errorf("call %s got an offer for %s", callID, o.CallID)
		}
		switch r := rng.IntN(10); {
		case r < 2: // caller hangs up while it rings
			a.Leave(callID)
			outcome := []Outcome{OfferAbandoned, OfferAnswered}[r]
			if a.OfferResult(callID, o.AgentID, outcome) {
				t.Errorf("call %s: %s after Leave reported the call connected", callID, outcome)
			}
			return
		case r < 6: // the agent's phone fails in one of the ways a phone fails
			outcome := []Outcome{OfferBusy, OfferUnreachable, OfferNoAnswer, OfferFailed}[r-2]
			if a.OfferResult(callID, o.AgentID, outcome) {
				t.Errorf("call %s: %s reported the call connected", callID, outcome)
			}
		default:
			if !a.OfferResult(callID, o.AgentID, OfferAnswered) {
				conns.mu.Lock()
				conns.stale++
				conns.mu.Unlock()
				continue // offer withdrawn (agent went away): hang up that leg, keep waiting
			}
			conns.connect(t, callID, o.AgentID)
			conns.disconnect(callID) // before Leave: the agent is free only after it
			a.Leave(callID)
			return
		}
	}
	t.Errorf("offer channel of %s closed while the call was waiting", callID)
}
