package sip

import (
	"cmp"
	"errors"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/hotline-pbx/hotline/store"
)

// Presence is what the ACD needs to know about an agent's phones.
type Presence int

const (
	PresenceOffline     Presence = iota // no live registration
	PresenceUnreachable                 // registered, but no device answers
	PresenceReachable                   // at least one device can be rung
)

func (p Presence) String() string {
	switch p {
	case PresenceUnreachable:
		return "unreachable"
	case PresenceReachable:
		return "reachable"
	default:
		return "offline"
	}
}

// Binding is one registered device of an agent: the Contact it registered
// and the flow its REGISTER really came from. Requests go to the flow (the
// device's NAT, or the proxies of its Path), not to the Contact, which is
// often a private address.
type Binding struct {
	User      string
	Key       string    // the device: its +sip.instance, else its Contact URI
	Instance  string    // +sip.instance (RFC 5626), "" when the device sent none
	Contact   sip.Uri   // Request-URI of requests to the device
	Source    string    // host:port the REGISTER came from
	Transport string    // "UDP" or "TCP", of the REGISTER
	Path      []sip.Uri // RFC 3327: proxies to go through, first hop first
	Expires   time.Time
	UserAgent string
	CallID    string // of the last REGISTER, for RFC 3261 §10.3 ordering
	CSeq      uint32
	Reachable bool // answered its last qualify probes (or just registered)

	registered uint64    // order of its last REGISTER: higher is newer
	missed     int       // qualify probes missed in a row
	phase      float64   // its qualify slot, as a fraction of the interval
	nextProbe  time.Time // zero: not scheduled yet
}

// maxDevices is how many devices one agent may keep registered.
const maxDevices = 10

// errOutOfOrder is a REGISTER older than what a binding already holds.
var errOutOfOrder = errors.New("register out of order")

// Registrar keeps each agent's devices and tells onChange how the agent's
// presence changes: only on changes, in the order they happened, one call
// at a time and never with a lock held (onChange may call back in).
type Registrar struct {
	now      func() time.Time
	onChange func(user string, p Presence)
	store    store.Bindings // nil: registrations live in memory only
	epoch    time.Time      // origin of the qualify slots

	mu        sync.Mutex
	devices   map[string]map[string]*Binding // user -> key -> device
	presence  map[string]Presence            // last told; absent is offline
	seq       uint64                         // REGISTERs applied
	phases    uint64                         // qualify phases handed out
	pending   []presenceChange               // told in this order
	notifying bool                           // someone is delivering pending
}

type presenceChange struct {
	user     string
	presence Presence
}

// NewRegistrar returns an empty registrar that persists to bindings (may be
// nil) and reports presence changes to onChange (may be nil).
func NewRegistrar(bindings store.Bindings, onChange func(user string, p Presence)) *Registrar {
	if onChange == nil {
		onChange = func(string, Presence) {}
	}
	r := &Registrar{now: time.Now, onChange: onChange, store: bindings,
		devices: make(map[string]map[string]*Binding), presence: make(map[string]Presence)}
	r.epoch = r.now()
	return r
}

// Devices returns the live, reachable devices of user, newest registration
// first. Empty means there is nobody to ring.
func (r *Registrar) Devices(user string) []Binding {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.listLocked(user, true)
}

// Lookup returns the newest reachable device of user.
func (r *Registrar) Lookup(user string) (Binding, bool) {
	if d := r.Devices(user); len(d) > 0 {
		return d[0], true
	}
	return Binding{}, false
}

// Bindings returns every live binding, reachable or not, by user and then
// newest first.
func (r *Registrar) Bindings() []Binding {
	r.mu.Lock()
	defer r.mu.Unlock()
	users := make([]string, 0, len(r.devices))
	for u := range r.devices {
		users = append(users, u)
	}
	slices.Sort(users)
	var out []Binding
	for _, u := range users {
		out = append(out, r.listLocked(u, false)...)
	}
	return out
}

// Presence is user's presence as last reported to onChange (or about to be).
func (r *Registrar) Presence(user string) Presence {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.presence[user]
}

func (r *Registrar) listLocked(user string, reachableOnly bool) []Binding {
	now := r.now()
	var out []Binding
	for _, b := range r.devices[user] {
		if !now.After(b.Expires) && (b.Reachable || !reachableOnly) {
			out = append(out, *b)
		}
	}
	slices.SortFunc(out, func(a, b Binding) int { return cmp.Compare(b.registered, a.registered) })
	return out
}

// Remove drops all of user's devices (the agent was deleted from config).
func (r *Registrar) Remove(user string) {
	r.mu.Lock()
	for key := range r.devices[user] {
		r.deleteLocked(user, key)
	}
	r.changedLocked(user)
	r.mu.Unlock()
	r.notify()
}

// MarkUnreachable takes one device out of ringing after a request to it
// failed (408, 503, transport error) until it answers a qualify probe.
func (r *Registrar) MarkUnreachable(user, key string) {
	r.mu.Lock()
	if b := r.devices[user][key]; b != nil && b.Reachable {
		b.Reachable, b.missed = false, qualifyMisses
		r.changedLocked(user)
	}
	r.mu.Unlock()
	r.notify()
}

// Expire removes the devices whose registration ran out.
func (r *Registrar) Expire() {
	r.mu.Lock()
	now := r.now()
	for user, devs := range r.devices {
		n := len(devs)
		for key, b := range devs {
			if now.After(b.Expires) {
				r.deleteLocked(user, key)
			}
		}
		if len(devs) != n {
			r.changedLocked(user)
		}
	}
	r.mu.Unlock()
	r.notify()
}

// contactUpdate is one Contact of a REGISTER: b carries the device and the
// flow; expires 0 removes the device.
type contactUpdate struct {
	b       Binding
	expires time.Duration
}

// update applies one REGISTER of user atomically: every contact or none.
// removeAll is "Contact: *" with Expires: 0.
func (r *Registrar) update(user, callID string, cseq uint32, removeAll bool, contacts []contactUpdate) error {
	r.mu.Lock()
	defer r.notify()
	defer r.mu.Unlock()
	devs := r.devices[user]
	// RFC 3261 §10.3 steps 6 and 7: a binding last set by this Call-ID may
	// only be changed by a higher CSeq; otherwise "the update MUST be
	// aborted and the request fails" (with 500, §10.3 end), so that a
	// REGISTER overtaken on the network does not undo a newer one.
	stale := func(b *Binding) bool { return b != nil && b.CallID == callID && cseq <= b.CSeq }
	if removeAll {
		for _, b := range devs {
			if stale(b) {
				return errOutOfOrder
			}
		}
		for key := range devs {
			r.deleteLocked(user, key)
		}
		r.changedLocked(user)
		return nil
	}
	for _, c := range contacts {
		if stale(devs[c.b.Key]) {
			return errOutOfOrder
		}
	}
	now := r.now()
	for _, c := range contacts {
		if c.expires <= 0 {
			r.deleteLocked(user, c.b.Key)
			continue
		}
		b := c.b
		b.User, b.CallID, b.CSeq = user, callID, cseq
		b.Expires = now.Add(c.expires)
		b.Reachable = true // it just spoke to us
		r.seq++
		b.registered = r.seq
		if old := r.devices[user][b.Key]; old != nil {
			b.phase, b.nextProbe = old.phase, old.nextProbe
		} else {
			b.phase = r.nextPhaseLocked()
		}
		r.putLocked(&b)
	}
	r.evictOldestLocked(user)
	r.changedLocked(user)
	return nil
}

// evictOldestLocked keeps at most maxDevices per agent, the newest ones:
// a phone that moves between networks without a +sip.instance leaves its
// old Contact behind, and one password must not make us probe without end.
func (r *Registrar) evictOldestLocked(user string) {
	devs := r.devices[user]
	if len(devs) <= maxDevices {
		return
	}
	all := make([]*Binding, 0, len(devs))
	for _, b := range devs {
		all = append(all, b)
	}
	slices.SortFunc(all, func(a, b *Binding) int { return cmp.Compare(a.registered, b.registered) })
	for _, b := range all[:len(all)-maxDevices] {
		r.deleteLocked(user, b.Key)
	}
}

// contactsOf returns user's live devices, reachable or not, newest first:
// what a 200 to REGISTER lists.
func (r *Registrar) contactsOf(user string) []Binding {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.listLocked(user, false)
}

// restore brings back persisted bindings at start-up; it returns how many
// were still live. They are probed at once; a device that misses that
// first probe becomes unreachable. A TCP connection does not survive a
// restart: a device reached over its own TCP flow stays unreachable until
// it registers again.
func (r *Registrar) restore(saved []store.Binding) int {
	slices.SortFunc(saved, func(a, b store.Binding) int { return a.Expires.Compare(b.Expires) }) // the latest expiry was registered last
	r.mu.Lock()
	now := r.now()
	n := 0
	for _, s := range saved {
		b, ok := fromStore(s)
		if !ok || now.After(b.Expires) || r.devices[b.User][b.Key] != nil {
			continue
		}
		b.Reachable = b.Transport != "TCP" || len(b.Path) > 0
		b.missed = qualifyMisses - 1
		b.nextProbe = now
		r.seq++
		b.registered = r.seq
		b.phase = r.nextPhaseLocked()
		if r.devices[b.User] == nil {
			r.devices[b.User] = make(map[string]*Binding)
		}
		r.devices[b.User][b.Key] = &b
		r.changedLocked(b.User)
		n++
	}
	r.mu.Unlock()
	r.notify()
	return n
}

// probed records the outcome of a qualify probe sent to b. A device that
// registered again meanwhile is left alone: its REGISTER said more.
func (r *Registrar) probed(b Binding, answered bool) {
	r.mu.Lock()
	cur := r.devices[b.User][b.Key]
	if cur == nil || cur.registered != b.registered {
		r.mu.Unlock()
		return
	}
	if answered {
		cur.missed = 0
	} else {
		cur.missed++
	}
	if reachable := cur.missed < qualifyMisses; reachable != cur.Reachable {
		cur.Reachable = reachable
		r.changedLocked(b.User)
	}
	r.mu.Unlock()
	r.notify()
}

// dueProbes returns the devices whose qualify slot has come and moves each
// to its next slot. A device registered since the last call gets its slot
// without a probe: its REGISTER just proved it alive.
func (r *Registrar) dueProbes(interval time.Duration) []Binding {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	var due []Binding
	for _, devs := range r.devices {
		for _, b := range devs {
			if !b.nextProbe.IsZero() && !now.Before(b.nextProbe) {
				due = append(due, *b)
			}
			if b.nextProbe.IsZero() || !now.Before(b.nextProbe) {
				b.nextProbe = r.nextSlot(now, b.phase, interval)
			}
		}
	}
	return due
}

// nextSlot is the first time after now at the device's phase of the
// interval: slots are epoch + (phase + k) * interval.
func (r *Registrar) nextSlot(now time.Time, phase float64, interval time.Duration) time.Time {
	first := r.epoch.Add(time.Duration(phase * float64(interval)))
	if now.Before(first) {
		return first
	}
	return first.Add((now.Sub(first)/interval + 1) * interval)
}

// nextPhaseLocked hands out phases by the golden ratio: however many
// devices there are, their slots stay spread evenly over the interval.
func (r *Registrar) nextPhaseLocked() float64 {
	r.phases++
	_, frac := math.Modf(float64(r.phases) * (math.Phi - 1))
	return frac
}

func (r *Registrar) putLocked(b *Binding) {
	if r.devices[b.User] == nil {
		r.devices[b.User] = make(map[string]*Binding)
	}
	r.devices[b.User][b.Key] = b
	if r.store != nil {
		r.store.PutBinding(toStore(*b))
	}
}

func (r *Registrar) deleteLocked(user, key string) {
	if _, ok := r.devices[user][key]; !ok {
		return
	}
	delete(r.devices[user], key)
	if len(r.devices[user]) == 0 {
		delete(r.devices, user)
	}
	if r.store != nil {
		r.store.DeleteBinding(user, key)
	}
}

// changedLocked queues a presence change of user, if there is one.
func (r *Registrar) changedLocked(user string) {
	now := r.now()
	p := PresenceOffline
	for _, b := range r.devices[user] {
		if now.After(b.Expires) {
			continue
		}
		if b.Reachable {
			p = PresenceReachable
			break
		}
		p = PresenceUnreachable
	}
	if p == r.presence[user] {
		return
	}
	if p == PresenceOffline {
		delete(r.presence, user)
	} else {
		r.presence[user] = p
	}
	r.pending = append(r.pending, presenceChange{user, p})
}

// notify delivers the queued changes in order. Whoever finds nobody
// delivering does it, also for changes queued by others meanwhile; the
// others return at once. So onChange is never called concurrently nor out
// of order, and never with r.mu held.
func (r *Registrar) notify() {
	r.mu.Lock()
	if r.notifying {
		r.mu.Unlock()
		return
	}
	r.notifying = true
	for len(r.pending) > 0 {
		batch := r.pending
		r.pending = nil
		r.mu.Unlock()
		r.deliver(batch)
		r.mu.Lock()
	}
	r.notifying = false
	r.mu.Unlock()
}

func (r *Registrar) deliver(batch []presenceChange) {
	delivered := false
	defer func() { // onChange panicked: later changes must still be told
		if !delivered {
			r.mu.Lock()
			r.notifying = false
			r.mu.Unlock()
		}
	}()
	for _, c := range batch {
		r.onChange(c.user, c.presence)
	}
	delivered = true
}
