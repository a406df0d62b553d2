package sip

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// Digest authentication, server side (RFC 3261 §22, RFC 8760 for SHA-256).
//
// Nonces are self-authenticating: issue time, random bytes and an HMAC of
// both under a key made at start-up. Issuing one costs no memory, so a flood
// of unanswered challenges cannot grow a table; a nonce we never issued
// (forged, or from before a restart) is recognised by its HMAC and gets a
// fresh challenge. A nonce is single-use and lives nonceLifetime: the used
// ones are remembered, in the order they were used, only until they would
// have expired anyway. An expired or reused nonce of ours gets stale=true,
// which clients answer without asking the user again.

const nonceLifetime = 30 * time.Second

var (
	errNoCredentials = errors.New("no credentials")
	errUnknownNonce  = errors.New("nonce never issued")
	errStaleNonce    = errors.New("stale nonce")
	errURIMismatch   = errors.New("digest uri does not match the request-uri")
	errBadCredential = errors.New("bad credentials")
)

const (
	nonceTimeLen = 8
	nonceRandLen = 8
	nonceMACLen  = 16
	nonceLen     = nonceTimeLen + nonceRandLen + nonceMACLen
)

// Authenticator issues digest challenges and verifies answers.
type Authenticator struct {
	offer atomic.Pointer[digestOffer] // swapped by a reload
	now   func() time.Time
	key   [32]byte // HMAC key of our nonces, per process

	mu        sync.Mutex
	used      map[string]struct{} // nonces answered once and not yet expired
	usedOrder []usedNonce         // the same, oldest use first
}

// digestOffer is what a challenge names: the realm and the algorithms,
// most preferred first.
type digestOffer struct {
	realm      string
	algorithms []string
}

type usedNonce struct {
	nonce string
	at    time.Time // when it was used
}

// NewAuthenticator returns an authenticator for realm offering algorithms
// ("MD5", "SHA-256") in that order of preference.
func NewAuthenticator(realm string, algorithms []string) *Authenticator {
	a := &Authenticator{now: time.Now, used: make(map[string]struct{})}
	a.Reconfigure(realm, algorithms)
	_, _ = rand.Read(a.key[:])
	return a
}

// Challenges returns the WWW-Authenticate values to send, one per offered
// algorithm, most preferred first (RFC 8760 §2.4).
func (a *Authenticator) Challenges(stale bool) []string {
	nonce := a.newNonce()
	offer := a.offer.Load()
	out := make([]string, 0, len(offer.algorithms))
	for _, alg := range offer.algorithms {
		c := digest.Challenge{Realm: offer.realm, Nonce: nonce, Algorithm: alg, QOP: []string{"auth"}, Stale: stale}
		out = append(out, c.String())
	}
	return out
}

func (a *Authenticator) newNonce() string {
	var b [nonceLen]byte
	binary.BigEndian.PutUint64(b[:nonceTimeLen], uint64(a.now().UnixNano()))
	_, _ = rand.Read(b[nonceTimeLen : nonceTimeLen+nonceRandLen])
	a.sign(b[:nonceTimeLen+nonceRandLen], b[nonceTimeLen+nonceRandLen:])
	return hex.EncodeToString(b[:])
}

// sign writes the truncated HMAC of msg into mac.
func (a *Authenticator) sign(msg, mac []byte) {
	h := hmac.New(sha256.New, a.key[:])
	h.Write(msg)
	copy(mac, h.Sum(nil))
}

// takeNonce consumes nonce: errUnknownNonce when we never issued it,
// errStaleNonce when it expired or was already used.
func (a *Authenticator) takeNonce(nonce string) error {
	var b [nonceLen]byte
	if hex.DecodedLen(len(nonce)) != nonceLen {
		return errUnknownNonce
	}
	if _, err := hex.Decode(b[:], []byte(nonce)); err != nil {
		return errUnknownNonce
	}
	var want [nonceMACLen]byte
	a.sign(b[:nonceTimeLen+nonceRandLen], want[:])
	if !hmac.Equal(want[:], b[nonceTimeLen+nonceRandLen:]) {
		return errUnknownNonce
	}
	now := a.now()
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(b[:nonceTimeLen])))
	if age := now.Sub(issued); age > nonceLifetime || age < -nonceLifetime {
		return errStaleNonce
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.forgetExpired(now)
	if _, dup := a.used[nonce]; dup {
		return errStaleNonce
	}
	a.used[nonce] = struct{}{}
	a.usedOrder = append(a.usedOrder, usedNonce{nonce: nonce, at: now})
	return nil
}

// forgetExpired drops used nonces that can no longer pass the age check:
// a nonce is used after it is issued, so use time + lifetime is past its
// expiry. The queue is in use order, so this stops at the first young one.
func (a *Authenticator) forgetExpired(now time.Time) {
	n := 0
	for n < len(a.usedOrder) && now.Sub(a.usedOrder[n].at) > nonceLifetime {
		delete(a.used, a.usedOrder[n].nonce)
		n++
	}
	if n > 0 {
		a.usedOrder = slices.Delete(a.usedOrder, 0, n)
	}
}

// Verify checks an Authorization header value for method and the request's
// Request-URI. password returns the user's password and whether the user
// exists; unknown users are checked against a dummy password so that the
// outcome and the work done look the same as for a known user with a wrong
// password. It returns the authenticated user name.
func (a *Authenticator) Verify(header, method string, requestURI sip.Uri, password func(user string) (string, bool)) (string, error) {
	if header == "" {
		return "", errNoCredentials
	}
	creds, err := digest.ParseCredentials(header)
	if err != nil {
		return "", errBadCredential
	}
	// RFC 7616 §3.4.6 (RFC 2617 §3.2.2.5): the digest covers its uri, which
	// must be the one of this request, so an answer cannot be replayed on
	// another URI. Checked before the user is looked up: it says nothing
	// about users or passwords.
	if !sameRequestURI(creds.URI, requestURI) {
		return "", errURIMismatch
	}
	if err := a.takeNonce(creds.Nonce); err != nil {
		return "", err
	}
	offer := a.offer.Load()
	if creds.Realm != offer.realm || creds.Userhash {
		return "", errBadCredential
	}
	alg := strings.ToUpper(creds.Algorithm)
	if alg == "" {
		alg = "MD5"
	}
	if !slices.Contains(offer.algorithms, alg) { // no downgrade to an algorithm we did not offer
		return "", errBadCredential
	}
	pw, known := password(creds.Username)
	if !known {
		pw = "\x00unknown-user\x00"
	}
	chal := &digest.Challenge{Realm: offer.realm, Nonce: creds.Nonce, Algorithm: creds.Algorithm}
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

// sameRequestURI compares the digest uri with the Request-URI as SIP URIs
// (scheme and host without case, an absent port as the scheme's default),
// so that a client that spells the same URI differently is not refused.
// URI parameters are not compared: proxies may add some.
func sameRequestURI(digestURI string, req sip.Uri) bool {
	var u sip.Uri
	if digestURI == "" || sip.ParseUri(digestURI, &u) != nil {
		return false
	}
	return strings.EqualFold(u.Scheme, req.Scheme) && u.User == req.User &&
		strings.EqualFold(u.Host, req.Host) && portOrDefault(u) == portOrDefault(req)
}

func portOrDefault(u sip.Uri) int {
	if u.Port != 0 {
		return u.Port
	}
	if strings.EqualFold(u.Scheme, "sips") {
		return 5061
	}
	return 5060
}

// Reconfigure changes the realm and the algorithms offered (a reload).
func (a *Authenticator) Reconfigure(realm string, algorithms []string) {
	a.offer.Store(&digestOffer{realm: realm, algorithms: slices.Clone(algorithms)})
}
