package acd

import (
	"fmt"
	"time"
)

// AgentState is where an agent is, as routing sees it. It is derived from the
// agent's presence, pause and call (Agent.State), so the facts can never
// disagree with it.
type AgentState int

const (
	AgentOffline     AgentState = iota // no registration: never offered
	AgentUnreachable                   // registered, but its phones do not answer: never offered
	AgentAvailable                     // idle: offered a call once its NotBefore has passed
	AgentPaused                        // out of offers until Resume, with a reason
	AgentReserved                      // one offer is ringing: reserved for exactly one call
	AgentBusy                          // connected to a call
	// WrapUp (until a deadline) belongs here: not offered, and Route compares
	// its deadline with now, as it does NotBefore.
)

func (s AgentState) String() string {
	switch s {
	case AgentOffline:
		return "offline"
	case AgentUnreachable:
		return "unreachable"
	case AgentAvailable:
		return "available"
	case AgentPaused:
		return "paused"
	case AgentReserved:
		return "reserved"
	case AgentBusy:
		return "busy"
	}
	return fmt.Sprintf("AgentState(%d)", int(s))
}

// Presence is how an agent's phones can be reached, as the SIP layer sees it.
type Presence int

const (
	PresenceOffline     Presence = iota // no registration
	PresenceUnreachable                 // registered, but no device answers (qualify failing)
	PresenceReachable
)

func (p Presence) String() string {
	switch p {
	case PresenceOffline:
		return "offline"
	case PresenceUnreachable:
		return "unreachable"
	case PresenceReachable:
		return "reachable"
	}
	return fmt.Sprintf("Presence(%d)", int(p))
}

// PauseNoAnswer is the reason of the automatic pause after MaxNoAnswer
// offers in a row rang out.
const PauseNoAnswer = "no-answer"

// Agent is the live state of one agent.
type Agent struct {
	ID     string
	Skills []string
	// Presence is what the SIP layer (or an unreachable offer) said last.
	Presence Presence
	// Paused keeps the agent out of offers until Resume; PauseReason says why.
	// A pause outlives going offline: it is the agent's choice, not the phone's.
	Paused      bool
	PauseReason string
	// CallID is the call the agent is reserved for (ringing) or connected to
	// (Connected), "" if none. A reservation outlives its call leaving: the
	// phone rings until the call layer reports the leg resolved. A connected
	// agent who goes offline keeps the call, so that coming back during it
	// restores Busy.
	CallID    string
	Connected bool
	// IdleSince orders Available agents: the earliest is offered first. A
	// failed offer keeps it; the end of a call resets it.
	IdleSince time.Time
	// NotBefore keeps an agent whose phone answered busy out of offers until
	// then (busy back-off); it may lie in the past.
	NotBefore time.Time
	// NoAnswers counts offers in a row that rang out; at MaxNoAnswer the agent
	// is paused with PauseNoAnswer. An answer or Resume resets it.
	NoAnswers int

	// removed marks an agent dropped by Reconfigure while still on a call; it
	// is deleted when that call ends.
	removed bool
}

// State derives the agent's state from its facts.
func (ag *Agent) State() AgentState {
	switch {
	case ag.CallID != "" && !ag.Connected:
		return AgentReserved // only reachable agents hold reservations
	case ag.Presence == PresenceOffline:
		return AgentOffline
	case ag.Presence == PresenceUnreachable:
		return AgentUnreachable
	case ag.CallID != "":
		return AgentBusy
	case ag.Paused:
		return AgentPaused
	}
	return AgentAvailable
}

// offerable reports whether Route may offer the agent a call at now.
func (ag *Agent) offerable(now time.Time) bool {
	return ag.State() == AgentAvailable && !now.Before(ag.NotBefore)
}

// reserved reports whether an offer to the agent is ringing.
func (ag *Agent) reserved() bool { return ag.CallID != "" && !ag.Connected }

func (ag *Agent) hasSkill(skill string) bool {
	for _, s := range ag.Skills {
		if s == skill {
			return true
		}
	}
	return false
}
