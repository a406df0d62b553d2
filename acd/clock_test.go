package acd

import (
	"slices"
	"sync"
	"time"
)

// fakeClock is a Clock that moves only when a test calls Advance. Advance
// calls, in the advancing goroutine, the function of every timer whose
// deadline it reaches; the ACD's function only marks a wake-up for the owner,
// which then routes. Tests see the result deterministically by reading the
// offer channel (the owner sends there after waking) or by sending any event:
// an event that arrives after a deadline passed is routed as if the timer had
// fired first.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer
	created int  // AfterFunc calls: the owner keeps one timer
	silent  bool // timers never fire: only events make the owner route
}

type fakeTimer struct {
	clock  *fakeClock
	when   time.Time
	f      func()
	active bool
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(at time.Time, f func()) Timer {
	c.mu.Lock()
	t := &fakeTimer{clock: c, f: f}
	c.timers = append(c.timers, t)
	c.created++
	c.mu.Unlock()
	t.Reset(at)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	was := t.active
	t.active = false
	return was
}

// Reset sets the timer to at; like time.AfterFunc, a deadline already
// reached fires at once.
func (t *fakeTimer) Reset(at time.Time) bool {
	t.clock.mu.Lock()
	was := t.active
	t.when, t.active = at, true
	t.clock.mu.Unlock()
	t.clock.Advance(0)
	return was
}

// Advance moves the clock on and fires the timers it reaches, earliest first.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	for _, t := range c.timers {
		if t.active && !t.when.After(c.now) {
			t.active = false
			due = append(due, t)
		}
	}
	if c.silent {
		due = nil
	}
	c.mu.Unlock()
	slices.SortFunc(due, func(a, b *fakeTimer) int { return a.when.Compare(b.when) })
	for _, t := range due {
		t.f()
	}
}

// pending returns the deadlines of the timers that have not fired or been stopped.
func (c *fakeClock) pending() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var at []time.Time
	for _, t := range c.timers {
		if t.active {
			at = append(at, t.when)
		}
	}
	return at
}

// timersCreated says how many timers the ACD asked for.
func (c *fakeClock) timersCreated() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.created
}
