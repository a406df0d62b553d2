package acd

import (
	"errors"
	"fmt"
	"time"
)

// Errors returned by Join.
var (
	ErrUnknownQueue  = errors.New("no such queue")
	ErrDuplicateCall = errors.New("call already in a queue")
	ErrStopped       = errors.New("acd stopped")
)

// AgentSpec is an agent as configured.
type AgentSpec struct {
	ID     string
	Skills []string
}

// QueueSpec is a queue as configured. Calls in the queue are offered to agents
// with Skill; the routing strategy is longest-idle.
type QueueSpec struct {
	Name, Skill string
}

// Offer asks the call layer to ring AgentID for CallID. The agent stays
// reserved for the call until OfferResult or Leave.
type Offer struct {
	CallID, Queue, AgentID string
}

// AgentState is where an agent is in the offer cycle.
type AgentState int

const (
	AgentOffline   AgentState = iota // not registered or unreachable: never offered
	AgentAvailable                   // idle: may be offered a call
	AgentReserved                    // one offer is ringing: reserved for exactly one call
	AgentBusy                        // connected to a call
	// Paused (with a reason) and WrapUp (until a deadline) belong here: neither is
	// offered, and Route will compare a wrap-up deadline with its now.
)

func (s AgentState) String() string {
	switch s {
	case AgentOffline:
		return "offline"
	case AgentAvailable:
		return "available"
	case AgentReserved:
		return "reserved"
	case AgentBusy:
		return "busy"
	}
	return fmt.Sprintf("AgentState(%d)", int(s))
}

// Agent is the live state of one agent.
type Agent struct {
	ID     string
	Skills []string
	State  AgentState
	// CallID is the call the agent is reserved for or connected to, "" if none.
	// An agent who goes offline while connected keeps it, so that coming back
	// online during the same call restores Busy rather than Available.
	CallID string
	// IdleSince orders Available agents: the earliest is offered first. A
	// failed offer keeps it; the end of a call resets it.
	IdleSince time.Time

	// removed marks an agent dropped by Reconfigure while still on a call; it
	// is deleted when that call ends.
	removed bool
}

func (ag *Agent) hasSkill(skill string) bool {
	for _, s := range ag.Skills {
		if s == skill {
			return true
		}
	}
	return false
}

// Call is one caller in the ACD, waiting or connected.
type Call struct {
	ID    string
	Queue string
	// Skill is the skill of Queue. Reconfigure keeps it in step with the queue;
	// a call whose queue was removed keeps the skill it joined with.
	Skill    string
	JoinedAt time.Time
	// Seq breaks ties between calls that joined at the same instant.
	Seq uint64
	// AgentID is the agent with the outstanding offer (Answered false) or the
	// connected agent (Answered true); "" while the call waits for an offer.
	AgentID  string
	Answered bool
	// Failed counts offers of this call that each agent did not answer (or
	// that were withdrawn because the agent went away).
	Failed map[string]int

	offers chan Offer // buffered 1; only the owner goroutine sends and closes
}

// State is everything the ACD knows. It is owned by one goroutine and is not
// safe for concurrent use.
type State struct {
	Queues map[string]QueueSpec
	Agents map[string]*Agent
	Calls  map[string]*Call

	nextSeq uint64
	scratch routeScratch
}

// NewState returns a state with the given configuration, all agents Offline
// and no calls.
func NewState(queues []QueueSpec, agents []AgentSpec) *State {
	s := &State{
		Agents: make(map[string]*Agent, len(agents)),
		Calls:  make(map[string]*Call),
	}
	s.reconfigure(queues, agents)
	return s
}

// reconfigure swaps in a new configuration. Agents keep their state; removed
// agents lose any reservation and linger only while connected to a call.
// Calls in a queue that still exists follow its new skill; calls in a removed
// queue keep waiting with the skill they joined with (new joins are refused).
func (s *State) reconfigure(queues []QueueSpec, agents []AgentSpec) {
	s.Queues = make(map[string]QueueSpec, len(queues))
	for _, q := range queues {
		s.Queues[q.Name] = q
	}
	for _, c := range s.Calls {
		if q, ok := s.Queues[c.Queue]; ok {
			c.Skill = q.Skill
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
		s.Agents[spec.ID] = &Agent{ID: spec.ID, Skills: skills, State: AgentOffline}
	}
	for id, ag := range s.Agents {
		if wanted[id] {
			continue
		}
		if ag.State == AgentReserved {
			s.withdraw(ag)
		}
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
		JoinedAt: now,
		Seq:      s.nextSeq,
		offers:   make(chan Offer, 1),
	}
	s.Calls[callID] = c
	return c, nil
}

// leave removes a call and frees its agent, who becomes idle from now.
// Unknown calls are ignored.
func (s *State) leave(callID string, now time.Time) {
	c, ok := s.Calls[callID]
	if !ok {
		return
	}
	delete(s.Calls, callID)
	close(c.offers)
	if c.AgentID == "" {
		return
	}
	ag, ok := s.Agents[c.AgentID]
	if !ok || ag.CallID != callID {
		return
	}
	ag.CallID = ""
	if ag.removed {
		delete(s.Agents, ag.ID)
		return
	}
	if ag.State == AgentReserved || ag.State == AgentBusy {
		// Wrap-up will go here: WrapUp until now+wrap instead of Available.
		ag.State = AgentAvailable
		ag.IdleSince = now
	}
}

// offerResult applies the outcome of an offer and reports whether it was the
// call's outstanding offer. Results for calls that left, or for offers that were
// withdrawn, change nothing and report false.
func (s *State) offerResult(callID, agentID string, answered bool) bool {
	c, ok := s.Calls[callID]
	if !ok || c.Answered || c.AgentID != agentID {
		return false
	}
	ag, ok := s.Agents[agentID]
	if !ok || ag.State != AgentReserved || ag.CallID != callID {
		return false // cannot happen while the invariants hold; refuse rather than corrupt
	}
	if answered {
		c.Answered = true
		ag.State = AgentBusy
		return true
	}
	s.release(ag, c)
	ag.State = AgentAvailable // IdleSince unchanged: a missed ring is not work
	return true
}

// agentOnline makes an Offline agent Available (idle from now), or Busy again if
// it went offline during a call that is still connected. Returns false for
// unknown agents.
func (s *State) agentOnline(id string, now time.Time) bool {
	ag, ok := s.Agents[id]
	if !ok {
		return false
	}
	if ag.State != AgentOffline {
		return true // re-registration refreshes must not reset the idle time
	}
	if c, ok := s.Calls[ag.CallID]; ok && c.Answered && c.AgentID == id {
		ag.State = AgentBusy
		return true
	}
	ag.CallID = ""
	ag.State = AgentAvailable
	ag.IdleSince = now
	return true
}

// agentOffline takes an agent out of routing. A reservation is withdrawn so the
// call gets the next offer; a connected call keeps its agent. Returns false for
// unknown agents.
func (s *State) agentOffline(id string) bool {
	ag, ok := s.Agents[id]
	if !ok {
		return false
	}
	if ag.State == AgentReserved {
		s.withdraw(ag)
	}
	ag.State = AgentOffline
	return true
}

// withdraw cancels the offer an agent is reserved for. The call counts it as a
// failure of that agent and waits for the next offer; an unread offer is taken
// back out of the call's channel so the call layer does not ring a gone agent.
func (s *State) withdraw(ag *Agent) {
	c, ok := s.Calls[ag.CallID]
	if ok && c.AgentID == ag.ID && !c.Answered {
		select {
		case <-c.offers:
		default:
		}
		s.release(ag, c)
	} else {
		ag.CallID = ""
	}
	ag.State = AgentAvailable
}

// release undoes a reservation between ag and c, counting a failed try.
func (s *State) release(ag *Agent, c *Call) {
	if c.Failed == nil {
		c.Failed = make(map[string]int)
	}
	c.Failed[ag.ID]++
	c.AgentID = ""
	ag.CallID = ""
}

// apply reserves the agents of offers returned by Route and hands each offer to
// its call without blocking.
func (s *State) apply(offers []Offer) {
	for _, o := range offers {
		c, ok := s.Calls[o.CallID]
		ag, ok2 := s.Agents[o.AgentID]
		if !ok || !ok2 || c.AgentID != "" || c.Answered || ag.State != AgentAvailable {
			continue // Route never produces these; guard the invariants anyway
		}
		ag.State = AgentReserved
		ag.CallID = c.ID
		c.AgentID = ag.ID
		// The channel is empty: the call had no outstanding offer and withdraw
		// drains withdrawn ones. Drain anyway so the send can never block.
		select {
		case <-c.offers:
		default:
		}
		c.offers <- o
	}
}

// closeAll ends every call's offer channel when the owner stops.
func (s *State) closeAll() {
	for id, c := range s.Calls {
		close(c.offers)
		delete(s.Calls, id)
	}
}
