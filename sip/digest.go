package sip

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/icholy/digest"
)

// Digest authentication, server side (RFC 3261 §22, RFC 8760 for SHA-256).
// Nonces are random, expire after nonceLifetime and are single-use: a
// reused or expired nonce gets a fresh challenge with stale=true, which
// clients answer without asking the user again.

const (
	nonceLifetime = 30 * time.Second
	maxNonces     = 10000 // bounds memory under a flood of unanswered challenges
)

var (
	errNoCredentials = errors.New("no credentials")
	errStaleNonce    = errors.New("stale nonce")
	errBadCredential = errors.New("bad credentials")
)

// Authenticator issues digest challenges and verifies answers.
type Authenticator struct {
	realm      string
	algorithms []string // offered, most preferred first
	now        func() time.Time

	mu     sync.Mutex
	nonces map[string]time.Time // nonce -> issued at; deleted on use
}

// NewAuthenticator returns an authenticator for realm offering algorithms
// ("MD5", "SHA-256") in that order of preference.
func NewAuthenticator(realm string, algorithms []string) *Authenticator {
	return &Authenticator{realm: realm, algorithms: algorithms, now: time.Now, nonces: make(map[string]time.Time)}
}

// Challenges returns the WWW-Authenticate values to send, one per offered
// algorithm, most preferred first (RFC 8760 §2.4).
func (a *Authenticator) Challenges(stale bool) []string {
	nonce := a.newNonce()
	out := make([]string, 0, len(a.algorithms))
	for _, alg := range a.algorithms {
		c := digest.Challenge{Realm: a.realm, Nonce: nonce, Algorithm: alg, QOP: []string{"auth"}, Stale: stale}
		out = append(out, c.String())
	}
	return out
}

func (a *Authenticator) newNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	nonce := hex.EncodeToString(b[:])
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.nonces) >= maxNonces {
		for n, at := range a.nonces {
			if now.Sub(at) > nonceLifetime {
				delete(a.nonces, n)
			}
		}
		if len(a.nonces) >= maxNonces { // still full: drop an arbitrary one
			for n := range a.nonces {
				delete(a.nonces, n)
				break
			}
		}
	}
	a.nonces[nonce] = now
	return nonce
}

// takeNonce consumes nonce; it reports false when it was never issued,
// already used or expired.
func (a *Authenticator) takeNonce(nonce string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	at, ok := a.nonces[nonce]
	if !ok {
		return false
	}
	delete(a.nonces, nonce)
	return a.now().Sub(at) <= nonceLifetime
}

// Verify checks an Authorization header value for method. password returns
// the user's password and whether the user exists; unknown users are checked
// against a dummy password so that the outcome and the work done look the
// same as for a known user with a wrong password.
// It returns the authenticated user name.
func (a *Authenticator) Verify(header, method string, password func(user string) (string, bool)) (string, error) {
	if header == "" {
		return "", errNoCredentials
	}
	creds, err := digest.ParseCredentials(header)
	if err != nil {
		return "", errBadCredential
	}
	if !a.takeNonce(creds.Nonce) {
		return "", errStaleNonce
	}
	if creds.Realm != a.realm || creds.Userhash {
		return "", errBadCredential
	}
	alg := strings.ToUpper(creds.Algorithm)
	if alg == "" {
		alg = "MD5"
	}
	if !slices.Contains(a.algorithms, alg) { // no downgrade to an algorithm we did not offer
		return "", errBadCredential
	}
	pw, known := password(creds.Username)
	if !known {
		pw = "\x00unknown-user\x00"
	}
	chal := &digest.Challenge{Realm: a.realm, Nonce: creds.Nonce, Algorithm: creds.Algorithm}
	if creds.QOP != "" {
		if creds.QOP != "auth" {
			return "", errBadCredential
		}
		chal.QOP = []string{"auth"}
	}
	want, err := digest.Digest(chal, digest.Options{
		Method: method, URI: creds.URI, Username: creds.Username, Password: pw,
		Cnonce: creds.Cnonce, Count: creds.Nc,
	})
	if err != nil {
		return "", errBadCredential
	}
	match := subtle.ConstantTimeCompare([]byte(strings.ToLower(want.Response)), []byte(strings.ToLower(creds.Response))) == 1
	if !match || !known {
		return "", errBadCredential
	}
	return creds.Username, nil
}
