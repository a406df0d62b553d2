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
	// NotBefore is set while the call waits out its queue's retry after a
	// failed offer.
	NotBefore time.Time
}

// AgentStatus is one agent.
type AgentStatus struct {
	ID       string
	Skills   []string
	State    AgentState
	Presence Presence
	// Paused and PauseReason hold whatever the state: a paused agent may
	// still be ringing, on a call, or offline.
	Paused      bool
	PauseReason string
	// CallID is the call the agent rings for or talks to. A Reserved agent's
	// call may have left: its phone rings until the leg is resolved.
	CallID    string
	IdleSince time.Time
	// NotBefore is set while the agent is kept out of offers after its phone
	// answered busy.
	NotBefore time.Time
	// NoAnswers counts the offers in a row that rang out.
	NoAnswers int
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

// snapshot copies the state at now; deadlines already passed are left out.
func (s *State) snapshot(now time.Time) Snapshot {
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
		cs := CallStatus{ID: c.ID, JoinedAt: c.JoinedAt, AgentID: c.AgentID, NotBefore: pending(c.NotBefore, now)}
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
			ID:          ag.ID,
			Skills:      slices.Clone(ag.Skills),
			State:       ag.State(),
			Presence:    ag.Presence,
			Paused:      ag.Paused,
			PauseReason: ag.PauseReason,
			CallID:      ag.CallID,
			IdleSince:   ag.IdleSince,
			NotBefore:   pending(ag.NotBefore, now),
			NoAnswers:   ag.NoAnswers,
			Removed:     ag.removed,
		})
	}
	slices.SortFunc(snap.Agents, func(a, b AgentStatus) int { return cmp.Compare(a.ID, b.ID) })
	return snap
}

// pending returns deadline if it lies after now, else the zero time.
func pending(deadline, now time.Time) time.Time {
	if deadline.After(now) {
		return deadline
	}
	return time.Time{}
}
