package sip

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/hotline-pbx/hotline/store"
)

// Registrar rules without sockets: presence from devices, reachability,
// the order of presence reports, qualify slots, persistence.

// fakeClock is a clock tests move by hand, safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
func (c *fakeClock) Set(t time.Time)         { c.ns.Store(t.UnixNano()) }

type presenceRecorder struct {
	mu  sync.Mutex
	log map[string][]Presence
}

func (p *presenceRecorder) record(user string, pr Presence) {
	p.mu.Lock()
	if p.log == nil {
		p.log = make(map[string][]Presence)
	}
	p.log[user] = append(p.log[user], pr)
	p.mu.Unlock()
}

func (p *presenceRecorder) of(user string) []Presence {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.log[user])
}

func newTestRegistrar(bindings store.Bindings) (*Registrar, *fakeClock, *presenceRecorder) {
	clock := &fakeClock{}
	clock.Set(time.Date(2025, 1, 1, 9, 0, 0, 0, time.UTC))
	rec := &presenceRecorder{}
	r := NewRegistrar(bindings, rec.record)
	r.now = clock.Now
	r.epoch = clock.Now()
	return r, clock, rec
}

func device(user, key string, expires time.Duration) contactUpdate {
	return contactUpdate{expires: expires, b: Binding{Key: key,
		Contact: sip.Uri{Scheme: "sip", User: user, Host: "127.0.6.9", Port: 5060}, Source: "127.0.6.9:5060", Transport: "UDP"}}
}

func keys(bs []Binding) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.Key
	}
	return out
}

func TestRegistrarMarkUnreachableUntilAnswer(t *testing.T) {
	r, _, rec := newTestRegistrar(nil)
	_ = r.update("1001", "c1", 1, false, []contactUpdate{device("1001", "desk", time.Hour)})
	_ = r.update("1001", "c2", 1, false, []contactUpdate{device("1001", "soft", time.Hour)})
	if got := keys(r.Devices("1001")); !slices.Equal(got, []string{"soft", "desk"}) {
		t.Fatalf("devices %v, want newest first [soft desk]", got)
	}
	r.MarkUnreachable("1001", "soft")
	if got := keys(r.Devices("1001")); !slices.Equal(got, []string{"desk"}) {
		t.Fatalf("after the INVITE to soft failed: devices %v, want [desk]", got)
	}
	if b, ok := r.Lookup("1001"); !ok || b.Key != "desk" {
		t.Errorf("Lookup = %v %v, want desk", b.Key, ok)
	}
	r.MarkUnreachable("1001", "desk")
	if got := r.Devices("1001"); len(got) != 0 {
		t.Fatalf("devices %v, want none", keys(got))
	}
	if got := len(r.Bindings()); got != 2 {
		t.Errorf("%d bindings, want both kept while unreachable", got)
	}
	soft := r.contactsOf("1001")[0]
	r.probed(soft, true)
	if got := keys(r.Devices("1001")); !slices.Equal(got, []string{"soft"}) {
		t.Errorf("after soft answered a probe: devices %v, want [soft]", got)
	}
	want := []Presence{PresenceReachable, PresenceUnreachable, PresenceReachable}
	if got := rec.of("1001"); !slices.Equal(got, want) {
		t.Errorf("presence reports %v, want %v", got, want)
	}
}

func TestRegistrarTwoMissedProbesMakeUnreachable(t *testing.T) {
	r, _, rec := newTestRegistrar(nil)
	_ = r.update("1001", "c1", 1, false, []contactUpdate{device("1001", "desk", time.Hour)})
	desk := r.contactsOf("1001")[0]
	r.probed(desk, false)
	if len(r.Devices("1001")) != 1 {
		t.Fatal("one missed probe made the device unreachable; two are needed")
	}
	r.probed(desk, true)
	r.probed(desk, false)
	if len(r.Devices("1001")) != 1 {
		t.Fatal("misses that are not in a row made the device unreachable")
	}
	r.probed(desk, false)
	if len(r.Devices("1001")) != 0 || r.Presence("1001") != PresenceUnreachable {
		t.Fatalf("two misses in a row: devices %v presence %v, want none, unreachable", keys(r.Devices("1001")), r.Presence("1001"))
	}
	r.probed(desk, true)
	if len(r.Devices("1001")) != 1 {
		t.Fatal("not back on its first answer")
	}
	// A probe result for a binding that registered again meanwhile is stale.
	_ = r.update("1001", "c1", 2, false, []contactUpdate{device("1001", "desk", time.Hour)})
	r.probed(desk, false)
	r.probed(desk, false)
	if len(r.Devices("1001")) != 1 {
		t.Error("probes sent before a new REGISTER counted against it")
	}
	want := []Presence{PresenceReachable, PresenceUnreachable, PresenceReachable}
	if got := rec.of("1001"); !slices.Equal(got, want) {
		t.Errorf("presence reports %v, want %v", got, want)
	}
}

func TestRegistrarExpiryAndRestore(t *testing.T) {
	r, clock, rec := newTestRegistrar(nil)
	path := []sip.Uri{{Scheme: "sip", Host: "127.0.6.50", Port: 32050, UriParams: sip.HeaderParams{{K: "lr"}}}}
	viaProxy := device("1001", "<urn:uuid:0001>", 10*time.Minute)
	viaProxy.b.Instance, viaProxy.b.Path, viaProxy.b.Transport = "<urn:uuid:0001>", path, "TCP"
	tcp := device("1002", "sip:1002@127.0.6.9:5060;transport=tcp", 10*time.Minute)
	tcp.b.Transport = "TCP"
	short := device("1003", "sip:1003@127.0.6.9:5060", time.Minute)
	_ = r.update("1001", "c1", 7, false, []contactUpdate{viaProxy})
	_ = r.update("1002", "c2", 1, false, []contactUpdate{tcp})
	_ = r.update("1003", "c3", 1, false, []contactUpdate{short})

	clock.Advance(2 * time.Minute)
	r.Expire()
	if got := rec.of("1003"); !slices.Equal(got, []Presence{PresenceReachable, PresenceOffline}) {
		t.Errorf("1003 reports %v, want reachable then offline at expiry", got)
	}

	// A restart: a new registrar reads back what the old one stored.
	var loaded []store.Binding
	for _, b := range r.Bindings() {
		loaded = append(loaded, toStore(b))
	}
	loaded = append(loaded, store.Binding{User: "1004", Key: "sip:1004@127.0.6.9", Contact: "sip:1004@127.0.6.9", Transport: "UDP", Expires: clock.Now().Add(-time.Second)})
	r2, clock2, rec2 := newTestRegistrar(nil)
	clock2.Set(clock.Now())
	if n := r2.restore(loaded); n != 2 {
		t.Fatalf("restored %d, want the 2 unexpired", n)
	}
	b, ok := r2.Lookup("1001")
	if !ok || b.Instance != "<urn:uuid:0001>" || len(b.Path) != 1 || b.Path[0].String() != path[0].String() || b.CSeq != 7 || b.Contact.String() != viaProxy.b.Contact.String() {
		t.Errorf("restored 1001 = %+v, want the stored device and its Path", b)
	}
	if got := rec2.of("1001"); !slices.Equal(got, []Presence{PresenceReachable}) {
		t.Errorf("1001 after restart: %v, want reachable (through its proxy)", got)
	}
	if got := rec2.of("1002"); !slices.Equal(got, []Presence{PresenceUnreachable}) {
		t.Errorf("1002 (own TCP flow) after restart: %v, want unreachable until it registers again", got)
	}
	if due := r2.dueProbes(30 * time.Second); len(due) != 2 {
		t.Errorf("%d restored devices probed at once, want 2", len(due))
	}
	r2.probed(b, false) // a restored device gets one chance
	if got := rec2.of("1001"); !slices.Equal(got, []Presence{PresenceReachable, PresenceUnreachable}) {
		t.Errorf("1001 missed its first probe after restart: %v, want reachable then unreachable", got)
	}
}

// Presence reports come one at a time, only on changes, in the order the
// changes happened, while REGISTERs, probes, failures and expiry race.
func TestRegistrarPresenceReportsInOrder(t *testing.T) {
	clock := &fakeClock{}
	clock.Set(time.Now())
	var inCall atomic.Int32
	var mu sync.Mutex
	reports := make(map[string][]Presence)
	r := NewRegistrar(nil, func(user string, p Presence) {
		if !inCall.CompareAndSwap(0, 1) {
			t.Error("onChange called concurrently")
		}
		runtime.Gosched() // widen the window for a concurrent or late report
		mu.Lock()
		reports[user] = append(reports[user], p)
		mu.Unlock()
		inCall.Store(0)
	})
	r.now = clock.Now
	users := []string{"1001", "1002", "1003"}
	devices := []string{"a", "b", "c"}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range 2000 {
				user, key := users[rng.IntN(len(users))], devices[rng.IntN(len(devices))]
				switch rng.IntN(6) {
				case 0, 1:
					_ = r.update(user, fmt.Sprintf("w%d-%d", w, i), 1, false, []contactUpdate{device(user, key, time.Duration(1+rng.IntN(3))*time.Second)})
				case 2:
					_ = r.update(user, fmt.Sprintf("w%d-%d", w, i), 1, false, []contactUpdate{device(user, key, 0)})
				case 3:
					r.MarkUnreachable(user, key)
				case 4:
					for _, b := range r.contactsOf(user) {
						r.probed(b, rng.IntN(2) == 0)
					}
				case 5:
					clock.Advance(500 * time.Millisecond)
					r.Expire()
				}
			}
		})
	}
	wg.Wait()
	r.notify() // nothing may be left undelivered
	for _, u := range users {
		got := reports[u]
		prev := PresenceOffline
		for i, p := range got {
			if p == prev {
				t.Fatalf("%s: report %d of %d repeats %v: ...%v", u, i, len(got), p, got[max(0, i-4):i+1])
			}
			prev = p
		}
		if want := r.Presence(u); prev != want {
			t.Errorf("%s: last report %v, registrar says %v", u, prev, want)
		}
		if want := presenceOf(r.contactsOf(u)); prev != want {
			t.Errorf("%s: last report %v, devices say %v", u, prev, want)
		}
	}
}

func presenceOf(devs []Binding) Presence {
	p := PresenceOffline
	for _, b := range devs {
		if b.Reachable {
			return PresenceReachable
		}
		p = PresenceUnreachable
	}
	return p
}

// Each device is probed once per interval, at its own phase: the probes of
// 100 devices fall about 10 per tenth of the interval, never all at once.
func TestQualifySlotsSpreadEvenly(t *testing.T) {
	r, clock, _ := newTestRegistrar(nil)
	const devices, interval, slices = 100, 30 * time.Second, 10
	for i := range devices {
		user := fmt.Sprint(2000 + i)
		_ = r.update(user, "c", 1, false, []contactUpdate{device(user, "desk", time.Hour)})
	}
	if due := r.dueProbes(interval); len(due) != 0 {
		t.Fatalf("%d probes right after registering, want 0 (a REGISTER proves the device alive)", len(due))
	}
	perDevice := make(map[string]int)
	for round := range 3 {
		counts := make([]int, slices)
		for step := range 100 { // the scheduler wakes often; count by tenth
			clock.Advance(interval / 100)
			for _, b := range r.dueProbes(interval) {
				counts[step/(100/slices)]++
				perDevice[b.User]++
			}
		}
		for i, n := range counts {
			if n < devices/slices/2 || n > devices/slices*2 {
				t.Errorf("round %d: %d probes in tenth %d of the interval, want about %d: %v", round, n, i, devices/slices, counts)
			}
		}
	}
	for user, n := range perDevice {
		if n != 3 {
			t.Errorf("device of %s probed %d times in 3 intervals, want 3", user, n)
		}
	}
	if len(perDevice) != devices {
		t.Errorf("%d devices probed, want %d", len(perDevice), devices)
	}
}

// Path values come from the network (through a proxy we may not trust):
// parsing them never panics, and what it keeps has a host to route to.
func FuzzPathHeader(f *testing.F) {
	f.Add("<sip:127.0.6.50:32050;lr>, <sip:edge.example;lr>")
	f.Add(`"a,b" <sip:p;lr>,<sip:q>`)
	f.Add(`<sip:p;lr`)
	f.Add(`"\`)
	f.Fuzz(func(t *testing.T, v string) {
		req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: "127.0.6.1"})
		req.AppendHeader(sip.NewHeader("Path", v))
		path, err := parsePath(req)
		if err != nil {
			return
		}
		for _, u := range path {
			if u.Host == "" {
				t.Fatalf("%q: hop without a host: %+v", v, u)
			}
		}
		if len(path) > 0 {
			if transport, dest := firstHop(Binding{Path: path, Source: "127.0.6.2:5060", Transport: "UDP"}); transport == "" || dest == "" {
				t.Fatalf("%q: no first hop", v)
			}
		}
	})
}
