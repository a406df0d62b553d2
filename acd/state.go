package acd

import (
	"errors"
	"fmt"
	"time"
)

// Errors returned by Join, Pause and Resume.
var (
	ErrUnknownQueue  = errors.New("no such queue")
	ErrUnknownAgent  = errors.New("no such agent")
	ErrDuplicateCall = errors.New("call already in a queue")
	ErrStopped       = errors.New("acd stopped")
)

// Settings are the ACD-wide tunables (config [acd]).
type Settings struct {
	// BusyBackoff keeps an agent whose phone answered busy or declined out of
	// offers for this long.
	BusyBackoff time.Duration
	// MaxNoAnswer pauses an agent with reason PauseNoAnswer after this many
	// offers in a row rang out (0 = never).
	MaxNoAnswer int
}

// AgentSpec is an agent as configured.
type AgentSpec struct {
	ID     string
	Skills []string
}

// QueueSpec is a queue as configured. Calls in the queue are offered to agents
// with Skill; the routing strategy is longest-idle.
type QueueSpec struct {
	Name, Skill string
	// Retry is how long a call waits after one of its offers failed before its
	// next offer, so that phones failing at once cannot make the queue spin.
	Retry time.Duration
}

// Offer asks the call layer to ring AgentID for CallID. The agent stays
// reserved for the call until OfferResult, even after the call left.
type Offer struct {
	CallID, Queue, AgentID string
}

// Call is one caller in the ACD, waiting or connected.
type Call struct {
	ID    string
	Queue string
	// Skill and Retry are those of Queue. Reconfigure keeps them in step with
	// the queue; a call whose queue was removed keeps those it joined with.
	Skill    string
	Retry    time.Duration
	JoinedAt time.Time
	// Seq breaks ties between calls that joined at the same instant.
	Seq uint64
	// AgentID is the agent with the outstanding offer (Answered false) or the
	// connected agent (Answered true); "" while the call waits for an offer.
	AgentID  string
	Answered bool
	// NotBefore is when the call may be offered again after a failed offer.
	NotBefore time.Time
	// Failed counts offers of this call that each agent did not answer (or
	// that were withdrawn because the agent went away).
	Failed map[string]int

	offers chan Offer // buffered 1; only the owner goroutine sends and closes
}

// unoffered reports whether the call waits with no offer ringing.
func (c *Call) unoffered() bool { return c.AgentID == "" && !c.Answered }

// waiting reports whether Route may offer the call at now.
func (c *Call) waiting(now time.Time) bool { return c.unoffered() && !now.Before(c.NotBefore) }

// State is everything the ACD knows. It is owned by one goroutine and is not
// safe for concurrent use.
type State struct {
	Settings Settings
	Queues   map[string]QueueSpec
	Agents   map[string]*Agent
	Calls    map[string]*Call

	nextSeq uint64
	scratch routeScratch
}

// NewState returns a state with the given configuration, all agents Offline
// and no calls.
func NewState(settings Settings, queues []QueueSpec, agents []AgentSpec) *State {
	s := &State{
		Agents: make(map[string]*Agent, len(agents)),
		Calls:  make(map[string]*Call),
	}
	s.reconfigure(settings, queues, agents)
	return s
}

// reconfigure swaps in a new configuration. Agents keep their state; removed
// agents lose any reservation and linger only while connected to a call.
// Calls in a queue that still exists follow its new skill and retry; calls in
// a removed queue keep waiting with those they joined with (new joins are
// refused). New settings apply to the next offer results.
func (s *State) reconfigure(settings Settings, queues []QueueSpec, agents []AgentSpec) {
	s.Settings = settings
	s.Queues = make(map[string]QueueSpec, len(queues))
	for _, q := range queues {
		s.Queues[q.Name] = q
	}
	for _, c := range s.Calls {
		if q, ok := s.Queues[c.Queue]; ok {
			c.Skill, c.Retry = q.Skill, q.Retry
		}
	}

	wanted := make(map[string]bool, len(agents))
	for _, spec := range agents {
		wanted[spec.ID] = true
		skills := append([]string(nil), spec.Skills...)
		if ag, ok := s.Agents[spec.ID]; ok {
			ag.Skills = skills
			ag.removed = false
			continue
		}
		s.Agents[spec.ID] = &Agent{ID: spec.ID, Skills: skills}
	}
	for id, ag := range s.Agents {
		if wanted[id] {
			continue
		}
		s.withdraw(ag)
		if ag.CallID != "" {
			ag.removed = true
			continue
		}
		delete(s.Agents, id)
	}
}

// join adds a waiting call to a queue.
func (s *State) join(callID, queue string, now time.Time) (*Call, error) {
	q, ok := s.Queues[queue]
	if !ok {
		return nil, fmt.Errorf("join call %q to queue %q: %w", callID, queue, ErrUnknownQueue)
	}
	if _, dup := s.Calls[callID]; dup {
		return nil, fmt.Errorf("join call %q to queue %q: %w", callID, queue, ErrDuplicateCall)
	}
	s.nextSeq++
	c := &Call{
		ID:       callID,
		Queue:    queue,
		Skill:    q.Skill,
		Retry:    q.Retry,
		JoinedAt: now,
		Seq:      s.nextSeq,
		offers:   make(chan Offer, 1),
	}
	s.Calls[callID] = c
	return c, nil
}

// leave removes a call. Its connected agent is free, idle from now. An agent
// whose offer the call layer has not read yet is free at once (nothing rings);
// one whose phone rings stays Reserved until OfferResult reports the leg
// resolved. Unknown calls are ignored.
func (s *State) leave(callID string, now time.Time) {
	c, ok := s.Calls[callID]
	if !ok {
		return
	}
	delete(s.Calls, callID)
	defer close(c.offers)
	ag, ok := s.Agents[c.AgentID]
	if !ok || ag.CallID != callID {
		return
	}
	switch {
	case c.Answered:
		s.endCall(ag, now)
	case takeBack(c):
		ag.CallID = ""
	}
}

// endCall frees an agent whose call ended. Wrap-up will go here: WrapUp until
// now+wrap instead of idle.
func (s *State) endCall(ag *Agent, now time.Time) {
	ag.CallID, ag.Connected = "", false
	ag.IdleSince = now
	if ag.removed {
		delete(s.Agents, ag.ID)
	}
}

// closeAll ends every call's offer channel when the owner stops.
func (s *State) closeAll() {
	for id, c := range s.Calls {
		close(c.offers)
		delete(s.Calls, id)
	}
}
