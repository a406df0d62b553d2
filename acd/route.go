package acd

import (
	"cmp"
	"slices"
	"time"
)

// routeScratch holds buffers Route reuses between runs so that routing
// allocates only the offers it returns.
type routeScratch struct {
	agents []*Agent
	taken  []bool
	calls  []*Call
}

// Route decides which waiting calls to offer to which agents. It reads s and
// changes nothing in it but its scratch buffers; the owner applies the offers.
//
// Rules:
//   - waiting calls (no outstanding offer, not answered, past their NotBefore)
//     are served oldest first across all queues, by join time (then join
//     order, then ID);
//   - each gets an Available agent past its NotBefore with its queue's skill:
//     the one this call has failed on least often, and among those the
//     longest idle (earliest IdleSince, then ID). So an agent who did not
//     answer is skipped while an untried one is available, and once all were
//     tried the round starts over;
//   - an agent gets at most one offer, a call at most one.
//
// nextDeadline says when the answer may change without an event.
func Route(s *State, now time.Time) []Offer {
	agents := s.scratch.agents[:0]
	for _, ag := range s.Agents {
		if ag.offerable(now) {
			agents = append(agents, ag)
		}
	}
	defer func() {
		clear(agents) // drop pointers so the scratch does not pin removed agents
		s.scratch.agents = agents[:0]
	}()
	if len(agents) == 0 {
		return nil
	}
	slices.SortFunc(agents, longestIdleFirst)

	calls := s.scratch.calls[:0]
	for _, c := range s.Calls {
		if c.waiting(now) {
			calls = append(calls, c)
		}
	}
	defer func() {
		clear(calls)
		s.scratch.calls = calls[:0]
	}()
	slices.SortFunc(calls, oldestFirst)

	taken := s.scratch.taken[:0]
	taken = append(taken, make([]bool, len(agents))...)
	s.scratch.taken = taken

	var offers []Offer
	free := len(agents)
	for _, c := range calls {
		if free == 0 {
			break
		}
		best, bestFailed := -1, 0
		for i, ag := range agents {
			if taken[i] || !ag.hasSkill(c.Skill) {
				continue
			}
			failed := c.Failed[ag.ID]
			if best < 0 || failed < bestFailed {
				best, bestFailed = i, failed
				if failed == 0 {
					break // agents are in idle order: nobody can beat an untried one
				}
			}
		}
		if best < 0 {
			continue
		}
		taken[best] = true
		free--
		if offers == nil {
			offers = make([]Offer, 0, min(len(agents), len(calls)))
		}
		offers = append(offers, Offer{CallID: c.ID, Queue: c.Queue, AgentID: agents[best].ID})
	}
	return offers
}

// nextDeadline returns the earliest instant after now at which Route may
// offer more without any event (a call's retry or an agent's busy back-off
// ending), or the zero time if there is none. The owner sets its one timer
// to it.
func nextDeadline(s *State, now time.Time) time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, ag := range s.Agents {
		if ag.State() == AgentAvailable {
			consider(ag.NotBefore)
		}
	}
	for _, c := range s.Calls {
		if c.unoffered() {
			consider(c.NotBefore)
		}
	}
	return next
}

func longestIdleFirst(a, b *Agent) int {
	if c := a.IdleSince.Compare(b.IdleSince); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

func oldestFirst(a, b *Call) int {
	if c := a.JoinedAt.Compare(b.JoinedAt); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Seq, b.Seq); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}
