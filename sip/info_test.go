package sip

import "testing"

func TestInfoDigit(t *testing.T) {
	for _, tt := range []struct {
		ctype, body string
		digit       byte
		ok, known   bool
	}{
		{"application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", '5', true, true},
		{"application/dtmf-relay", "signal= #\r\nduration=100", '#', true, true},
		{"Application/DTMF-Relay; charset=x", "Signal=11\r\n", '#', true, true},
		{"application/dtmf-relay", "Signal=10", '*', true, true},
		{"application/dtmf-relay", "Signal=b", 'B', true, true},
		{"application/dtmf-relay", "Duration=160", 0, false, true},
		{"application/dtmf-relay", "Signal=55", 0, false, true},
		{"application/dtmf", "7", '7', true, true},
		{"application/dtmf", "10\r\n", '*', true, true},
		{"application/dtmf", "x", 0, false, true},
		{"application/media_control+xml", "<x/>", 0, false, false},
		{"", "Signal=5", 0, false, false},
	} {
		digit, ok, known := infoDigit(tt.ctype, []byte(tt.body))
		if digit != tt.digit || ok != tt.ok || known != tt.known {
			t.Errorf("infoDigit(%q, %q) = %q %v %v, want %q %v %v", tt.ctype, tt.body, digit, ok, known, tt.digit, tt.ok, tt.known)
		}
	}
}

func FuzzInfoDigit(f *testing.F) {
	f.Add("application/dtmf-relay", []byte("Signal=5\r\nDuration=160\r\n"))
	f.Add("application/dtmf", []byte("11"))
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		digit, ok, _ := infoDigit(ctype, body)
		if ok != (digit != 0) {
			t.Fatalf("digit %q with ok %v", digit, ok)
		}
	})
}
