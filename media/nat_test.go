package media

import (
	"net/netip"
	"testing"
	"time"
)

// A locked source moves to another port of the same IP only for its own
// stream (SSRC) continuing its sequence numbers for latchRun packets;
// another SSRC, a sequence jump or another IP never moves it.
func TestLatchFollowsNATRebinding(t *testing.T) {
	a := netip.MustParseAddrPort("192.0.2.1:4000")
	moved := netip.MustParseAddrPort("192.0.2.1:5000")
	sameIP := netip.MustParseAddrPort("192.0.2.1:6000")
	other := netip.MustParseAddrPort("192.0.2.2:4000")
	steps := []struct {
		src  netip.AddrPort
		ssrc uint32
		seq  uint16
		want latchVerdict
	}{
		{a, 7, 100, latchAccept},
		{a, 7, 101, latchAccept},
		{a, 7, 102, latchLockNow},
		{moved, 7, 104, latchReject}, // one lost on the way: still continuing
		{moved, 7, 105, latchReject},
		{moved, 7, 106, latchLockNow}, // the third in sequence: moved
		{a, 7, 107, latchReject},      // the old port is a stranger now
		{moved, 7, 107, latchAccept},
		{sameIP, 8, 108, latchReject}, // another stream on the same IP
		{sameIP, 8, 109, latchReject},
		{sameIP, 8, 110, latchReject},
		{sameIP, 7, 5000, latchReject}, // the right SSRC, a sequence jump
		{sameIP, 7, 5001, latchReject},
		{sameIP, 7, 5002, latchReject},
		{other, 7, 108, latchReject}, // another IP
		{other, 7, 109, latchReject},
		{other, 7, 110, latchReject},
		{moved, 7, 108, latchAccept},
		{sameIP, 7, 109, latchReject}, // a run broken by a duplicate and a gap
		{sameIP, 7, 109, latchReject},
		{sameIP, 7, 111, latchReject},
		{sameIP, 7, 112, latchReject},
		{sameIP, 7, 113, latchLockNow},
	}
	var l latch
	for i, s := range steps {
		if got := l.observe(s.src, s.ssrc, s.seq, 1); got != s.want {
			t.Errorf("step %d (%v ssrc %d seq %d): %v, want %v", i, s.src, s.ssrc, s.seq, got, s.want)
		}
	}
}

// On sockets: the peer's NAT moves it to another port mid-call; after a
// few packets of its stream from there, the leg receives from and sends to
// the new port. An attacker on the same IP with its own SSRC gets nothing
// and takes nothing over.
func TestNATRebindingMidCall(t *testing.T) {
	e := newEngine6(t, "127.0.11.11", Config{})
	l := newTestLeg(t, e, "l")
	before := newRawPeer(t, "127.0.11.12")
	l.SetParams(Params{Remote: before.addr(), SignalIP: before.addr().Addr(), Codec: PCMU})
	ctx := testContext(t)
	beep := NewPrompt("beep", Tone(1000, 20*time.Millisecond, 0.5))
	stream := rtpStream{ssrc: 0xCA11}

	stream.tone(before, l.LocalAddr(), PCMU, 440, 5)
	eventually(t, "locked", func() bool { return l.Stats().Source == before.addr() })

	after := newRawPeer(t, "127.0.11.12") // the NAT's new mapping
	stream.tone(after, l.LocalAddr(), PCMU, 440, 5)
	eventually(t, "moved", func() bool { return l.Stats().PacketsIn == 5+3 })
	if s := l.Stats(); s.Source != after.addr() || s.WrongSource != 2 {
		t.Errorf("source %v with %d dropped, want %v after 2 dropped", s.Source, s.WrongSource, after.addr())
	}
	if err := l.Play(ctx, beep); err != nil {
		t.Fatal(err)
	}
	after.receive()

	attacker := newRawPeer(t, "127.0.11.12")
	evil := rtpStream{ssrc: 0xBAD, seq: stream.seq, ts: stream.ts}
	evil.tone(attacker, l.LocalAddr(), PCMU, 1000, 10)
	eventually(t, "attack dropped", func() bool { return l.Stats().WrongSource == 2+10 })
	if err := l.Play(ctx, beep); err != nil {
		t.Fatal(err)
	}
	after.receive()
	if s := l.Stats(); s.Source != after.addr() || s.PacketsIn != 8 {
		t.Errorf("after the attack: source %v, %d in; want %v, 8", s.Source, s.PacketsIn, after.addr())
	}
	if n := len(attacker.pending()) + len(before.pending()); n != 0 {
		t.Errorf("the attacker and the old port got %d packets", n)
	}
	if q := l.Quality(); q.PacketsReceived != 8 || q.PacketsExpected != 10 {
		t.Errorf("reception: %d of %d, want 8 of 10 (two dropped while the move was checked)", q.PacketsReceived, q.PacketsExpected)
	}
}
