package media

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// A leg on hold (RecvOnly, Inactive, c=0.0.0.0) sends nothing: no forwarded
// audio, no music, no DTMF, while it still receives. On resume the stream
// goes on where it stopped: the next sequence number, a timestamp that kept
// running with the clock, and the marker bit.
func TestHeldLegSendsNothingAndResumesCleanly(t *testing.T) {
	e := newEngineAt(t, "127.0.5.12", Config{})
	x, y := newTestLeg(t, e, "agent-leg"), newTestLeg(t, e, "caller-leg")
	phone, caller := newRawPeer(t, "127.0.5.13"), newRawPeer(t, "127.0.5.14")
	ctx := testContext(t)
	talking := Params{Remote: phone.addr(), Codec: PCMU, DTMFPayloadType: 101}
	x.SetParams(talking)
	y.SetParams(Params{Remote: caller.addr(), Codec: PCMU, DTMFPayloadType: 101})
	held := talking
	held.Direction = RecvOnly

	// A hold in the middle of a DTMF event ends it.
	result := make(chan error, 1)
	go func() { result <- x.SendDTMF(ctx, '5', 10*time.Second) }()
	phone.receive()
	x.SetParams(held)
	if err := <-result; !errors.Is(err, ErrNotSending) {
		t.Errorf("SendDTMF when the hold came: %v, want ErrNotSending", err)
	}
	x.SetParams(talking)
	eventSent := x.Stats().PacketsOut
	if got := 1 + len(phone.pending()); uint64(got) != eventSent {
		t.Fatalf("phone got %d event packets, the leg sent %d", got, eventSent)
	}

	if err := x.Play(ctx, NewPrompt("hello", Tone(440, 40*time.Millisecond, 0.5))); err != nil {
		t.Fatal(err)
	}
	var before [2]rtp.Packet
	for i := range before {
		if err := before[i].Unmarshal(phone.receive()); err != nil {
			t.Fatal(err)
		}
	}
	if x.OnHold() {
		t.Fatal("OnHold before any hold")
	}

	// The phone puts us on hold with a=sendonly: we receive only.
	NewBridge(x, y)
	x.SetParams(held)
	if !x.OnHold() {
		t.Fatal("OnHold = false with direction recvonly")
	}
	fromCaller := rtpStream{ssrc: 0xCA, seq: 10}
	fromCaller.tone(caller, y.LocalAddr(), PCMU, 1000, 5)
	caller.send(y.LocalAddr(), rtpPacket(13, false, 99, 0, 0xCA, []byte{1})) // after the 5: counted once they are done
	eventually(t, "caller's audio handled", func() bool { return y.Stats().UnknownPayload == 1 })
	if got := x.Stats().PacketsOut - eventSent; got != 2 {
		t.Errorf("held leg sent %d packets, want only the 2 before the hold", got)
	}
	// Receiving goes on: the phone's music reaches the caller.
	fromPhone := rtpStream{ssrc: 0xF0, seq: 1}
	fromPhone.tone(phone, x.LocalAddr(), PCMU, 440, 3)
	for range 3 {
		caller.receive()
	}
	if err := x.SendDTMF(ctx, '5', 0); !errors.Is(err, ErrNotSending) {
		t.Errorf("SendDTMF on hold: %v, want ErrNotSending", err)
	}
	// A prompt plays out in silence (Play still takes its time).
	short := NewPrompt("short", Tone(440, 60*time.Millisecond, 0.5))
	if err := x.Play(ctx, short); err != nil {
		t.Fatal(err)
	}
	// Old-style hold (c=0.0.0.0) is never sent to, whatever the direction.
	x.SetParams(Params{Remote: netip.AddrPortFrom(netip.IPv4Unspecified(), phone.addr().Port()), Codec: PCMU})
	if err := x.Play(ctx, short); err != nil {
		t.Fatal(err)
	}
	if s := x.Stats(); s.PacketsOut-eventSent != 2 || s.SendErrors != 0 {
		t.Errorf("on hold: sent %d packets, %d send errors; want 2 and 0", s.PacketsOut-eventSent, s.SendErrors)
	}

	// Resume: music plays on where the stream stopped.
	x.PlayLoop(NewPrompt("moh", Tone(300, time.Second, 0.3)))
	x.SetParams(talking)
	var after rtp.Packet
	if err := after.Unmarshal(phone.receive()); err != nil {
		t.Fatal(err)
	}
	last := before[1]
	if after.SequenceNumber != last.SequenceNumber+1 || !after.Marker || after.SSRC != last.SSRC {
		t.Errorf("first packet after resume: seq %d marker %v ssrc %#x; want seq %d, marker, ssrc %#x",
			after.SequenceNumber, after.Marker, after.SSRC, last.SequenceNumber+1, last.SSRC)
	}
	// Not just the last frame's 160 samples on: the clock ran through the
	// hold (two prompts long at least, and less than the guard).
	if d := after.Timestamp - last.Timestamp; d <= 160 || d > uint32(guard/samplePeriod) {
		t.Errorf("timestamp moved %d samples over the hold, want the time it lasted", d)
	}
	x.StopPlay()
}
