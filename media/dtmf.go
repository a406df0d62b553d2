package media

import (
	"encoding/binary"
	"fmt"
)

// telephoneEvent is one RFC 4733 named-event payload (section 2.3):
//
//	 0                   1                   2                   3
//	|     event     |E|R| volume    |          duration             |
type telephoneEvent struct {
	code     uint8
	end      bool
	volume   uint8 // -dBm0, 0..63
	duration uint16
}

const telephoneEventSize = 4

// parseTelephoneEvent decodes the first event of an RFC 4733 payload. It
// reports false for payloads too short to hold one.
func parseTelephoneEvent(payload []byte) (telephoneEvent, bool) {
	if len(payload) < telephoneEventSize {
		return telephoneEvent{}, false
	}
	return telephoneEvent{
		code:     payload[0],
		end:      payload[1]&0x80 != 0,
		volume:   payload[1] & 0x3f,
		duration: binary.BigEndian.Uint16(payload[2:4]),
	}, true
}

// marshalTo writes the event into buf (len >= 4) and returns 4.
func (ev telephoneEvent) marshalTo(buf []byte) int {
	buf[0] = ev.code
	buf[1] = ev.volume & 0x3f
	if ev.end {
		buf[1] |= 0x80
	}
	binary.BigEndian.PutUint16(buf[2:4], ev.duration)
	return telephoneEventSize
}

// dtmfDigits maps RFC 4733 event codes 0-15 to their keys.
const dtmfDigits = "0123456789*#ABCD"

// eventDigit returns the key of a DTMF event code; other events (flash,
// tones) report false.
func eventDigit(code uint8) (byte, bool) {
	if int(code) >= len(dtmfDigits) {
		return 0, false
	}
	return dtmfDigits[code], true
}

// digitEvent returns the RFC 4733 event code of a key ('0'-'9', '*', '#',
// 'A'-'D', lower case accepted).
func digitEvent(digit byte) (uint8, error) {
	if digit >= 'a' && digit <= 'd' {
		digit -= 'a' - 'A'
	}
	for code := range len(dtmfDigits) {
		if dtmfDigits[code] == digit {
			return uint8(code), nil
		}
	}
	return 0, fmt.Errorf("media: %q is not a DTMF digit (want 0-9, *, #, A-D)", digit)
}

// eventKey identifies one event: a sender repeats the same RTP timestamp in
// every packet of an event, including the three end packets.
type eventKey struct {
	ssrc, timestamp uint32
}

// eventLog remembers the last few events and the bridge each began in, so
// that the many packets of one event, and a late end packet of an earlier
// one, yield a single digit and follow the first packet's fate.
type eventLog struct {
	recent [4]eventKey
	bridge [4]uint64
	valid  [4]bool
	next   int
}

// observe returns the bridge event k began in and whether k is new; a new
// event is remembered as beginning in bridge.
func (d *eventLog) observe(k eventKey, bridge uint64) (began uint64, isNew bool) {
	for i, key := range d.recent {
		if d.valid[i] && key == k {
			return d.bridge[i], false
		}
	}
	d.recent[d.next], d.bridge[d.next], d.valid[d.next] = k, bridge, true
	d.next = (d.next + 1) % len(d.recent)
	return bridge, true
}
