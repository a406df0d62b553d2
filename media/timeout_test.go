package media

import (
	"net/netip"
	"testing"
	"time"
)

func timedOut(l *Leg) bool {
	select {
	case <-l.MediaTimeout():
		return true
	default:
		return false
	}
}

// The timeout rule on a fake clock: baseline is the later of the last
// accepted packet and the last SetParams; a leg on hold has the hold
// timeout; a leg never negotiated has none; it is reported once.
func TestTimeoutCheckOnFakeClock(t *testing.T) {
	// The shard's own checks on the real clock find nothing this early;
	// the test runs its checks at later times.
	e := newEngineAt(t, "127.0.5.15", Config{Shards: 1, Timeout: 30 * time.Second, HoldTimeout: 5 * time.Minute})
	s := e.shards[0]
	peer := netip.MustParseAddrPort("192.0.2.1:4000")
	leg := func(name string, p *Params) *Leg {
		l := newTestLeg(t, e, name)
		if p != nil {
			l.SetParams(*p)
		}
		return l
	}
	talking := Params{Remote: peer, Codec: PCMU}
	held := Params{Remote: peer, Codec: PCMU, Direction: SendOnly}
	fresh := leg("never negotiated", nil)
	silent := leg("silent", &talking)
	receiving := leg("receiving", &talking)
	holding := leg("held", &held)
	stale := leg("old packet", &talking)
	gone := leg("closed", &talking)
	t0 := time.Now()
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	receiving.receive(rtpPacket(0, false, 1, 0, 5, make([]byte, 160)), peer, at(25*time.Second))
	stale.receive(rtpPacket(0, false, 1, 0, 5, make([]byte, 160)), peer, at(-100*time.Second))
	if err := gone.Close(); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		at   time.Duration
		want map[*Leg]bool // legs timed out by then
	}{
		{29 * time.Second, map[*Leg]bool{}},
		{31 * time.Second, map[*Leg]bool{silent: true, stale: true}},
		{54 * time.Second, map[*Leg]bool{silent: true, stale: true}},
		{56 * time.Second, map[*Leg]bool{silent: true, stale: true, receiving: true}},
		{299 * time.Second, map[*Leg]bool{silent: true, stale: true, receiving: true}},
		{301 * time.Second, map[*Leg]bool{silent: true, stale: true, receiving: true, holding: true}},
		{time.Hour, map[*Leg]bool{silent: true, stale: true, receiving: true, holding: true}},
	}
	for _, step := range steps {
		s.checkTimeouts(at(step.at)) // a second report would close a closed channel
		for _, l := range []*Leg{fresh, silent, receiving, holding, stale, gone} {
			if got := timedOut(l); got != step.want[l] {
				t.Errorf("at %v: %s timed out = %v, want %v", step.at, l.Name(), got, step.want[l])
			}
		}
	}
}

// The real shards: a silent leg times out, one receiving RTP does not, and
// a leg on hold goes by the hold timeout.
func TestTimeoutOnShards(t *testing.T) {
	const short, long = 300 * time.Millisecond, time.Hour
	tests := []struct {
		name              string
		timeout, onHold   time.Duration
		wantHeld, wantRun bool // whether the held and the silent running leg time out
	}{
		{"running legs", short, long, false, true},
		{"held legs", long, short, true, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ip := netip.AddrFrom4([4]byte{127, 0, 5, byte(16 + 2*i)})
			e := newEngineAt(t, ip.String(), Config{Shards: 1, Timeout: tt.timeout, HoldTimeout: tt.onHold})
			peer := newRawPeer(t, netip.AddrFrom4([4]byte{127, 0, 5, byte(17 + 2*i)}).String())
			held := newTestLeg(t, e, "held")
			held.SetParams(Params{Remote: peer.addr(), Codec: PCMU, Direction: Inactive})
			receiving := newTestLeg(t, e, "receiving")
			receiving.SetParams(Params{Remote: peer.addr(), Codec: PCMU})
			silent := newTestLeg(t, e, "silent")
			silent.SetParams(Params{Remote: peer.addr(), Codec: PCMU})
			idle := newTestLeg(t, e, "never negotiated")

			stop := make(chan struct{})
			sent := make(chan struct{})
			go func() { // the peer talks on receiving until the end
				defer close(sent)
				stream := rtpStream{ssrc: 1}
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						stream.tone(peer, receiving.LocalAddr(), PCMU, 440, 1)
					}
				}
			}()
			defer func() { close(stop); <-sent }()

			first := held // the leg expected to time out
			if tt.wantRun {
				first = silent
			}
			select {
			case <-first.MediaTimeout():
			case <-time.After(guard):
				t.Fatalf("%s did not time out", first.Name())
			}
			// Two more checks of every leg on the shard.
			checks := e.shards[0].checks.Load()
			eventually(t, "two more checks", func() bool { return e.shards[0].checks.Load() >= checks+2 })
			for l, want := range map[*Leg]bool{held: tt.wantHeld, silent: tt.wantRun, receiving: false, idle: false} {
				if got := timedOut(l); got != want {
					t.Errorf("%s timed out = %v, want %v", l.Name(), got, want)
				}
			}
		})
	}
}
