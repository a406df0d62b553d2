package media

import (
	"testing"
)

func TestParseTelephoneEvent(t *testing.T) {
	tests := []struct {
		payload []byte
		want    telephoneEvent
		digit   byte
		ok      bool
	}{
		{[]byte{1, 0x0a, 0x00, 0xa0}, telephoneEvent{code: 1, volume: 10, duration: 160}, '1', true},
		{[]byte{11, 0x8a, 0x03, 0x20}, telephoneEvent{code: 11, end: true, volume: 10, duration: 800}, '#', true},
		{[]byte{10, 0xff, 0xff, 0xff}, telephoneEvent{code: 10, end: true, volume: 63, duration: 65535}, '*', true},
		{[]byte{15, 0, 0, 0, 99}, telephoneEvent{code: 15}, 'D', true},
		{[]byte{16, 0, 0, 0}, telephoneEvent{code: 16}, 0, true}, // flash: not a digit
		{[]byte{1, 0, 0}, telephoneEvent{}, 0, false},
		{nil, telephoneEvent{}, 0, false},
	}
	for _, tt := range tests {
		got, ok := parseTelephoneEvent(tt.payload)
		if ok != tt.ok || got != tt.want {
			t.Errorf("parse % x = %+v %v, want %+v %v", tt.payload, got, ok, tt.want, tt.ok)
		}
		if !ok {
			continue
		}
		digit, isDigit := eventDigit(got.code)
		if digit != tt.digit || isDigit != (tt.digit != 0) {
			t.Errorf("event %d: digit %q %v, want %q", got.code, digit, isDigit, tt.digit)
		}
	}
}

func TestTelephoneEventRoundTrip(t *testing.T) {
	for _, d := range []byte("0123456789*#ABCDabcd") {
		code, err := digitEvent(d)
		if err != nil {
			t.Fatal(err)
		}
		var buf [4]byte
		telephoneEvent{code: code, end: true, volume: 10, duration: 800}.marshalTo(buf[:])
		ev, _ := parseTelephoneEvent(buf[:])
		got, _ := eventDigit(ev.code)
		want := d
		if d >= 'a' {
			want = d - 'a' + 'A'
		}
		if got != want || !ev.end || ev.volume != 10 || ev.duration != 800 {
			t.Errorf("%q: round trip gave %q %+v", d, got, ev)
		}
	}
	if _, err := digitEvent('x'); err == nil {
		t.Error("digitEvent('x') gave no error")
	}
}

func TestEventLogRemembersEventsAndTheirBridge(t *testing.T) {
	var d eventLog
	first := eventKey{ssrc: 7, timestamp: 1000}
	second := eventKey{ssrc: 7, timestamp: 2600}
	steps := []struct {
		key       eventKey
		bridge    uint64 // bridge at this packet
		wantBegan uint64
		wantNew   bool
	}{
		{first, 0, 0, true}, {first, 3, 0, false}, {first, 3, 0, false}, // bridged mid-event
		{second, 3, 3, true}, {first, 3, 0, false}, // late end packet of the first event
		{eventKey{ssrc: 8, timestamp: 1000}, 3, 3, true}, // same timestamp, other stream
	}
	for i, s := range steps {
		began, isNew := d.observe(s.key, s.bridge)
		if began != s.wantBegan || isNew != s.wantNew {
			t.Errorf("step %d %+v: began %d new %v, want %d %v", i, s.key, began, isNew, s.wantBegan, s.wantNew)
		}
	}
}

func FuzzParseTelephoneEvent(f *testing.F) {
	f.Add([]byte{1, 0x0a, 0x00, 0xa0})
	f.Add([]byte{11, 0x8a, 0x03, 0x20, 5, 6, 7, 8})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, payload []byte) {
		ev, ok := parseTelephoneEvent(payload)
		if ok != (len(payload) >= 4) {
			t.Fatalf("ok = %v for %d bytes", ok, len(payload))
		}
		if !ok {
			return
		}
		var buf [4]byte
		ev.marshalTo(buf[:])
		if again, _ := parseTelephoneEvent(buf[:]); again != ev {
			t.Fatalf("re-parse %+v != %+v", again, ev)
		}
		if digit, isDigit := eventDigit(ev.code); isDigit != (ev.code < 16) || (isDigit && digit == 0) {
			t.Fatalf("event %d: digit %q %v", ev.code, digit, isDigit)
		}
	})
}

// Digits from SIP INFO reach DTMF() like received ones, with the same
// counting and the same limit.
func TestInjectDTMF(t *testing.T) {
	e := newEngineAt(t, "127.0.5.23", Config{})
	l := newTestLeg(t, e, "l")
	for _, d := range []byte("0123456789*#ABCDa") {
		if err := l.InjectDTMF(d); err != nil {
			t.Fatalf("InjectDTMF(%q): %v", d, err)
		}
	}
	for _, d := range []byte("xE \x00") {
		if err := l.InjectDTMF(d); err == nil {
			t.Errorf("InjectDTMF(%q) accepted", d)
		}
	}
	if got := drainDigits(l); got != "0123456789*#ABCDA" {
		t.Errorf("DTMF() gave %q", got)
	}
	for range dtmfBuffer + 2 {
		if err := l.InjectDTMF('7'); err != nil {
			t.Fatal(err)
		}
	}
	if s := l.Stats(); s.DTMFEvents != 17+dtmfBuffer+2 || s.DTMFDropped != 2 {
		t.Errorf("%d events, %d dropped; want %d and 2", s.DTMFEvents, s.DTMFDropped, 17+dtmfBuffer+2)
	}
	if got := len(drainDigits(l)); got != dtmfBuffer {
		t.Errorf("%d digits waiting, want %d", got, dtmfBuffer)
	}
}
