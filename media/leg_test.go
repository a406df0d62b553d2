package media

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPlayToneReachesPeer(t *testing.T) {
	tests := []struct {
		codec      Codec
		ptime      int
		wantPacket int // samples per received packet
	}{
		{PCMU, 0, 160},
		{PCMA, 20, 160},
		{PCMU, 30, 240},
	}
	e := newTestEngine(t, "127.0.0.1")
	for _, tt := range tests {
		t.Run(tt.codec.String(), func(t *testing.T) {
			a, b := newTestLeg(t, e, "a"), newTestLeg(t, e, "b")
			defer a.Close()
			defer b.Close()
			connect(a, b, tt.codec, 101, tt.ptime)
			rec := newRecorder(2000) // 250 ms
			b.AddTap(rec)

			prompt := NewPrompt("tone", Tone(440, 300*time.Millisecond, 0.5))
			if err := a.Play(testContext(t), prompt); err != nil {
				t.Fatal(err)
			}
			pcm, _ := rec.wait(t)
			if got := DominantFrequency(pcm, 440, 1000); got != 440 {
				t.Errorf("dominant frequency %v Hz, want 440", got)
			}
			// A 0.5 tone has power 0.25; G.711 loses very little of it.
			if p := Goertzel(pcm, 440); p < 0.2 || p > 0.3 {
				t.Errorf("440 Hz power %.3f, want about 0.25", p)
			}
			// 2400 samples in whole packets of the negotiated ptime, the last padded.
			wantPackets := uint64((2400 + tt.wantPacket - 1) / tt.wantPacket)
			if got := a.Stats().PacketsOut; got != wantPackets {
				t.Errorf("sent %d packets, want %d", got, wantPackets)
			}
			eventually(t, "all packets received", func() bool { return b.Stats().PacketsIn == wantPackets })
			if in := b.Stats().BytesIn; in != wantPackets*uint64(12+tt.wantPacket) {
				t.Errorf("received %d bytes in %d packets, want packets of %d samples", in, wantPackets, tt.wantPacket)
			}
		})
	}
}

func TestPlayInterruptedAndCancelled(t *testing.T) {
	e := newTestEngine(t, "127.0.0.1")
	a, b := newTestLeg(t, e, "a"), newTestLeg(t, e, "b")
	connect(a, b, PCMU, 0, 20)
	long := NewPrompt("long", Tone(440, 10*time.Second, 0.5))

	result := make(chan error, 1)
	go func() { result <- a.Play(context.Background(), long) }()
	eventually(t, "playback started", func() bool { return a.Stats().PacketsOut > 0 })
	a.StopPlay()
	if err := <-result; !errors.Is(err, ErrInterrupted) {
		t.Errorf("StopPlay: Play returned %v, want ErrInterrupted", err)
	}

	go func() { result <- a.Play(context.Background(), long) }()
	eventually(t, "playback started again", func() bool { return a.job.Load() != nil })
	a.PlayLoop(long)
	if err := <-result; !errors.Is(err, ErrInterrupted) {
		t.Errorf("PlayLoop: Play returned %v, want ErrInterrupted", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	go func() { result <- a.Play(ctx, long) }()
	eventually(t, "third playback started", func() bool {
		j := a.job.Load()
		return j != nil && !j.loop
	})
	cancel()
	if err := <-result; !errors.Is(err, context.Canceled) {
		t.Errorf("cancel: Play returned %v, want context.Canceled", err)
	}
	if a.job.Load() != nil {
		t.Error("a job is still attached after cancel")
	}

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Play(context.Background(), long); !errors.Is(err, ErrClosed) {
		t.Errorf("Play on a closed leg: %v, want ErrClosed", err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestDTMFOneEventIsOneDigit(t *testing.T) {
	e := newTestEngine(t, "127.0.0.1")
	a, b := newTestLeg(t, e, "a"), newTestLeg(t, e, "b")
	connect(a, b, PCMU, 101, 20)

	if err := a.SendDTMF(testContext(t), '1', 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// 100 ms in 20 ms updates: 4 updates, then the end packet three times.
	if got := a.Stats().PacketsOut; got != 7 {
		t.Errorf("sent %d event packets, want 7", got)
	}
	eventually(t, "all event packets received", func() bool { return b.Stats().PacketsIn == 7 })
	var digits []byte
	for len(b.DTMF()) > 0 {
		digits = append(digits, <-b.DTMF())
	}
	if string(digits) != "1" {
		t.Errorf("received digits %q, want \"1\"", digits)
	}
	if got := b.Stats().DTMFEvents; got != 1 {
		t.Errorf("DTMFEvents = %d, want 1", got)
	}

	if err := b.SendDTMF(testContext(t), '#', 0); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-a.DTMF():
		if d != '#' {
			t.Errorf("got %q, want '#'", d)
		}
	case <-time.After(guard):
		t.Fatal("no digit")
	}

	a.SetParams(Params{Remote: b.LocalAddr(), Codec: PCMU})
	if err := a.SendDTMF(testContext(t), '1', 0); !errors.Is(err, ErrNoDTMF) {
		t.Errorf("without telephone-event: %v, want ErrNoDTMF", err)
	}
	if err := b.SendDTMF(testContext(t), 'x', 0); err == nil {
		t.Error("SendDTMF('x') gave no error")
	}
}

// The packets of one event, retransmitted end packets and a late end packet
// of an earlier event must give one digit per event.
func TestReceiveDedupesEventPackets(t *testing.T) {
	e := newTestEngine(t, "127.0.0.1")
	l := newTestLeg(t, e, "l")
	peer := newRawPeer(t, "127.0.0.1")
	l.SetParams(Params{Remote: peer.addr(), Codec: PCMU, DTMFPayloadType: 101})

	event := func(code uint8, end bool, dur uint16) []byte {
		var b [4]byte
		telephoneEvent{code: code, end: end, volume: 10, duration: dur}.marshalTo(b[:])
		return b[:]
	}
	now := time.Now()
	seq := uint16(1)
	feed := func(ts uint32, payload []byte) {
		l.receive(rtpPacket(101, false, seq, ts, 42, payload), peer.addr(), now)
		seq++
	}
	feed(8000, event(5, false, 160))
	feed(8000, event(5, false, 320))
	feed(8000, event(5, true, 480))
	feed(8000, event(5, true, 480))
	feed(8000, event(5, true, 480))
	feed(9600, event(11, true, 160)) // only the end packets of '#' arrived
	feed(8000, event(5, true, 480))  // late duplicate of '5'
	feed(11200, event(16, false, 160))
	feed(12000, []byte{1, 2}) // too short

	digits := func() string {
		var s []byte
		for len(l.DTMF()) > 0 {
			s = append(s, <-l.DTMF())
		}
		return string(s)
	}()
	if digits != "5#" {
		t.Errorf("digits %q, want \"5#\"", digits)
	}
	l.FlushDTMF()
}

func TestGarbageIsDroppedAndCounted(t *testing.T) {
	e := newTestEngine(t, "127.0.0.1")
	l := newTestLeg(t, e, "l")
	src := newRawPeer(t, "127.0.0.1").addr()
	now := time.Now()
	l.receive(rtpPacket(0, false, 1, 0, 1, make([]byte, 160)), src, now)
	if s := l.Stats(); s.Early != 1 || s.PacketsIn != 0 {
		t.Fatalf("before SetParams: %+v, want 1 early packet", s)
	}
	l.SetParams(Params{Remote: src, Codec: PCMA, PayloadType: 8, DTMFPayloadType: 96})
	v1 := rtpPacket(8, false, 1, 0, 1, make([]byte, 160))
	v1[0] = 0x40
	for _, pkt := range [][]byte{
		nil, {0x80}, []byte("GET / HTTP/1.1\r\n\r\n"), v1,
		{0x8f, 8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}, // 15 CSRCs announced, none there
		{0xa0, 8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}, // padding bit without padding
	} {
		l.receive(pkt, src, now)
	}
	for _, pt := range []uint8{0, 13, 101, 72} { // PCMU, CN, other events, RTCP
		l.receive(rtpPacket(pt, false, 1, 0, 1, make([]byte, 4)), src, now)
	}
	l.receive(rtpPacket(8, false, 1, 0, 1, make([]byte, 160)), src, now)
	s := l.Stats()
	if s.Malformed != 6 || s.UnknownPayload != 4 || s.PacketsIn != 1 || s.BytesIn != 172 {
		t.Errorf("malformed %d, unknown %d, in %d (%d bytes); want 6, 4, 1 (172)", s.Malformed, s.UnknownPayload, s.PacketsIn, s.BytesIn)
	}
	if s.LastReceived.UnixNano() != now.UnixNano() {
		t.Errorf("LastReceived = %v, want %v", s.LastReceived, now)
	}
}
