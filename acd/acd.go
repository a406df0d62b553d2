package acd

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// eventBacklog bounds how many events may wait for the owner goroutine before
// senders wait; the owner never blocks, so senders only wait for it to catch up.
const eventBacklog = 1024

// ACD owns all queue and agent state in one goroutine (Run). Its methods are
// safe for concurrent use: they hand events to that goroutine. Join,
// OfferResult, Pause, Resume and Snapshot wait for its reply, so they wait for
// Run to start; after Run has returned every method does nothing (Join, Pause
// and Resume return ErrStopped).
type ACD struct {
	state   *State
	clock   Clock
	log     *slog.Logger
	events  chan func(now time.Time)
	done    chan struct{}
	started atomic.Bool
	// replies are the answers of ask events, sent once the owner has also
	// routed and set its timer: whoever waits on one sees all of that done.
	replies []func()
}

// New returns an ACD with the given configuration and every agent Offline.
// A nil clock means the real clock; a nil logger discards.
func New(settings Settings, queues []QueueSpec, agents []AgentSpec, clock Clock, logger *slog.Logger) *ACD {
	if clock == nil {
		clock = realClock{}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &ACD{
		state:  NewState(settings, queues, agents),
		clock:  clock,
		log:    logger,
		events: make(chan func(time.Time), eventBacklog),
		done:   make(chan struct{}),
	}
}

// Run is the owner goroutine: it applies events in arrival order and routes
// after each one. Its one timer wakes it at the state's earliest deadline (a
// retry or a busy back-off ending) to route again; an event that arrives after
// a deadline passed is routed as if the timer had fired first. Run returns
// when ctx is done, closing the offer channel of every call still in the ACD.
// Run may be called once.
func (a *ACD) Run(ctx context.Context) {
	if !a.started.CompareAndSwap(false, true) {
		a.log.Error("acd: Run called twice; ignoring")
		return
	}
	defer close(a.done)
	defer a.state.closeAll()
	al := newAlarm(a.clock)
	defer al.stop()
	for {
		var now time.Time
		select {
		case <-ctx.Done():
			return
		case <-al.wake:
			now = a.clock.Now()
			a.route(now)
		case ev := <-a.events:
			now = a.clock.Now()
			if al.due(now) {
				a.route(now)
			}
			ev(now)
			a.route(now)
		}
		al.set(nextDeadline(a.state, now))
		for _, reply := range a.replies {
			reply()
		}
		clear(a.replies)
		a.replies = a.replies[:0]
	}
}

// route runs Route and applies its offers.
func (a *ACD) route(now time.Time) {
	offers := Route(a.state, now)
	a.state.apply(offers)
	for _, o := range offers {
		a.log.Debug("acd offer", "call", o.CallID, "queue", o.Queue, "agent", o.AgentID)
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

// ask runs fn in the owner goroutine and returns its result once the owner
// has routed after it; ok is false if the ACD stopped first.
func ask[T any](a *ACD, fn func(now time.Time) T) (result T, ok bool) {
	reply := make(chan T, 1)
	if !a.send(func(now time.Time) {
		result := fn(now)
		a.replies = append(a.replies, func() { reply <- result })
	}) {
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
// queue's new skill and retry; calls in a removed queue keep waiting with their
// old ones but no new call can join it. New settings apply to later results.
func (a *ACD) Reconfigure(settings Settings, queues []QueueSpec, agents []AgentSpec) {
	queues = append([]QueueSpec(nil), queues...)
	agents = append([]AgentSpec(nil), agents...)
	a.send(func(time.Time) {
		a.state.reconfigure(settings, queues, agents)
		a.log.Info("acd reconfigured", "queues", len(queues), "agents", len(agents),
			"busy_backoff", settings.BusyBackoff, "max_no_answer", settings.MaxNoAnswer)
	})
}

// Presence is told, in order, how an agent's phones can be reached.
// PresenceReachable makes an Offline or Unreachable agent Available, idle from
// now (or Busy again if it is still on its call); a refresh keeps the idle
// time. PresenceUnreachable and PresenceOffline take the agent out of offers
// and withdraw an offer ringing on it: the call gets the next offer at once,
// and the call layer must cancel the old agent leg.
func (a *ACD) Presence(agentID string, p Presence) {
	a.send(func(now time.Time) {
		if !a.state.presence(agentID, p, now) {
			a.log.Debug("acd: presence for unknown agent ignored", "agent", agentID, "presence", p)
		}
	})
}

// Pause takes an agent out of offers with a reason until Resume. An offer
// ringing on the agent stays until its result; an agent on a call finishes it.
// A pause survives the agent going offline. It returns ErrUnknownAgent for
// agents not configured.
func (a *ACD) Pause(agentID, reason string) error {
	err, ok := ask(a, func(time.Time) error { return a.state.pause(agentID, reason) })
	if !ok {
		return ErrStopped
	}
	return err
}

// Resume ends an agent's pause (also the automatic one after missed rings)
// and resets the count of missed rings. The idle time is kept. It returns
// ErrUnknownAgent for agents not configured.
func (a *ACD) Resume(agentID string) error {
	err, ok := ask(a, func(time.Time) error { return a.state.resume(agentID) })
	if !ok {
		return ErrStopped
	}
	return err
}

// Join puts a call into a queue. Offers arrive on the returned channel
// (buffered 1), one at a time; the channel is closed when the call leaves or
// the ACD stops. Every offer read from the channel must get an OfferResult,
// also after Leave: until then the agent stays Reserved.
//
// If the offered agent goes offline or unreachable (or is removed by a reload)
// before the result, the offer is withdrawn: a new offer may arrive while the
// old agent is still ringing; the call layer must then cancel the old agent
// leg, and OfferResult for it changes nothing.
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

// OfferResult reports how an offer ended. It returns whether the call is
// still connected to this agent's offer: true only for OfferAnswered on the
// call's live offer, and the agent is then Busy with the call. For
// OfferAnswered, false means the ACD has not connected the agent (the call
// left, or the offer was withdrawn): the call layer must hang up that leg.
//
// The outcome applies to the agent whether or not the call is still there:
// OfferBusy keeps it out of offers for BusyBackoff; OfferUnreachable makes it
// Unreachable until Presence(agent, PresenceReachable); OfferNoAnswer counts
// towards the automatic pause after MaxNoAnswer in a row; OfferFailed and
// OfferAbandoned only free it. A failed offer (neither answered nor abandoned)
// of a call still waiting delays its next offer by its queue's Retry. The
// agent's idle time is kept unless it answered.
func (a *ACD) OfferResult(callID, agentID string, outcome Outcome) bool {
	connected, _ := ask(a, func(now time.Time) bool {
		ag := a.state.Agents[agentID]
		wasPaused := ag != nil && ag.Paused
		connected := a.state.offerResult(callID, agentID, outcome, now)
		a.log.Debug("acd offer result", "call", callID, "agent", agentID, "outcome", outcome, "connected", connected)
		if ag != nil && ag.Paused && !wasPaused {
			a.log.Info("acd: agent paused", "agent", agentID, "reason", ag.PauseReason, "no_answers", ag.NoAnswers)
		}
		return connected
	})
	return connected
}

// Leave removes a call (caller hung up or call finished): no offer is made for
// it any more. A Busy agent becomes Available, idle from now; an agent whose
// phone rings for the call stays Reserved until OfferResult. Events for the
// call after Leave are ignored, except that result.
func (a *ACD) Leave(callID string) {
	a.send(func(now time.Time) {
		a.state.leave(callID, now)
	})
}

// Snapshot returns a copy of the queues and agents, taken by the owner
// goroutine after every event sent before it. It is empty once the ACD stopped.
func (a *ACD) Snapshot() Snapshot {
	snap, _ := ask(a, func(now time.Time) Snapshot { return a.state.snapshot(now) })
	return snap
}
