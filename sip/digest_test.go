package sip

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/icholy/digest"
)

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
		user, err := a.Verify(answer(t, c, "1001", "demo1001"), "REGISTER", passwords)
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
	if _, err := sha.Verify(answer(t, md5Chal, "1001", "demo1001"), "REGISTER", passwords); !errors.Is(err, errBadCredential) {
		t.Errorf("MD5 answer to SHA-256-only: %v, want refused", err)
	}
}

func TestDigestRefusals(t *testing.T) {
	a := NewAuthenticator("hotline", []string{"SHA-256", "MD5"})
	wrong := answer(t, a.Challenges(false)[1], "1001", "nope")
	if _, err := a.Verify(wrong, "REGISTER", passwords); !errors.Is(err, errBadCredential) {
		t.Errorf("wrong password: %v", err)
	}
	unknown := answer(t, a.Challenges(false)[1], "9999", "demo1001")
	if _, err := a.Verify(unknown, "REGISTER", passwords); !errors.Is(err, errBadCredential) {
		t.Errorf("unknown user: %v (must look exactly like a wrong password)", err)
	}
	good := answer(t, a.Challenges(false)[0], "1001", "demo1001")
	if _, err := a.Verify(good, "REGISTER", passwords); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(good, "REGISTER", passwords); !errors.Is(err, errStaleNonce) {
		t.Errorf("replayed nonce: %v, want stale", err)
	}
	clock := time.Now()
	a.now = func() time.Time { return clock }
	late := answer(t, a.Challenges(false)[0], "1001", "demo1001")
	clock = clock.Add(nonceLifetime + time.Second)
	if _, err := a.Verify(late, "REGISTER", passwords); !errors.Is(err, errStaleNonce) {
		t.Errorf("expired nonce: %v, want stale", err)
	}
	if _, err := a.Verify("", "REGISTER", passwords); !errors.Is(err, errNoCredentials) {
		t.Errorf("no header: %v", err)
	}
}

func FuzzDigestVerify(f *testing.F) {
	f.Add(`Digest username="1001", realm="hotline", nonce="x", uri="sip:a", response="0", qop=auth, nc=00000001, cnonce="c"`)
	f.Add(`Digest username=`)
	f.Add(`Basic abc`)
	a := NewAuthenticator("hotline", []string{"SHA-256", "MD5"})
	f.Fuzz(func(t *testing.T, h string) {
		if _, err := a.Verify(h, "REGISTER", passwords); err == nil {
			t.Fatalf("accepted %q", h)
		}
	})
}
