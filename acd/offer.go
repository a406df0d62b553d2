package acd

import (
	"fmt"
	"time"
)

// Outcome is how an offer ended, as the call layer classified the agent leg.
type Outcome int

const (
	OfferAnswered    Outcome = iota // the agent answered: the agent is Busy with the call
	OfferBusy                       // 486, 600, 603 (and 480): agent kept out of offers for BusyBackoff
	OfferUnreachable                // 408, 503, transport error, not registered: agent Unreachable until Presence(..., Reachable)
	OfferNoAnswer                   // rang for the ring timeout: counts towards the automatic pause
	OfferFailed                     // any other failure (e.g. 488): agent available again, no penalty
	OfferAbandoned                  // the caller left while ringing and the leg is now resolved (cancelled, or answered late and hung up)
)

func (o Outcome) String() string {
	switch o {
	case OfferAnswered:
		return "answered"
	case OfferBusy:
		return "busy"
	case OfferUnreachable:
		return "unreachable"
	case OfferNoAnswer:
		return "no-answer"
	case OfferFailed:
		return "failed"
	case OfferAbandoned:
		return "abandoned"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// offerResult ends the reservation of agentID for callID and applies the
// outcome to the agent, whether or not the call is still there, and to the
// call if this was its live offer. It reports whether the call is now
// connected to the agent. A result for a reservation that no longer exists
// (withdrawn, or a duplicate) changes nothing.
func (s *State) offerResult(callID, agentID string, outcome Outcome, now time.Time) (connected bool) {
	ag, ok := s.Agents[agentID]
	if !ok || !ag.reserved() || ag.CallID != callID {
		return false
	}
	c := s.Calls[callID]
	live := c != nil && c.AgentID == agentID // else the call left (its ID may be in use again)
	if live && unread(c) {
		// The call layer has not read this offer, so the result is for an
		// earlier one to the same agent, withdrawn when the agent went away.
		return false
	}
	if outcome == OfferAnswered {
		ag.NoAnswers = 0
		if live {
			ag.Connected, c.Answered = true, true
			return true
		}
		s.endCall(ag, now) // picked up a call that had gone: that was work
		return false
	}

	ag.CallID = ""
	if live {
		c.AgentID = ""
		if outcome != OfferAbandoned {
			c.failedOn(agentID)
			c.NotBefore = now.Add(c.Retry)
		}
	}
	switch outcome {
	case OfferBusy:
		ag.NotBefore = now.Add(s.Settings.BusyBackoff)
	case OfferUnreachable:
		ag.Presence = PresenceUnreachable
	case OfferNoAnswer:
		ag.NoAnswers++
		if limit := s.Settings.MaxNoAnswer; limit > 0 && ag.NoAnswers >= limit && !ag.Paused {
			ag.Paused, ag.PauseReason = true, PauseNoAnswer
		}
	}
	// OfferFailed, OfferAbandoned: available again, idle time kept.
	return false
}

// presence records how an agent's phones can be reached. Losing them
// withdraws a ringing offer; coming back makes the agent idle from now unless
// it is still on its call. A refresh changes nothing. Returns false for
// unknown agents or presences.
func (s *State) presence(id string, p Presence, now time.Time) bool {
	ag, ok := s.Agents[id]
	if !ok || p < PresenceOffline || p > PresenceReachable {
		return false
	}
	switch {
	case p == ag.Presence:
		return true
	case p != PresenceReachable:
		s.withdraw(ag)
	case ag.CallID == "":
		ag.IdleSince = now
	}
	ag.Presence = p
	return true
}

// pause takes an agent out of offers. A ringing offer stays until its result.
func (s *State) pause(id, reason string) error {
	ag, ok := s.Agents[id]
	if !ok {
		return fmt.Errorf("pause agent %q: %w", id, ErrUnknownAgent)
	}
	ag.Paused, ag.PauseReason = true, reason
	return nil
}

// resume ends a pause and the count of missed rings that may have caused it.
func (s *State) resume(id string) error {
	ag, ok := s.Agents[id]
	if !ok {
		return fmt.Errorf("resume agent %q: %w", id, ErrUnknownAgent)
	}
	ag.Paused, ag.PauseReason, ag.NoAnswers = false, "", 0
	return nil
}

// withdraw cancels the offer an agent is reserved for, if any. A call still
// waiting counts it as a failure of that agent and gets the next offer at
// once; an unread offer is taken back out of the call's channel so the call
// layer does not ring a gone agent.
func (s *State) withdraw(ag *Agent) {
	if !ag.reserved() {
		return
	}
	if c, ok := s.Calls[ag.CallID]; ok && c.AgentID == ag.ID {
		takeBack(c)
		c.AgentID = ""
		c.failedOn(ag.ID)
	}
	ag.CallID = ""
}

// failedOn counts a failed try of agentID, so that Route rings the next agent.
func (c *Call) failedOn(agentID string) {
	if c.Failed == nil {
		c.Failed = make(map[string]int)
	}
	c.Failed[agentID]++
}

// takeBack removes an offer the call layer has not read yet and reports
// whether there was one.
func takeBack(c *Call) bool {
	select {
	case <-c.offers:
		return true
	default:
		return false
	}
}

// unread reports whether the call's offer still waits in its channel.
func unread(c *Call) bool {
	select {
	case o := <-c.offers:
		c.offers <- o // only the owner sends: the buffer is free again
		return true
	default:
		return false
	}
}

// apply reserves the agents of offers returned by Route and hands each offer to
// its call without blocking.
func (s *State) apply(offers []Offer) {
	for _, o := range offers {
		c, ok := s.Calls[o.CallID]
		ag, ok2 := s.Agents[o.AgentID]
		if !ok || !ok2 || c.AgentID != "" || c.Answered || ag.State() != AgentAvailable {
			continue // Route never produces these; guard the invariants anyway
		}
		ag.CallID, ag.Connected = c.ID, false
		c.AgentID = ag.ID
		// The channel is empty: the call had no outstanding offer and withdraw
		// drains withdrawn ones. Drain anyway so the send can never block.
		takeBack(c)
		c.offers <- o
	}
}
