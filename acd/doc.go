// Package acd is hotline's automatic call distributor: queues, agents, skills,
// agent states and the routing decisions that connect waiting callers to agents.
//
// One goroutine (ACD.Run) owns all queue and agent state. Everything else talks to
// it through events: a call joins or leaves a queue, an agent's phones become
// reachable or not, an agent pauses or resumes, an offer ends. After every event
// the owner runs Route, a pure function of the state and the clock, and applies
// the offers it returns. Because routing is pure, tests drive it with a fake clock
// and no sockets.
//
// ACD state is timed: an agent whose phone answered busy is not offered before its
// NotBefore, and a call whose offer failed waits its queue's Retry. The owner keeps
// one timer, set to the earliest such deadline, and routes again when it fires, so
// no offer loop can spin however fast phones fail.
//
// An offer is a reservation: the agent is Reserved for exactly one call until the
// call layer reports how the offer ended (OfferResult), even if the call left
// meanwhile: the agent's phone rings until its leg is cancelled or, answered late,
// hung up. An agent is never offered two calls at once and a call never has two
// outstanding offers, so two agents can never both be connected to one caller.
//
// Each failed offer is classified: busy or declined keeps the agent out of offers
// for Settings.BusyBackoff; unreachable marks it Unreachable until its phones
// answer again; ring-no-answer counts towards an automatic pause (reason
// "no-answer") after Settings.MaxNoAnswer in a row.
//
// Routing: waiting calls are served oldest first across all queues; each gets
// the longest-idle Available agent who has the queue's skill, preferring agents
// who have not yet failed to answer that call ("ring the next agent").
//
// Nothing on the decision path does I/O: offers are handed to the call layer
// through a per-call buffered channel without blocking, and the owner logs only
// at debug level, except reloads and automatic pauses.
package acd
