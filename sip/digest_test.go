package sip

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// registrarURI is the Request-URI the answers below are computed for.
var registrarURI = sip.Uri{Scheme: "sip", Host: "127.0.0.1"}

func answer(t testing.TB, header, user, password string) string {
	t.Helper()
	chal, err := digest.ParseChallenge(header)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: "sip:127.0.0.1", Username: user, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	return cred.String()
}

func passwords(user string) (string, bool) {
	if user == "1001" {
		return "demo1001", true
	}
	return "", false
}

func TestDigestBothAlgorithms(t *testing.T) {
	a := NewAuthenticator("hotline", []string{"SHA-256", "MD5"})
	chals := a.Challenges(false)
	if len(chals) != 2 || !strings.Contains(chals[0], "SHA-256") || !strings.Contains(chals[1], "MD5") {
		t.Fatalf("challenges = %q, want SHA-256 then MD5", chals)
	}
	for i := range chals {
		c := a.Challenges(false)[i] // each answer uses up its nonce
		user, err := a.Verify(answer(t, c, "1001", "demo1001"), "REGISTER", registrarURI, passwords)
		if err != nil || user != "1001" {
			t.Errorf("%s: user %q err %v", c[:40], user, err)
		}
	}
}

func TestDigestOnlyOfferedAlgorithms(t *testing.T) {
	md5Only := NewAuthenticator("hotline", []string{"MD5"})
	if c := md5Only.Challenges(false); len(c) != 1 || !strings.Contains(c[0], "algorithm=MD5") {
		t.Fatalf("MD5-only challenges = %q", c)
	}
	sha := NewAuthenticator("hotline", []string{"SHA-256"})
	// An MD5 answer to a SHA-256-only realm is a downgrade: refused.
	md5Chal := strings.Replace(sha.Challenges(false)[0], "SHA-256", "MD5", 1)
	if _, err := sha.Verify(answer(t, md5Chal, "1001", "demo1001"), "REGISTER", registrarURI, passwords); !errors.Is(err, errBadCredential) {
		t.Errorf("MD5 answer to SHA-256-only: %v, want refused", err)
	}
}

func TestDigestRefusals(t *testing.T) {
	a := NewAuthenticator("hotline", []string{"SHA-256", "MD5"})
	wrong := answer(t, a.Challenges(false)[1], "1001", "nope")
	if _, err := a.Verify(wrong, "REGISTER", registrarURI, passwords); !errors.Is(err, errBadCredential) {
		t.Errorf("wrong password: %v", err)
	}
	unknown := answer(t, a.Challenges(false)[1], "9999", "demo1001")
	if _, err := a.Verify(unknown, "REGISTER", registrarURI, passwords); !errors.Is(err, errBadCredential) {
		t.Errorf("unknown user: %v (must look exactly like a wrong password)", err)
	}
	good := answer(t, a.Challenges(false)[0], "1001", "demo1001")
	if _, err := a.Verify(good, "REGISTER", registrarURI, passwords); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(good, "REGISTER", registrarURI, passwords); !errors.Is(err, errStaleNonce) {
		t.Errorf("replayed nonce: %v, want stale", err)
	}
	clock := time.Now()
	a.now = func() time.Time { return clock }
	late := answer(t, a.Challenges(false)[0], "1001", "demo1001")
	clock = clock.Add(nonceLifetime + time.Second)
	if _, err := a.Verify(late, "REGISTER", registrarURI, passwords); !errors.Is(err, errStaleNonce) {
		t.Errorf("expired nonce: %v, want stale", err)
	}
	if _, err := a.Verify("", "REGISTER", registrarURI, passwords); !errors.Is(err, errNoCredentials) {
		t.Errorf("no header: %v", err)
	}
}

// A nonce we never issued (forged, or from before a restart) gets a fresh
// challenge; only our own nonce, expired or used, is stale.
func TestDigestNonceWeNeverIssued(t *testing.T) {
	a := NewAuthenticator("hotline", []string{"MD5"})
	beforeRestart := NewAuthenticator("hotline", []string{"MD5"})
	old := answer(t, beforeRestart.Challenges(false)[0], "1001", "demo1001")
	if _, err := a.Verify(old, "REGISTER", registrarURI, passwords); !errors.Is(err, errUnknownNonce) {
		t.Errorf("nonce of another process: %v, want never issued", err)
	}
	ours := a.Challenges(false)[0]
	chal, err := digest.ParseChallenge(ours)
	if err != nil {
		t.Fatal(err)
	}
	flipped := []byte(chal.Nonce)
	flipped[20] ^= 1 // '0'<->'1', 'a'<->'`'...: still the right length, no longer ours
	forged := *chal
	forged.Nonce = string(flipped)
	if _, err := a.Verify(answer(t, forged.String(), "1001", "demo1001"), "REGISTER", registrarURI, passwords); !errors.Is(err, errUnknownNonce) {
		t.Errorf("forged nonce: %v, want never issued", err)
	}
	if _, err := a.Verify(strings.Replace(answer(t, ours, "1001", "demo1001"), `nonce="`, `nonce="zz`, 1), "REGISTER", registrarURI, passwords); !errors.Is(err, errUnknownNonce) {
		t.Errorf("garbage nonce: %v, want never issued", err)
	}
	if _, err := a.Verify(answer(t, ours, "1001", "demo1001"), "REGISTER", registrarURI, passwords); err != nil {
		t.Errorf("our own nonce after the forgeries: %v", err)
	}
}

func TestDigestURIMustMatchRequestURI(t *testing.T) {
	a := NewAuthenticator("hotline", []string{"MD5"})
	h := answer(t, a.Challenges(false)[0], "1001", "demo1001") // uri="sip:127.0.0.1"
	other := sip.Uri{Scheme: "sip", Host: "127.0.0.2"}
	if _, err := a.Verify(h, "REGISTER", other, passwords); !errors.Is(err, errURIMismatch) {
		t.Errorf("answer for sip:127.0.0.1 on a request to sip:127.0.0.2: %v, want uri mismatch", err)
	}
	sameButSpelledOut := sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: 5060}
	if _, err := a.Verify(h, "REGISTER", sameButSpelledOut, passwords); err != nil {
		t.Errorf("sip:127.0.0.1 against sip:127.0.0.1:5060: %v, want accepted", err)
	}
}

// Unanswered challenges cost no memory; used nonces are kept only until
// they would have expired anyway.
func TestDigestNonceMemoryIsBounded(t *testing.T) {
	a := NewAuthenticator("hotline", []string{"MD5"})
	clock := time.Now()
	a.now = func() time.Time { return clock }
	for range 100000 {
		a.Challenges(false)
	}
	if len(a.used) != 0 {
		t.Fatalf("%d nonces kept after unanswered challenges, want 0", len(a.used))
	}
	for range 100 {
		_, _ = a.Verify(answer(t, a.Challenges(false)[0], "1001", "wrong"), "REGISTER", registrarURI, passwords)
	}
	if len(a.used) != 100 {
		t.Fatalf("%d used nonces kept, want 100 (each is single-use)", len(a.used))
	}
	clock = clock.Add(nonceLifetime + time.Second)
	if _, err := a.Verify(answer(t, a.Challenges(false)[0], "1001", "demo1001"), "REGISTER", registrarURI, passwords); err != nil {
		t.Fatal(err)
	}
	if len(a.used) != 1 || len(a.usedOrder) != 1 {
		t.Errorf("after the lifetime: %d used nonces (%d queued), want only the newest", len(a.used), len(a.usedOrder))
	}
}

// The fuzzer writes NONCE where a nonce we issued goes, so that inputs reach
// past the nonce check into the digest computation.
func FuzzDigestVerify(f *testing.F) {
	f.Add(`Digest username="1001", realm="hotline", nonce="NONCE", uri="sip:127.0.0.1", response="0", qop=auth, nc=00000001, cnonce="c"`)
	f.Add(`Digest username="1001", realm="hotline", nonce="NONCE", uri="sip:127.0.0.1", response="0", algorithm=SHA-256`)
	f.Add(`Digest username="1001", realm="hotline", nonce="x", uri="sip:a", response="0", qop=auth, nc=00000001, cnonce="c"`)
	f.Add(`Digest username="9999", realm="hotline", nonce="NONCE", uri="sips:[::1]:5061;transport=tls", response="0"`)
	f.Add(`Digest username=`)
	f.Add(`Basic abc`)
	a := NewAuthenticator("hotline", []string{"SHA-256", "MD5"})
	known := []error{errNoCredentials, errUnknownNonce, errStaleNonce, errURIMismatch, errBadCredential}
	f.Fuzz(func(t *testing.T, h string) {
		nonce, _ := digest.ParseChallenge(a.Challenges(false)[0])
		h = strings.ReplaceAll(h, "NONCE", nonce.Nonce)
		_, err := a.Verify(h, "REGISTER", registrarURI, passwords)
		if err == nil {
			t.Fatalf("accepted %q", h)
		}
		if !slices.ContainsFunc(known, func(e error) bool { return errors.Is(err, e) }) {
			t.Fatalf("%q: unexpected error %v", h, err)
		}
	})
}
