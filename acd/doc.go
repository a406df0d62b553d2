// Package acd is hotline's automatic call distributor: queues, agents, skills,
// agent states and the routing decisions that connect waiting callers to agents.
//
// One goroutine (ACD.Run) owns all queue and agent state. Everything else talks to
// it through events: a call joins or leaves a queue, an agent comes online or goes
// offline, an offer is answered or not. After every event the owner runs Route, a
// pure function of the state and the clock, and applies the offers it returns.
// Because routing is pure, tests drive it with a fake clock and no sockets.
//
// An offer is a reservation: the agent is Reserved for exactly one call until the
// call layer reports the result (OfferResult) or the call leaves. An agent is
// never offered two calls at once and a call never has two outstanding offers,
// so two agents can never both be connected to one caller.
//
// Routing: waiting calls are served oldest first across all queues; each gets
// the longest-idle Available agent who has the queue's skill, preferring agents
// who have not yet failed to answer that call ("ring the next agent").
//
// Nothing on the decision path does I/O: offers are handed to the call layer
// through a per-call buffered channel without blocking, and only debug-level
// logging happens in the owner goroutine.
package acd
