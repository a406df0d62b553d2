package sip

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

const (
	defaultExpires = 3600
	minExpires     = 60
	maxExpires     = 7200
)

// Binding is where an agent can be reached: the Contact it registered and
// the flow its REGISTER really came from. Requests go to the flow (the
// agent's NAT), not to the Contact, which is often a private address.
type Binding struct {
	User      string
	Contact   sip.Uri
	Source    string // host:port the REGISTER came from
	Transport string // "UDP" or "TCP"
	Expires   time.Time
	UserAgent string
}

// Registrar keeps one binding per agent (the newest wins) and tells
// onChange when an agent becomes reachable or unreachable.
type Registrar struct {
	now      func() time.Time
	onChange func(user string, registered bool)

	mu       sync.Mutex
	bindings map[string]Binding
}

// NewRegistrar returns an empty registrar. onChange may be nil; it is
// called without locks held.
func NewRegistrar(onChange func(user string, registered bool)) *Registrar {
	if onChange == nil {
		onChange = func(string, bool) {}
	}
	return &Registrar{now: time.Now, onChange: onChange, bindings: make(map[string]Binding)}
}

// Lookup returns the live binding of user.
func (r *Registrar) Lookup(user string) (Binding, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.bindings[user]
	if !ok || r.now().After(b.Expires) {
		return Binding{}, false
	}
	return b, true
}

// Bindings returns a copy of all live bindings.
func (r *Registrar) Bindings() []Binding {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	out := make([]Binding, 0, len(r.bindings))
	for _, b := range r.bindings {
		if !now.After(b.Expires) {
			out = append(out, b)
		}
	}
	return out
}

// Set stores or refreshes a binding; expires 0 removes it.
func (r *Registrar) Set(b Binding, expires time.Duration) {
	r.mu.Lock()
	_, had := r.bindings[b.User]
	if expires <= 0 {
		delete(r.bindings, b.User)
	} else {
		b.Expires = r.now().Add(expires)
		r.bindings[b.User] = b
	}
	r.mu.Unlock()
	switch {
	case expires > 0 && !had:
		r.onChange(b.User, true)
	case expires <= 0 && had:
		r.onChange(b.User, false)
	}
}

// Remove drops user's binding (unregister, or unreachable, or deleted from config).
func (r *Registrar) Remove(user string) { r.Set(Binding{User: user}, 0) }

// RemoveFlow drops user's binding only if it still points at source, so a
// phone that re-registered from a new flow meanwhile is kept.
func (r *Registrar) RemoveFlow(user, source string) {
	r.mu.Lock()
	b, ok := r.bindings[user]
	if ok && b.Source == source {
		delete(r.bindings, user)
	}
	r.mu.Unlock()
	if ok && b.Source == source {
		r.onChange(user, false)
	}
}

// Expire removes bindings whose time ran out; the server calls it periodically.
func (r *Registrar) Expire() {
	r.mu.Lock()
	now := r.now()
	var gone []string
	for u, b := range r.bindings {
		if now.After(b.Expires) {
			delete(r.bindings, u)
			gone = append(gone, u)
		}
	}
	r.mu.Unlock()
	for _, u := range gone {
		r.onChange(u, false)
	}
}

// requestedExpiry reads the expiry a REGISTER asks for: the Contact's
// expires parameter, else the Expires header, else the default; clamped.
// "*" contacts (unregister all) are reported as 0.
func requestedExpiry(req *sip.Request) (time.Duration, error) {
	secs := defaultExpires
	if h := req.GetHeader("Expires"); h != nil {
		n, err := strconv.Atoi(strings.TrimSpace(h.Value()))
		if err != nil || n < 0 {
			return 0, fmt.Errorf("bad Expires header %q", h.Value())
		}
		secs = n
	}
	c := req.Contact()
	if c != nil {
		if c.Address.Wildcard {
			return 0, nil
		}
		if v, ok := c.Params.Get("expires"); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("bad contact expires %q", v)
			}
			secs = n
		}
	}
	if secs == 0 {
		return 0, nil
	}
	secs = min(max(secs, minExpires), maxExpires)
	return time.Duration(secs) * time.Second, nil
}
