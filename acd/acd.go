package acd

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// Clock tells the ACD the time; tests use a fake one.
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// eventBacklog bounds how many events may wait for the owner goroutine before
// senders wait; the owner never blocks, so senders only wait for it to catch up.
const eventBacklog = 1024

// ACD owns all queue and agent state in one goroutine (Run). Its methods are
// safe for concurrent use: they hand events to that goroutine. Join,
// OfferResult and Snapshot wait for its reply, so they wait for Run to start;
// after Run has returned every method does nothing (Join returns ErrStopped).
type ACD struct {
	state   *State
	clock   Clock
	log     *slog.Logger
	events  chan func(now time.Time)
	done    chan struct{}
	started atomic.Bool
}

// New returns an ACD with the given configuration and every agent Offline.
// A nil clock means the real clock; a nil logger discards.
func New(queues []QueueSpec, agents []AgentSpec, clock Clock, logger *slog.Logger) *ACD {
	if clock == nil {
		clock = realClock{}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &ACD{
		state:  NewState(queues, agents),
		clock:  clock,
		log:    logger,
		events: make(chan func(time.Time), eventBacklog),
		done:   make(chan struct{}),
	}
}

// Run is the owner goroutine: it applies events in arrival order and routes
// after each one. It returns when ctx is done, closing the offer channel of
// every call still in the ACD. Run may be called once.
func (a *ACD) Run(ctx context.Context) {
	if !a.started.CompareAndSwap(false, true) {
		a.log.Error("acd: Run called twice; ignoring")
		return
	}
	defer close(a.done)
	defer a.state.closeAll()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-a.events:
			now := a.clock.Now()
			ev(now)
			offers := Route(a.state, now)
			a.state.apply(offers)
			for _, o := range offers {
				a.log.Debug("acd offer", "call", o.CallID, "queue", o.Queue, "agent", o.AgentID)
			}
		}
	}
}

// send queues an event for the owner; false if the ACD has stopped.
func (a *ACD) send(ev func(now time.Time)) bool {
	select {
	case a.events <- ev:
		return true
	case <-a.done:
		return false
	}
}

// ask runs fn in the owner goroutine and returns its result; ok is false if
// the ACD stopped first.
func ask[T any](a *ACD, fn func(now time.Time) T) (result T, ok bool) {
	reply := make(chan T, 1)
	if !a.send(func(now time.Time) { reply <- fn(now) }) {
		return result, false
	}
	select {
	case result = <-reply:
		return result, true
	case <-a.done:
		// The owner may have answered just before stopping.
		select {
		case result = <-reply:
			return result, true
		default:
			return result, false
		}
	}
}

// Reconfigure swaps in a new configuration (live reload). Agents keep their
// state and idle time; new agents start Offline; a removed agent loses any
// reservation (the call gets the next offer) and, if connected, stays until
// that call ends. Calls keep waiting in queues that still exist, routed by the
// queue's new skill; calls in a removed queue keep waiting with their old skill
// but no new call can join it.
func (a *ACD) Reconfigure(queues []QueueSpec, agents []AgentSpec) {
	queues = append([]QueueSpec(nil), queues...)
	agents = append([]AgentSpec(nil), agents...)
	a.send(func(time.Time) {
		a.state.reconfigure(queues, agents)
		a.log.Info("acd reconfigured", "queues", len(queues), "agents", len(agents))
	})
}

// AgentOnline marks a registered or logged-in agent Available, idle since now.
// An agent already Available keeps its idle time; Reserved and Busy agents are
// unchanged.
func (a *ACD) AgentOnline(id string) {
	a.send(func(now time.Time) {
		if !a.state.agentOnline(id, now) {
			a.log.Debug("acd: online event for unknown agent", "agent", id)
		}
	})
}

// AgentOffline takes an unregistered or unreachable agent out of routing. An
// offer ringing on the agent is withdrawn and the call gets the next offer.
func (a *ACD) AgentOffline(id string) {
	a.send(func(time.Time) {
		if !a.state.agentOffline(id) {
			a.log.Debug("acd: offline event for unknown agent", "agent", id)
		}
	})
}

// Join puts a call into a queue. Offers arrive on the returned channel
// (buffered 1), one at a time; the agent stays reserved until OfferResult. The
// channel is closed when the call leaves or the ACD stops.
//
// If the offered agent goes offline (or is removed by a reload) before the
// result, the offer is withdrawn: OfferResult for it returns false and a new
// offer may arrive while the old agent is still ringing; the call layer must
// then cancel the old agent leg.
func (a *ACD) Join(callID, queue string) (<-chan Offer, error) {
	type joined struct {
		offers <-chan Offer
		err    error
	}
	res, ok := ask(a, func(now time.Time) joined {
		c, err := a.state.join(callID, queue, now)
		if err != nil {
			return joined{err: err}
		}
		a.log.Debug("acd join", "call", callID, "queue", queue)
		return joined{offers: c.offers}
	})
	if !ok {
		return nil, ErrStopped
	}
	return res.offers, res.err
}

// OfferResult reports whether the agent answered an offer. Answered makes the
// agent Busy with the call; not answered makes it Available again with its
// idle time kept, and the call waits for the next offer.
//
// It returns whether the result applied to the call's outstanding offer. False
// means the offer is gone (the call left, or the agent went offline and the
// offer was withdrawn): for answered=true the call layer must hang up that
// agent leg, because the ACD has not connected the agent to the call.
func (a *ACD) OfferResult(callID, agentID string, answered bool) bool {
	applied, _ := ask(a, func(time.Time) bool {
		applied := a.state.offerResult(callID, agentID, answered)
		if !applied {
			a.log.Debug("acd: stale offer result ignored", "call", callID, "agent", agentID, "answered", answered)
		}
		return applied
	})
	return applied
}

// Leave removes a call (caller hung up or call finished). A Reserved or Busy
// agent becomes Available, idle since now. Events for the call after Leave are
// ignored.
func (a *ACD) Leave(callID string) {
	a.send(func(now time.Time) {
		a.state.leave(callID, now)
	})
}

// Snapshot returns a copy of the queues and agents, taken by the owner
// goroutine after every event sent before it. It is empty once the ACD stopped.
func (a *ACD) Snapshot() Snapshot {
	snap, _ := ask(a, func(time.Time) Snapshot { return a.state.snapshot() })
	return snap
}
