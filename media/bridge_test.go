package media

import (
	"context"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// A <-> X = Bridge(X, Y) <-> B, with PCMU between A and X and PCMA between
// Y and B: each side hears the other's tone and DTMF crosses the bridge with
// the other side's payload number.
func TestBridgeTranscodesBothWays(t *testing.T) {
	e := newTestEngine(t, "127.0.0.1")
	a, x := newTestLeg(t, e, "caller-phone"), newTestLeg(t, e, "caller-leg")
	y, b := newTestLeg(t, e, "agent-leg"), newTestLeg(t, e, "agent-phone")
	connect(a, x, PCMU, 101, 20)
	connect(y, b, PCMA, 96, 30)
	NewBridge(x, y)

	atA, atB := newRecorder(2400), newRecorder(2400)
	a.AddTap(atA)
	b.AddTap(atB)
	ctx := testContext(t)
	done := make(chan error, 2)
	go func() { done <- a.Play(ctx, NewPrompt("440", Tone(440, 400*time.Millisecond, 0.5))) }()
	go func() { done <- b.Play(ctx, NewPrompt("1000", Tone(1000, 400*time.Millisecond, 0.5))) }()
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	heardAtB, _ := atB.wait(t)
	heardAtA, _ := atA.wait(t)
	if got := DominantFrequency(heardAtB, 440, 1000); got != 440 {
		t.Errorf("B (PCMA) heard %v Hz, want 440 from A (PCMU)", got)
	}
	if got := DominantFrequency(heardAtA, 440, 1000); got != 1000 {
		t.Errorf("A (PCMU) heard %v Hz, want 1000 from B (PCMA)", got)
	}
	// Transcoding through the G.711 tables keeps the level: decoding A-law
	// bytes as µ-law (a missed transcode) would not.
	if p := Goertzel(heardAtB, 440); p < 0.2 || p > 0.3 {
		t.Errorf("B: 440 Hz power %.3f, want about 0.25", p)
	}
	if p := Goertzel(heardAtA, 1000); p < 0.2 || p > 0.3 {
		t.Errorf("A: 1000 Hz power %.3f, want about 0.25", p)
	}
	// Each side gets its own packet time: the 20 ms caller's audio reaches
	// the 30 ms agent in 30 ms packets, and the other way round.
	for _, side := range []struct {
		name    string
		leg     *Leg
		samples uint64
	}{{"A (20 ms)", a, 160}, {"B (30 ms)", b, 240}} {
		if s := side.leg.Stats(); s.PacketsIn == 0 || s.BytesIn != s.PacketsIn*(12+side.samples) {
			t.Errorf("%s got %d packets in %d bytes, want packets of %d samples", side.name, s.PacketsIn, s.BytesIn, side.samples)
		}
	}

	// DTMF from A is reported on X and forwarded to B as payload type 96:
	// B only accepts its own negotiated number.
	if err := a.SendDTMF(ctx, '5', 0); err != nil {
		t.Fatal(err)
	}
	for _, l := range []*Leg{x, b} {
		select {
		case d := <-l.DTMF():
			if d != '5' {
				t.Errorf("%s got digit %q, want '5'", l.Name(), d)
			}
		case <-time.After(guard):
			t.Fatalf("%s got no digit", l.Name())
		}
	}
	if s := b.Stats(); s.UnknownPayload != 0 {
		t.Errorf("B dropped %d packets of unknown payload type", s.UnknownPayload)
	}
}

// Without telephone-event on the far side, events are reported but not
// forwarded.
func TestBridgeDropsEventsTheOtherSideCannotTake(t *testing.T) {
	e := newTestEngine(t, "127.0.0.1")
	a, x := newTestLeg(t, e, "a"), newTestLeg(t, e, "x")
	y, b := newTestLeg(t, e, "y"), newTestLeg(t, e, "b")
	connect(a, x, PCMU, 101, 20)
	connect(y, b, PCMU, 0, 20)
	NewBridge(x, y)
	if err := a.SendDTMF(testContext(t), '9', 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, "X got all event packets", func() bool { return x.Stats().PacketsIn == 7 })
	if d := <-x.DTMF(); d != '9' {
		t.Errorf("X reported %q, want '9'", d)
	}
	if got := y.Stats().PacketsOut; got != 0 {
		t.Errorf("Y sent %d packets, want 0", got)
	}
}

// The far end of a bridge sees one stream: the leg's own SSRC, sequence
// numbers continuing from the prompt played before, the marker on the first
// forwarded packet and timestamps advancing with the audio.
func TestBridgeRewritesHeaders(t *testing.T) {
	e := newTestEngine(t, "127.0.0.6")
	x, y := newTestLeg(t, e, "x"), newTestLeg(t, e, "y")
	caller, agent := newRawPeer(t, "127.0.0.7"), newRawPeer(t, "127.0.0.8")
	x.SetParams(Params{Remote: caller.addr(), Codec: PCMU, PayloadType: 0})
	y.SetParams(Params{Remote: agent.addr(), Codec: PCMA, PayloadType: 8})

	if err := y.Play(testContext(t), NewPrompt("beep", Tone(1000, 40*time.Millisecond, 0.5))); err != nil {
		t.Fatal(err)
	}
	var prompt [2]rtp.Packet
	for i := range prompt {
		if err := prompt[i].Unmarshal(agent.receive()); err != nil {
			t.Fatal(err)
		}
	}

	br := NewBridge(x, y)
	ulaw := make([]byte, 160)
	EncodeFrame(PCMU, ulaw, Tone(440, 20*time.Millisecond, 0.5))
	for i := range 3 {
		caller.send(x.LocalAddr(), rtpPacket(0, false, uint16(65534+i), uint32(90000+160*i), 0xCAFE, ulaw))
	}
	var fwd [3]rtp.Packet
	for i := range fwd {
		if err := fwd[i].Unmarshal(agent.receive()); err != nil {
			t.Fatal(err)
		}
	}
	wantPayload := make([]byte, 160)
	TranscodeFrame(PCMU, PCMA, wantPayload, ulaw)
	last := prompt[1]
	for i, p := range fwd {
		if p.SSRC != last.SSRC || p.PayloadType != 8 || string(p.Payload) != string(wantPayload) {
			t.Errorf("forwarded %d: ssrc %#x pt %d, want ssrc %#x pt 8 with the A-law payload", i, p.SSRC, p.PayloadType, last.SSRC)
		}
		if want := last.SequenceNumber + 1 + uint16(i); p.SequenceNumber != want {
			t.Errorf("forwarded %d: seq %d, want %d", i, p.SequenceNumber, want)
		}
		if p.Marker != (i == 0) {
			t.Errorf("forwarded %d: marker %v, want %v", i, p.Marker, i == 0)
		}
	}
	if d := fwd[0].Timestamp - last.Timestamp; d < 160 || d > 160*50 {
		t.Errorf("first forwarded timestamp is %d after the prompt's last, want at least one frame and less than a second", d)
	}
	if fwd[1].Timestamp-fwd[0].Timestamp != 160 || fwd[2].Timestamp-fwd[1].Timestamp != 160 {
		t.Errorf("forwarded timestamps %d %d %d, want steps of 160", fwd[0].Timestamp, fwd[1].Timestamp, fwd[2].Timestamp)
	}

	// Unbridged, nothing is forwarded any more.
	br.Close()
	caller.send(x.LocalAddr(), rtpPacket(0, false, 1, 90480, 0xCAFE, ulaw))
	eventually(t, "packet received on X", func() bool { return x.Stats().PacketsIn == 4 })
	if got := y.Stats().PacketsOut; got != 5 {
		t.Errorf("Y sent %d packets, want 5 (2 prompt + 3 forwarded)", got)
	}
}

// Bridge stops playback on both legs, and a new bridge replaces an old one.
func TestBridgeStopsPlaybackAndReplacesOldBridge(t *testing.T) {
	e := newTestEngine(t, "127.0.0.1")
	x, y, z := newTestLeg(t, e, "x"), newTestLeg(t, e, "y"), newTestLeg(t, e, "z")
	moh := NewPrompt("moh", Tone(300, time.Second, 0.2))
	x.PlayLoop(moh)
	result := make(chan error, 1)
	go func() { result <- y.Play(context.Background(), moh) }()
	eventually(t, "both playing", func() bool { return x.job.Load() != nil && y.job.Load() != nil })
	NewBridge(x, y)
	if err := <-result; err != ErrInterrupted {
		t.Errorf("Play during Bridge returned %v, want ErrInterrupted", err)
	}
	if x.job.Load() != nil {
		t.Error("music on hold still playing on a bridged leg")
	}
	NewBridge(x, z)
	if y.state.Load().peer != nil || x.state.Load().peer != z || z.state.Load().peer != x {
		t.Error("re-bridging x to z did not detach y")
	}
	z.Close()
	if x.state.Load().peer != nil {
		t.Error("closing z left x bridged to it")
	}
}

// The digit the caller pressed to choose the queue is still sending RFC
// 4733 packets when the bridge is made: its tail must not reach the agent,
// while a digit pressed after the bridge is forwarded. The menu hears both.
func TestMenuDigitTailIsNotForwarded(t *testing.T) {
	e := newEngineAt(t, "127.0.5.20", Config{})
	x, y := newTestLeg(t, e, "caller-leg"), newTestLeg(t, e, "agent-leg")
	caller, agent := newRawPeer(t, "127.0.5.21"), newRawPeer(t, "127.0.5.22")
	x.SetParams(Params{Remote: caller.addr(), Codec: PCMU, DTMFPayloadType: 101})
	y.SetParams(Params{Remote: agent.addr(), Codec: PCMU, DTMFPayloadType: 96})

	stream := rtpStream{ssrc: 0xCA, seq: 1, ts: 8000}
	menuDigit := stream.event(101, '1')
	for _, pkt := range menuDigit[:2] {
		caller.send(x.LocalAddr(), pkt)
	}
	eventually(t, "menu digit heard", func() bool { return x.Stats().PacketsIn == 2 })
	NewBridge(x, y)
	for _, pkt := range menuDigit[2:] {
		caller.send(x.LocalAddr(), pkt)
	}
	stream.digit(caller, x.LocalAddr(), 101, '2')
	caller.send(x.LocalAddr(), rtpPacket(13, false, 99, 0, 0xCA, []byte{1})) // counted after the rest is done
	eventually(t, "all handled", func() bool { return x.Stats().UnknownPayload == 1 })

	if got := drainDigits(x); got != "12" {
		t.Errorf("caller leg reported %q, want \"12\"", got)
	}
	if got := y.Stats().PacketsOut; got != 6 {
		t.Errorf("agent leg sent %d packets, want the 6 of the second digit", got)
	}
	got := agent.pending()
	if len(got) != 6 {
		t.Errorf("agent received %d packets, want 6", len(got))
	}
	for _, pkt := range got {
		var p rtp.Packet
		if err := p.Unmarshal(pkt); err != nil || p.PayloadType != 96 || p.Payload[0] != 2 {
			t.Errorf("agent got payload type %d, % x (%v); want only events of key 2", p.PayloadType, p.Payload, err)
		}
	}
}
