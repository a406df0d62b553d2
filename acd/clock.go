package acd

import "time"

// Clock tells the ACD the time and wakes its owner goroutine at deadlines.
// Tests use a fake one whose Advance fires the timers it passes.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f once the clock reaches at (at once if it has), unless
	// the timer is stopped first. The ACD's f never blocks. Deadlines are
	// absolute so that the time the owner took to get here cannot shift them.
	AfterFunc(at time.Time, f func()) Timer
}

// Timer is the one timer the owner goroutine keeps.
type Timer interface {
	Stop() bool
	Reset(at time.Time) bool
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(at time.Time, f func()) Timer {
	return realTimer{time.AfterFunc(time.Until(at), f)}
}

// realTimer is a time.Timer set by deadline; time.Until uses the monotonic
// clock reading that deadlines derived from time.Now carry.
type realTimer struct{ *time.Timer }

func (t realTimer) Reset(at time.Time) bool { return t.Timer.Reset(time.Until(at)) }

// alarm is the owner's single timer, set to the earliest deadline of the state.
// It is used by the owner goroutine only.
type alarm struct {
	clock Clock
	timer Timer
	at    time.Time // zero when not set
	wake  chan struct{}
}

func newAlarm(clock Clock) *alarm {
	return &alarm{clock: clock, wake: make(chan struct{}, 1)}
}

// ring is the timer's function: it tells the owner without ever blocking.
func (al *alarm) ring() {
	select {
	case al.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// due reports whether the deadline the alarm is set for has passed at now,
// whether or not the timer has fired yet.
func (al *alarm) due(now time.Time) bool {
	return !al.at.IsZero() && !now.Before(al.at)
}

// set moves the alarm to deadline (zero: none), keeping one timer.
func (al *alarm) set(deadline time.Time) {
	if deadline.Equal(al.at) {
		return
	}
	al.at = deadline
	switch {
	case deadline.IsZero():
		if al.timer != nil {
			al.timer.Stop()
		}
	case al.timer == nil:
		al.timer = al.clock.AfterFunc(deadline, al.ring)
	default:
		al.timer.Reset(deadline)
	}
}

func (al *alarm) stop() {
	if al.timer != nil {
		al.timer.Stop()
	}
}
