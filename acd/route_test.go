package acd

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

func at(seconds int) time.Time { return t0.Add(time.Duration(seconds) * time.Second) }

func available(id string, idle int, skills ...string) *Agent {
	return &Agent{ID: id, Skills: skills, Presence: PresenceReachable, IdleSince: at(idle)}
}

// agentIn returns an agent in state st, idle since t0, holding callID.
func agentIn(id string, st AgentState, callID string, skills ...string) *Agent {
	ag := &Agent{ID: id, Skills: skills, Presence: PresenceReachable, CallID: callID, IdleSince: t0}
	switch st {
	case AgentOffline:
		ag.Presence = PresenceOffline
	case AgentUnreachable:
		ag.Presence = PresenceUnreachable
	case AgentPaused:
		ag.Paused, ag.PauseReason = true, "lunch"
	case AgentBusy:
		ag.Connected = true
	}
	if ag.State() != st {
		panic(fmt.Sprintf("agentIn(%s, %s) built a %s agent", id, st, ag.State()))
	}
	return ag
}

func backedOffUntil(ag *Agent, seconds int) *Agent { ag.NotBefore = at(seconds); return ag }
func retryAt(c *Call, seconds int) *Call           { c.NotBefore = at(seconds); return c }

func waiting(id, skill string, joined int) *Call {
	return &Call{ID: id, Queue: "q-" + skill, Skill: skill, JoinedAt: at(joined)}
}

func withSeq(c *Call, seq uint64) *Call             { c.Seq = seq; return c }
func failedOn(c *Call, failed map[string]int) *Call { c.Failed = failed; return c }
func offeredTo(c *Call, agent string, answered bool) *Call {
	c.AgentID, c.Answered = agent, answered
	return c
}

func stateOf(agents []*Agent, calls []*Call) *State {
	s := &State{Queues: map[string]QueueSpec{}, Agents: map[string]*Agent{}, Calls: map[string]*Call{}}
	for _, ag := range agents {
		s.Agents[ag.ID] = ag
	}
	for _, c := range calls {
		s.Calls[c.ID] = c
		s.Queues[c.Queue] = QueueSpec{Name: c.Queue, Skill: c.Skill}
	}
	return s
}

func offer(call, skill, agent string) Offer {
	return Offer{CallID: call, Queue: "q-" + skill, AgentID: agent}
}

func TestRoute(t *testing.T) {
	tests := []struct {
		name   string
		agents []*Agent
		calls  []*Call
		want   []Offer
	}{
		{
			name: "no available agent",
			agents: []*Agent{
				agentIn("a", AgentBusy, "c0", "sales"),
				agentIn("b", AgentOffline, "", "sales"),
				agentIn("c", AgentReserved, "c9", "sales"),
			},
			calls: []*Call{
				offeredTo(waiting("c0", "sales", 0), "a", true),
				offeredTo(waiting("c9", "sales", 1), "c", false),
				waiting("c1", "sales", 2),
			},
			want: nil,
		},
		{
			name:   "no waiting call",
			agents: []*Agent{available("a", 0, "sales")},
			want:   nil,
		},
		{
			name:   "longest idle agent wins",
			agents: []*Agent{available("a", 1, "sales"), available("b", 0, "sales")},
			calls:  []*Call{waiting("c1", "sales", 5)},
			want:   []Offer{offer("c1", "sales", "b")},
		},
		{
			name:   "equal idle time broken by id",
			agents: []*Agent{available("b", 0, "sales"), available("a", 0, "sales")},
			calls:  []*Call{waiting("c1", "sales", 5)},
			want:   []Offer{offer("c1", "sales", "a")},
		},
		{
			name:   "agent without the skill is skipped",
			agents: []*Agent{available("a", 0, "support"), available("b", 5, "sales")},
			calls:  []*Call{waiting("c1", "sales", 6)},
			want:   []Offer{offer("c1", "sales", "b")},
		},
		{
			name:   "oldest call first across queues",
			agents: []*Agent{available("x", 0, "sales", "support")},
			calls:  []*Call{waiting("s2", "sales", 2), waiting("s1", "support", 1)},
			want:   []Offer{offer("s1", "support", "x")},
		},
		{
			name:   "same join time served in join order",
			agents: []*Agent{available("a", 0, "sales")},
			calls:  []*Call{withSeq(waiting("c1", "sales", 1), 2), withSeq(waiting("c2", "sales", 1), 1)},
			want:   []Offer{offer("c2", "sales", "a")},
		},
		{
			name: "calls with an outstanding offer or an agent are skipped",
			agents: []*Agent{
				agentIn("r", AgentReserved, "c1", "sales"),
				agentIn("b", AgentBusy, "c2", "sales"),
				available("a", 9, "sales"),
			},
			calls: []*Call{
				offeredTo(waiting("c1", "sales", 0), "r", false),
				offeredTo(waiting("c2", "sales", 1), "b", true),
				waiting("c3", "sales", 2),
			},
			want: []Offer{offer("c3", "sales", "a")},
		},
		{
			name:   "agent who did not answer is skipped for a less idle untried one",
			agents: []*Agent{available("a", 0, "sales"), available("b", 1, "sales"), available("c", 2, "sales")},
			calls:  []*Call{failedOn(waiting("c1", "sales", 5), map[string]int{"a": 1, "b": 1})},
			want:   []Offer{offer("c1", "sales", "c")},
		},
		{
			name:   "every agent tried: start over with the longest idle",
			agents: []*Agent{available("a", 0, "sales"), available("b", 1, "sales")},
			calls:  []*Call{failedOn(waiting("c1", "sales", 5), map[string]int{"a": 1, "b": 1})},
			want:   []Offer{offer("c1", "sales", "a")},
		},
		{
			name:   "second round: agent tried fewer times first",
			agents: []*Agent{available("a", 0, "sales"), available("b", 1, "sales"), available("c", 2, "sales")},
			calls:  []*Call{failedOn(waiting("c1", "sales", 5), map[string]int{"a": 2, "b": 1, "c": 1})},
			want:   []Offer{offer("c1", "sales", "b")},
		},
		{
			name:   "untried agent busy: the tried one rings again",
			agents: []*Agent{available("a", 0, "sales"), agentIn("b", AgentBusy, "c0", "sales")},
			calls: []*Call{
				offeredTo(waiting("c0", "sales", 0), "b", true),
				failedOn(waiting("c1", "sales", 5), map[string]int{"a": 1}),
			},
			want: []Offer{offer("c1", "sales", "a")},
		},
		{
			name:   "a failure on one call does not affect another call",
			agents: []*Agent{available("a", 0, "sales"), available("b", 1, "sales")},
			calls: []*Call{
				failedOn(waiting("c1", "sales", 1), map[string]int{"a": 1}),
				waiting("c2", "sales", 2),
			},
			want: []Offer{offer("c1", "sales", "b"), offer("c2", "sales", "a")},
		},
		{
			name:   "one offer per agent",
			agents: []*Agent{available("a", 0, "sales")},
			calls:  []*Call{waiting("c2", "sales", 2), waiting("c1", "sales", 1)},
			want:   []Offer{offer("c1", "sales", "a")},
		},
		{
			name:   "several offers in call order, agents in idle order",
			agents: []*Agent{available("b", 1, "sales"), available("a", 0, "sales")},
			calls:  []*Call{waiting("c3", "sales", 3), waiting("c1", "sales", 1), waiting("c2", "sales", 2)},
			want:   []Offer{offer("c1", "sales", "a"), offer("c2", "sales", "b")},
		},
		{
			name:   "an older call nobody can serve does not block newer ones",
			agents: []*Agent{available("a", 0, "sales")},
			calls:  []*Call{waiting("c1", "support", 1), waiting("c2", "sales", 2)},
			want:   []Offer{offer("c2", "sales", "a")},
		},
		{
			name: "paused, unreachable and offline agents are not offered",
			agents: []*Agent{
				agentIn("p", AgentPaused, "", "sales"),
				agentIn("u", AgentUnreachable, "", "sales"),
				agentIn("o", AgentOffline, "", "sales"),
				available("a", 50, "sales"),
			},
			calls: []*Call{waiting("c1", "sales", 1)},
			want:  []Offer{offer("c1", "sales", "a")},
		},
		{
			name:   "agent in busy back-off is skipped until its not-before",
			agents: []*Agent{backedOffUntil(available("a", 0, "sales"), 101), backedOffUntil(available("b", 1, "sales"), 100)},
			calls:  []*Call{waiting("c1", "sales", 1), waiting("c2", "sales", 2)},
			want:   []Offer{offer("c1", "sales", "b")},
		},
		{
			name:   "call waiting out its retry is skipped until its not-before",
			agents: []*Agent{available("a", 0, "sales"), available("b", 1, "sales")},
			calls:  []*Call{retryAt(waiting("c1", "sales", 1), 101), retryAt(waiting("c2", "sales", 2), 100)},
			want:   []Offer{offer("c2", "sales", "a")},
		},
		{
			name:   "older call takes the longest idle agent even if newer call then has none",
			agents: []*Agent{available("x", 0, "sales", "support"), available("y", 1, "sales")},
			calls:  []*Call{waiting("c1", "sales", 1), waiting("c2", "support", 2)},
			want:   []Offer{offer("c1", "sales", "x")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := stateOf(tt.agents, tt.calls)
			before := s.snapshot(at(100))
			got := Route(s, at(100))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Route() = %v, want %v", got, tt.want)
			}
			if after := s.snapshot(at(100)); !reflect.DeepEqual(before, after) {
				t.Errorf("Route changed the state:\nbefore %+v\nafter  %+v", before, after)
			}
		})
	}
}

// benchState builds 50 agents with two of five skills each and 200 calls
// waiting across five queues; availableAgents of the agents are Available.
func benchState(availableAgents int) *State {
	skills := []string{"sales", "support", "billing", "tech", "vip"}
	s := stateOf(nil, nil)
	for i := range 50 {
		ag := &Agent{
			ID:        fmt.Sprintf("agent%02d", i),
			Skills:    []string{skills[i%5], skills[(i+1)%5]},
			Presence:  PresenceReachable,
			CallID:    "elsewhere",
			Connected: true,
			IdleSince: t0.Add(time.Duration(i*7%50) * time.Second),
		}
		if i < availableAgents {
			ag.CallID, ag.Connected = "", false
		}
		s.Agents[ag.ID] = ag
	}
	for i := range 200 {
		skill := skills[i%5]
		c := &Call{
			ID:       fmt.Sprintf("call%03d", i),
			Queue:    "q-" + skill,
			Skill:    skill,
			JoinedAt: t0.Add(time.Duration(i*13%200) * time.Second),
			Seq:      uint64(i),
		}
		if i%3 == 0 {
			c.Failed = map[string]int{fmt.Sprintf("agent%02d", i%50): 1}
		}
		s.Calls[c.ID] = c
		s.Queues[c.Queue] = QueueSpec{Name: c.Queue, Skill: skill}
	}
	return s
}

func BenchmarkRoute(b *testing.B) {
	for _, available := range []int{0, 1, 50} {
		b.Run(fmt.Sprintf("agents=50/calls=200/available=%d", available), func(b *testing.B) {
			s := benchState(available)
			now := at(1000)
			want := min(available, 200)
			b.ReportAllocs()
			for b.Loop() {
				if offers := Route(s, now); len(offers) != want {
					b.Fatalf("got %d offers, want %d", len(offers), want)
				}
			}
		})
	}
}

// BenchmarkNextDeadline is the owner's scan after every event for the one
// timer's next deadline; half the agents are backed off, every third call
// waits out a retry.
func BenchmarkNextDeadline(b *testing.B) {
	s := benchState(50)
	for i, id := range slices.Sorted(maps.Keys(s.Agents)) {
		if i%2 == 0 {
			s.Agents[id].NotBefore = at(1000 + i)
		}
	}
	for i, id := range slices.Sorted(maps.Keys(s.Calls)) {
		if i%3 == 0 {
			s.Calls[id].NotBefore = at(1001 + i)
		}
	}
	now := at(1000)
	b.ReportAllocs()
	for b.Loop() {
		if next := nextDeadline(s, now); !next.Equal(at(1001)) {
			b.Fatalf("next deadline %s, want 1001s", next.Sub(t0))
		}
	}
}
