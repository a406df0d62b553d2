package media

import (
	"net/netip"
	"testing"
	"time"
)

// One stream written by a prompt, then forwarding, then another prompt and a
// DTMF event: sequence numbers never jump back, timestamps follow the clock
// and every change of writer sets the marker. Values computed by hand.
func TestOutStreamSwitchesWriters(t *testing.T) {
	o := outStream{ssrc: 1, nextSeq: 65534, nextTS: 1000}
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

	type pkt struct {
		seq    uint16
		ts     uint32
		marker bool
	}
	check := func(step string, seq uint16, ts uint32, marker bool, want pkt) {
		t.Helper()
		if got := (pkt{seq, ts, marker}); got != want {
			t.Errorf("%s: got %+v, want %+v", step, got, want)
		}
	}

	seq, ts, m := o.stamp(5, at(0), 160, false)
	check("prompt frame 1", seq, ts, m, pkt{65534, 1000, true})
	seq, ts, m = o.stamp(5, at(20), 160, false)
	check("prompt frame 2", seq, ts, m, pkt{65535, 1160, false})

	// Forwarding starts 20 ms after the last frame: the clock says 1320.
	seq, ts, m = o.forward(0xAB, 10, 50000, at(40), 160)
	check("forward first", seq, ts, m, pkt{0, 1320, true})
	seq, ts, m = o.forward(0xAB, 11, 50160, at(60), 160)
	check("forward second", seq, ts, m, pkt{1, 1480, false})
	seq, ts, m = o.forward(0xAB, 13, 50480, at(100), 160)
	check("forward after a loss", seq, ts, m, pkt{3, 1800, false})
	seq, ts, m = o.forward(0xAB, 12, 50320, at(101), 160)
	check("forward late packet", seq, ts, m, pkt{2, 1640, false})

	// A prompt 400 ms after the last forwarded packet (ts 1800 at 100 ms).
	seq, ts, m = o.stamp(6, at(500), 160, false)
	check("next prompt", seq, ts, m, pkt{4, 1800 + 3200, true})

	// A DTMF event: every packet repeats its start timestamp; the last one
	// moves the stream on by its 800-sample duration.
	seq, ts, m = o.stamp(7, at(520), 0, false)
	check("event start", seq, ts, m, pkt{5, 5160, true})
	seq, ts, m = o.stamp(7, at(540), 0, true)
	check("event update", seq, ts, m, pkt{6, 5160, false})
	seq, ts, m = o.stamp(7, at(560), 800, true)
	check("event end", seq, ts, m, pkt{7, 5160, false})
	seq, ts, m = o.stamp(8, at(580), 160, false)
	check("audio after event", seq, ts, m, pkt{8, 5960, true})

	// A new incoming SSRC (the peer restarted) re-anchors with the marker.
	o.forward(0xAB, 14, 50640, at(600), 160)
	seq, ts, m = o.forward(0xCD, 7, 9, at(620), 160)
	if !m || seq != 10 {
		t.Errorf("new source: seq %d marker %v, want 10 true", seq, m)
	}
}

func TestLatchLocksAfterConsecutivePackets(t *testing.T) {
	a := netip.MustParseAddrPort("192.0.2.1:4000")
	b := netip.MustParseAddrPort("192.0.2.2:4000")
	steps := []struct {
		src  netip.AddrPort
		seq  uint16
		gen  uint64
		want latchVerdict
	}{
		{a, 100, 1, latchAccept},
		{a, 101, 1, latchAccept},
		{b, 5, 1, latchAccept}, // another source breaks the run
		{a, 102, 1, latchAccept},
		{a, 103, 1, latchAccept},
		{a, 103, 1, latchAccept},  // duplicate neither counts nor breaks
		{a, 104, 1, latchLockNow}, // third consecutive
		{b, 6, 1, latchReject},
		{a, 200, 1, latchAccept}, // locked source may jump
		{b, 7, 2, latchAccept},   // renegotiated: learning again
		{b, 8, 2, latchAccept},
		{b, 9, 2, latchLockNow},
		{a, 201, 2, latchReject},
	}
	var l latch
	for i, s := range steps {
		if got := l.observe(s.src, 7, s.seq, s.gen); got != s.want {
			t.Errorf("step %d (%v seq %d gen %d): %v, want %v", i, s.src, s.seq, s.gen, got, s.want)
		}
	}
}
