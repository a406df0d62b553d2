package media

import (
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// An attacker spraying RTP at a leg right after the answer, before and after
// the real peer, never becomes its source: its audio and its digit reach
// neither the recording tap, nor the bridged agent, nor DTMF, nor
// LastReceived. The real peer behind NAT (the signalling IP, another port
// than its SDP names) is latched.
func TestAttackerCannotHijackLeg(t *testing.T) {
	e := newEngineAt(t, "127.0.5.1", Config{})
	x, y := newTestLeg(t, e, "caller-leg"), newTestLeg(t, e, "agent-leg")
	sdp := newRawPeer(t, "127.0.5.5")       // the address the caller's SDP names (private)
	neighbour := newRawPeer(t, "127.0.5.5") // the SDP's IP, another port
	caller := newRawPeer(t, "127.0.5.2")    // where the caller's packets come from (its NAT)
	attacker := newRawPeer(t, "127.0.5.3")
	agent := newRawPeer(t, "127.0.5.4")
	ctx := testContext(t)
	beep := NewPrompt("beep", Tone(1000, 20*time.Millisecond, 0.5))

	y.SetParams(Params{Remote: agent.addr(), Codec: PCMA, PayloadType: 8, DTMFPayloadType: 96})
	NewBridge(x, y)
	rec := newRecorder(10 * 160)
	x.AddTap(rec)
	x.SetParams(Params{Remote: sdp.addr(), SignalIP: caller.addr().Addr(), Codec: PCMU, DTMFPayloadType: 101})

	// Right after the answer, before the caller's first packet.
	evil := rtpStream{ssrc: 0xBAD, seq: 100}
	evil.tone(attacker, x.LocalAddr(), PCMU, 1000, 20)
	evil.digit(attacker, x.LocalAddr(), 101, '9')
	near := rtpStream{ssrc: 0xBAD2}
	near.tone(neighbour, x.LocalAddr(), PCMU, 1000, 5)
	eventually(t, "attack dropped", func() bool { return x.Stats().WrongSource == 31 })
	if s := x.Stats(); s.PacketsIn != 0 || !s.LastReceived.IsZero() || s.Source.IsValid() || s.DTMFEvents != 0 {
		t.Fatalf("after the attack: %d in, last received %v, source %v, %d digits; want nothing", s.PacketsIn, s.LastReceived, s.Source, s.DTMFEvents)
	}

	// Until a source is locked, we send to the address of the SDP.
	if err := x.Play(ctx, beep); err != nil {
		t.Fatal(err)
	}
	sdp.receive()

	// The caller talks and presses 1; the attacker goes on.
	real := rtpStream{ssrc: 0xCA11, seq: 5000, ts: 1 << 20}
	real.tone(caller, x.LocalAddr(), PCMU, 440, 10)
	real.digit(caller, x.LocalAddr(), 101, '1')
	evil.tone(attacker, x.LocalAddr(), PCMU, 1000, 20)
	evil.digit(attacker, x.LocalAddr(), 101, '9')
	eventually(t, "everything counted", func() bool {
		s := x.Stats()
		return s.PacketsIn == 16 && s.WrongSource == 57
	})
	s := x.Stats()
	if s.Source != caller.addr() || s.LastReceived.IsZero() {
		t.Errorf("source %v, last received %v; want the caller's NAT address %v and a time", s.Source, s.LastReceived, caller.addr())
	}
	if got := drainDigits(x); got != "1" || s.DTMFEvents != 1 {
		t.Errorf("digits %q (%d events), want only the caller's \"1\"", got, s.DTMFEvents)
	}

	heard, _ := rec.wait(t)
	rec.mu.Lock()
	recorded := append([]int16(nil), rec.pcm...)
	rec.mu.Unlock()
	if f := DominantFrequency(heard, 440, 1000); f != 440 {
		t.Errorf("recording tap heard %v Hz, want the caller's 440", f)
	}
	if p := Goertzel(recorded, 1000); p > MinTonePower {
		t.Errorf("recording tap heard the attacker's 1000 Hz at power %.4f", p)
	}

	// The agent got the caller's 10 frames and 6 event packets, nothing else.
	if got := y.Stats().PacketsOut; got != 16 {
		t.Errorf("agent leg sent %d packets, want 16", got)
	}
	var audio []int16
	for range 16 {
		var p rtp.Packet
		if err := p.Unmarshal(agent.receive()); err != nil {
			t.Fatal(err)
		}
		switch {
		case p.PayloadType == 8:
			pcm := make([]int16, len(p.Payload))
			DecodeFrame(PCMA, pcm, p.Payload)
			audio = append(audio, pcm...)
		case p.PayloadType == 96 && p.Payload[0] == 1:
		default:
			t.Errorf("agent got payload type %d, % x", p.PayloadType, p.Payload)
		}
	}
	if f := DominantFrequency(audio, 440, 1000); f != 440 || len(audio) != 1600 {
		t.Errorf("agent heard %v Hz in %d samples, want 440 Hz in 1600", f, len(audio))
	}

	// Once locked, we answer the caller's NAT address; strangers get nothing.
	if err := x.Play(ctx, beep); err != nil {
		t.Fatal(err)
	}
	caller.receive()
	for name, p := range map[string]*rawPeer{"attacker": attacker, "neighbour": neighbour, "agent": agent, "sdp": sdp} {
		if got := len(p.pending()); got != 0 {
			t.Errorf("%s received %d more packets, want 0", name, got)
		}
	}
}

// Learning starts again only when the accepted sources change: a session
// refresh or a hold with the same addresses keeps the lock.
func TestSetParamsRelearnsOnlyWhenAddressesChange(t *testing.T) {
	e := newEngineAt(t, "127.0.5.11", Config{})
	l := newTestLeg(t, e, "l")
	sdp := netip.MustParseAddrPort("192.0.2.1:4000")
	moved := netip.MustParseAddrPort("192.0.2.1:4002")
	nat := netip.MustParseAddr("198.51.100.7")
	natA, natB := netip.AddrPortFrom(nat, 5555), netip.AddrPortFrom(nat, 6666)
	stranger := netip.MustParseAddrPort("203.0.113.9:4000")
	seq := uint16(0)
	ssrc := uint32(9) // the peer's stream
	feed := func(src netip.AddrPort, n int) {
		for range n {
			seq++
			l.receive(rtpPacket(0, false, seq, uint32(seq)*160, ssrc, make([]byte, 160)), src, time.Now())
		}
	}
	// Another stream from another port of the signalling IP (the same
	// stream from there would be a NAT rebinding, which is followed).
	feedOther := func(src netip.AddrPort, n int) {
		ssrc = 10
		feed(src, n)
		ssrc = 9
	}
	params := Params{Remote: sdp, SignalIP: nat, Codec: PCMU}
	check := func(step string, wantSource netip.AddrPort, wantIn, wantWrong uint64) {
		t.Helper()
		if s := l.Stats(); s.Source != wantSource || s.PacketsIn != wantIn || s.WrongSource != wantWrong {
			t.Errorf("%s: source %v, in %d, wrong source %d; want %v, %d, %d", step, s.Source, s.PacketsIn, s.WrongSource, wantSource, wantIn, wantWrong)
		}
	}

	l.SetParams(params)
	feed(stranger, 3)
	feed(natA, 3)
	check("NAT address latched", natA, 3, 3)

	held := params
	held.Direction, held.PtimeMS = RecvOnly, 30
	l.SetParams(held)
	feedOther(natB, 3) // another port of the signalling IP: the lock holds
	feed(natA, 1)
	check("hold with the same addresses", natA, 4, 6)

	l.SetParams(params)
	feedOther(natB, 1)
	check("resume with the same addresses", natA, 4, 7)

	params.Remote = moved
	l.SetParams(params)
	check("new SDP address", netip.AddrPort{}, 4, 7)
	feed(natB, 3)
	check("learned again", natB, 7, 7)

	params.SignalIP = netip.Addr{}
	l.SetParams(params)
	feed(natB, 2) // without SignalIP, only the SDP address counts
	feed(sdp, 1)  // the old one neither
	feed(moved, 3)
	check("SDP address only", moved, 10, 10)
}
