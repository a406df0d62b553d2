package sip

import (
	"net/netip"
	"testing"

	"github.com/hotline-pbx/hotline/media"
)

// Per-call signalling costs: one offer parsed and one answer written per
// call leg, one digest round (challenge, client answer, verify) per REGISTER.

func BenchmarkParseSDP(b *testing.B) {
	offer := OfferSDP(netip.MustParseAddrPort("192.0.2.10:4000"), media.PCMA)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseSDP(offer); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAnswerSDP(b *testing.B) {
	s, _ := ParseSDP(OfferSDP(netip.MustParseAddrPort("192.0.2.10:4000"), media.PCMA))
	local := netip.MustParseAddrPort("127.0.0.1:10000")
	b.ReportAllocs()
	for b.Loop() {
		_ = AnswerSDP(local, s)
	}
}

func BenchmarkDigestRound(b *testing.B) {
	a := NewAuthenticator("hotline", []string{"MD5"})
	b.ReportAllocs()
	for b.Loop() {
		h := answer(b, a.Challenges(false)[0], "1001", "demo1001")
		if _, err := a.Verify(h, "REGISTER", registrarURI, passwords); err != nil {
			b.Fatal(err)
		}
	}
}

// A flood of REGISTERs that never answer their challenge: the cost of one
// more challenge must not grow with the challenges already sent.
func BenchmarkChallengeFlood(b *testing.B) {
	a := NewAuthenticator("hotline", []string{"MD5"})
	for range 20000 {
		a.Challenges(false)
	}
	b.ReportAllocs()
	for b.Loop() {
		a.Challenges(false)
	}
}
