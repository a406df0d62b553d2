package sip

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/sdp/v3"

	"github.com/hotline-pbx/hotline/media"
)

// SDP offer/answer (RFC 3264) for one audio stream of G.711 plus RFC 4733
// telephone-event. Parsing is pion/sdp's; what we send is short enough to
// write out directly.

// ErrNotAcceptable means the SDP offers nothing we can use; answer 488.
var ErrNotAcceptable = errors.New("sdp: no acceptable audio stream")

// Direction is an SDP media direction attribute.
type Direction string

const (
	SendRecv Direction = "sendrecv"
	SendOnly Direction = "sendonly"
	RecvOnly Direction = "recvonly"
	Inactive Direction = "inactive"
)

// answerDirection is what we answer to an offered direction.
func (d Direction) answer() Direction {
	switch d {
	case SendOnly:
		return RecvOnly
	case RecvOnly:
		return SendOnly
	case Inactive:
		return Inactive
	}
	return SendRecv
}

// Session is what a parsed offer or answer tells the media layer.
type Session struct {
	Params    media.Params
	Direction Direction
}

// ParseSDP reads the first audio stream of body and picks the first codec in
// the peer's order that we support (its payload numbers are kept).
func ParseSDP(body []byte) (Session, error) {
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		return Session{}, fmt.Errorf("%w: %v", ErrNotAcceptable, err)
	}
	for _, md := range sd.MediaDescriptions {
		if md.MediaName.Media != "audio" || md.MediaName.Port.Value == 0 {
			continue
		}
		if !strings.EqualFold(strings.Join(md.MediaName.Protos, "/"), "RTP/AVP") {
			continue
		}
		conn := md.ConnectionInformation
		if conn == nil {
			conn = sd.ConnectionInformation
		}
		if conn == nil || conn.Address == nil {
			return Session{}, fmt.Errorf("%w: no connection address", ErrNotAcceptable)
		}
		host := conn.Address.Address
		if i := strings.IndexByte(host, '/'); i >= 0 { // multicast TTL suffix
			host = host[:i]
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return Session{}, fmt.Errorf("%w: connection address %q", ErrNotAcceptable, host)
		}
		port := md.MediaName.Port.Value
		if port <= 0 || port > 65535 {
			return Session{}, fmt.Errorf("%w: port %d", ErrNotAcceptable, port)
		}
		p := media.Params{Remote: netip.AddrPortFrom(ip.Unmap(), uint16(port)), PtimeMS: 20}
		rtpmap := map[uint8]string{}
		dir := SendRecv
		for _, a := range md.Attributes {
			switch a.Key {
			case "rtpmap":
				pt, enc, ok := strings.Cut(a.Value, " ")
				n, err := strconv.ParseUint(pt, 10, 7)
				if ok && err == nil {
					rtpmap[uint8(n)] = strings.ToLower(enc)
				}
			case "ptime":
				if v, err := strconv.Atoi(strings.TrimSpace(a.Value)); err == nil && v == 30 {
					p.PtimeMS = 30
				}
			case "sendrecv", "sendonly", "recvonly", "inactive":
				dir = Direction(a.Key)
			}
		}
		found := false
		for _, f := range md.MediaName.Formats {
			n, err := strconv.ParseUint(f, 10, 7)
			if err != nil {
				continue
			}
			pt := uint8(n)
			enc, mapped := rtpmap[pt]
			switch {
			case !found && (enc == "pcmu/8000" || enc == "pcmu/8000/1" || (!mapped && pt == 0)):
				p.Codec, p.PayloadType, found = media.PCMU, pt, true
			case !found && (enc == "pcma/8000" || enc == "pcma/8000/1" || (!mapped && pt == 8)):
				p.Codec, p.PayloadType, found = media.PCMA, pt, true
			case enc == "telephone-event/8000" && p.DTMFPayloadType == 0:
				p.DTMFPayloadType = pt
			}
		}
		if !found {
			return Session{}, fmt.Errorf("%w: offered formats %v", ErrNotAcceptable, md.MediaName.Formats)
		}
		return Session{Params: p, Direction: dir}, nil
	}
	return Session{}, ErrNotAcceptable
}

var sdpVersion atomic.Uint64

// sdpBody writes our side of a session. codecs lists (codec, payload number)
// pairs in preference order; dtmfPT 0 leaves telephone-event out.
func sdpBody(local netip.AddrPort, codecs []media.Params, dtmfPT uint8, ptime int, dir Direction) []byte {
	ipver := "IP4"
	if local.Addr().Is6() {
		ipver = "IP6"
	}
	id := uint64(time.Now().UnixNano()) + sdpVersion.Add(1)
	var fmts, attrs strings.Builder
	for _, c := range codecs {
		fmt.Fprintf(&fmts, " %d", c.PayloadType)
		fmt.Fprintf(&attrs, "a=rtpmap:%d %s/8000\r\n", c.PayloadType, c.Codec)
	}
	if dtmfPT != 0 {
		fmt.Fprintf(&fmts, " %d", dtmfPT)
		fmt.Fprintf(&attrs, "a=rtpmap:%d telephone-event/8000\r\na=fmtp:%d 0-15\r\n", dtmfPT, dtmfPT)
	}
	if ptime == 0 {
		ptime = 20
	}
	return fmt.Appendf(nil, "v=0\r\no=hotline %d %d IN %s %s\r\ns=hotline\r\nc=IN %s %s\r\nt=0 0\r\nm=audio %d RTP/AVP%s\r\n%sa=ptime:%d\r\na=%s\r\n",
		id, id, ipver, local.Addr(), ipver, local.Addr(), local.Port(), fmts.String(), attrs.String(), ptime, dir)
}

// AnswerSDP answers an offer with the codec and payload numbers it chose.
func AnswerSDP(local netip.AddrPort, offer Session) []byte {
	return sdpBody(local, []media.Params{offer.Params}, offer.Params.DTMFPayloadType, offer.Params.PtimeMS, offer.Direction.answer())
}

// OfferSDP offers both G.711 laws, prefer first, with telephone-event 101
// (events 0-15: digits, * # and A-D, the ones we act on).
func OfferSDP(local netip.AddrPort, prefer media.Codec) []byte {
	codecs := []media.Params{{Codec: media.PCMU, PayloadType: 0}, {Codec: media.PCMA, PayloadType: 8}}
	if prefer == media.PCMA {
		codecs[0], codecs[1] = codecs[1], codecs[0]
	}
	return sdpBody(local, codecs, 101, 20, SendRecv)
}
