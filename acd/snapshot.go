package acd

import (
	"cmp"
	"slices"
	"time"
)

// Snapshot is a copy of the ACD state for status pages and tests.
type Snapshot struct {
	Queues []QueueStatus // by name
	Agents []AgentStatus // by ID
}

// QueueStatus is one queue and its calls.
type QueueStatus struct {
	Name, Skill string
	// Removed is set for a queue dropped by a reload that still has calls.
	Removed bool
	// Waiting are calls not yet answered, oldest first; AgentID is set while an
	// offer is ringing.
	Waiting []CallStatus
	// Answered are calls connected to an agent, oldest first.
	Answered []CallStatus
}

// CallStatus is one call in a queue.
type CallStatus struct {
	ID       string
	JoinedAt time.Time
	AgentID  string
}

// AgentStatus is one agent.
type AgentStatus struct {
	ID        string
	Skills    []string
	State     AgentState
	CallID    string
	IdleSince time.Time
	// Removed is set for an agent dropped by a reload who is still on a call.
	Removed bool
}

// Queue returns the status of the named queue and whether it exists.
func (s Snapshot) Queue(name string) (QueueStatus, bool) {
	i, ok := slices.BinarySearchFunc(s.Queues, name, func(q QueueStatus, n string) int { return cmp.Compare(q.Name, n) })
	if !ok {
		return QueueStatus{}, false
	}
	return s.Queues[i], true
}

// Agent returns the status of the agent and whether it exists.
func (s Snapshot) Agent(id string) (AgentStatus, bool) {
	i, ok := slices.BinarySearchFunc(s.Agents, id, func(a AgentStatus, id string) int { return cmp.Compare(a.ID, id) })
	if !ok {
		return AgentStatus{}, false
	}
	return s.Agents[i], true
}

func (s *State) snapshot() Snapshot {
	byName := make(map[string]*QueueStatus, len(s.Queues))
	for _, q := range s.Queues {
		byName[q.Name] = &QueueStatus{Name: q.Name, Skill: q.Skill}
	}
	calls := make([]*Call, 0, len(s.Calls))
	for _, c := range s.Calls {
		calls = append(calls, c)
	}
	slices.SortFunc(calls, oldestFirst)
	for _, c := range calls {
		qs, ok := byName[c.Queue]
		if !ok {
			qs = &QueueStatus{Name: c.Queue, Skill: c.Skill, Removed: true}
			byName[c.Queue] = qs
		}
		cs := CallStatus{ID: c.ID, JoinedAt: c.JoinedAt, AgentID: c.AgentID}
		if c.Answered {
			qs.Answered = append(qs.Answered, cs)
		} else {
			qs.Waiting = append(qs.Waiting, cs)
		}
	}

	var snap Snapshot
	for _, qs := range byName {
		snap.Queues = append(snap.Queues, *qs)
	}
	slices.SortFunc(snap.Queues, func(a, b QueueStatus) int { return cmp.Compare(a.Name, b.Name) })
	for _, ag := range s.Agents {
		snap.Agents = append(snap.Agents, AgentStatus{
			ID:        ag.ID,
			Skills:    slices.Clone(ag.Skills),
			State:     ag.State,
			CallID:    ag.CallID,
			IdleSince: ag.IdleSince,
			Removed:   ag.removed,
		})
	}
	slices.SortFunc(snap.Agents, func(a, b AgentStatus) int { return cmp.Compare(a.ID, b.ID) })
	return snap
}
