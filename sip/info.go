package sip

import (
	"bytes"
	"strconv"
	"strings"
)

// DTMF by SIP INFO. Two bodies are in use: application/dtmf-relay
// ("Signal=5\r\nDuration=160", from Cisco and most desk phones) and
// application/dtmf (just the key, or its event number). Both name a key
// either by itself (0-9 * # A-D) or by its RFC 4733 event number.

// infoDigit reads the key an INFO body names. known is false for a
// content type that carries no DTMF; ok is false when the body names no key.
func infoDigit(contentType string, body []byte) (digit byte, ok, known bool) {
	mediaType, _, _ := strings.Cut(contentType, ";")
	switch strings.ToLower(strings.TrimSpace(mediaType)) {
	case "application/dtmf-relay":
		for _, line := range bytes.Split(body, []byte("\n")) {
			name, value, found := bytes.Cut(line, []byte("="))
			if found && strings.EqualFold(string(bytes.TrimSpace(name)), "signal") {
				digit, ok = keyOf(string(bytes.TrimSpace(value)))
				return digit, ok, true
			}
		}
		return 0, false, true
	case "application/dtmf":
		digit, ok = keyOf(string(bytes.TrimSpace(body)))
		return digit, ok, true
	}
	return 0, false, false
}

// keyOf reads one key: the character itself or its event number (0-15).
func keyOf(s string) (byte, bool) {
	const keys = "0123456789*#ABCD"
	if len(s) == 1 {
		if c := strings.ToUpper(s)[0]; strings.IndexByte(keys, c) >= 0 {
			return c, true
		}
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 10 && n < len(keys) {
		return keys[n], true
	}
	return 0, false
}
