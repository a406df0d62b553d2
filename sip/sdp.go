package sip

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/pion/sdp/v3"

	"github.com/hotline-pbx/hotline/media"
)

// SDP offer/answer (RFC 3264) for one audio stream of G.711 plus RFC 4733
// telephone-event. Parsing is pion/sdp's; what we send is short enough to
// write out directly. Every m= line of an offer is answered: the audio
// stream we take with our address, every other one refused with port 0.

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

// mirror is the direction that pairs with d on the other side of a stream:
// what we answer to an offered direction, and what we do when the peer's
// answer says d to our sendrecv offer.
func (d Direction) mirror() Direction {
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

// Session is what a parsed offer or answer tells us.
type Session struct {
	// Params is the audio stream we use: the peer's address, the first
	// codec in the peer's order that we support, its payload numbers.
	Params media.Params
	// Direction is the peer's direction attribute for that stream.
	Direction Direction
	// NullAddress is set when the peer gave c=0.0.0.0 (RFC 2543 hold): it
	// wants no media whatever the direction says.
	NullAddress bool
	// Origin is the peer's o= session id and version: an unchanged origin
	// in a re-INVITE is a session refresh, not a change (RFC 3264 §8).
	Origin string

	streams []mline // every m= line, for the answer
	audio   int     // index of the stream in Params
}

// mline is what answering needs of one offered m= line.
type mline struct {
	media, proto, format string
}

// LocalDirection is what we do on the stream: the mirror of the peer's
// direction, without sending when it gave a null address.
func (s Session) LocalDirection() Direction {
	d := s.Direction.mirror()
	if s.NullAddress {
		switch d {
		case SendRecv:
			return RecvOnly
		case SendOnly:
			return Inactive
		}
	}
	return d
}

// Held reports whether the peer does not want our media (sendonly,
// inactive or a null address): it put the call on hold.
func (s Session) Held() bool {
	d := s.LocalDirection()
	return d == RecvOnly || d == Inactive
}

// ParseSDP reads an offer or an answer: the first audio stream of body we
// can use and the peer's order of codecs (its payload numbers are kept).
func ParseSDP(body []byte) (Session, error) {
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		return Session{}, fmt.Errorf("%w: %v", ErrNotAcceptable, err)
	}
	s := Session{audio: -1, Origin: fmt.Sprintf("%d %d", sd.Origin.SessionID, sd.Origin.SessionVersion)}
	var firstErr error
	for i, md := range sd.MediaDescriptions {
		line := mline{media: md.MediaName.Media, proto: strings.Join(md.MediaName.Protos, "/"), format: "0"}
		if len(md.MediaName.Formats) > 0 {
			line.format = md.MediaName.Formats[0]
		}
		s.streams = append(s.streams, line)
		if s.audio >= 0 || md.MediaName.Media != "audio" || md.MediaName.Port.Value == 0 ||
			!strings.EqualFold(line.proto, "RTP/AVP") {
			continue
		}
		err := s.readAudio(&sd, md)
		if err == nil {
			s.audio = i
		} else if firstErr == nil {
			firstErr = err
		}
	}
	if s.audio < 0 {
		if firstErr != nil {
			return Session{}, firstErr
		}
		return Session{}, ErrNotAcceptable
	}
	return s, nil
}

// readAudio fills s from one RTP/AVP audio stream, or says why it is unusable.
func (s *Session) readAudio(sd *sdp.SessionDescription, md *sdp.MediaDescription) error {
	conn := md.ConnectionInformation
	if conn == nil {
		conn = sd.ConnectionInformation
	}
	if conn == nil || conn.Address == nil {
		return fmt.Errorf("%w: no connection address", ErrNotAcceptable)
	}
	host := conn.Address.Address
	if i := strings.IndexByte(host, '/'); i >= 0 { // multicast TTL suffix
		host = host[:i]
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%w: connection address %q", ErrNotAcceptable, host)
	}
	port := md.MediaName.Port.Value
	if port <= 0 || port > 65535 {
		return fmt.Errorf("%w: port %d", ErrNotAcceptable, port)
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
		case "rtcp": // RFC 3605: "port [IN IP4 address]"
			p.RTCPRemote = rtcpAddress(a.Value, ip)
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
		return fmt.Errorf("%w: offered formats %v", ErrNotAcceptable, md.MediaName.Formats)
	}
	s.Params, s.Direction, s.NullAddress = p, dir, ip.IsUnspecified()
	return nil
}

// rtcpAddress reads an a=rtcp value; zero when it is unreadable (the RTP
// port + 1 is then used).
func rtcpAddress(value string, media netip.Addr) netip.AddrPort {
	f := strings.Fields(value)
	if len(f) == 0 {
		return netip.AddrPort{}
	}
	port, err := strconv.ParseUint(f[0], 10, 16)
	if err != nil || port == 0 {
		return netip.AddrPort{}
	}
	ip := media
	if len(f) == 4 {
		if a, err := netip.ParseAddr(f[3]); err == nil {
			ip = a.Unmap()
		}
	}
	return netip.AddrPortFrom(ip, uint16(port))
}

// LocalSDP is our side of one dialog's SDP session. Its o= line keeps one
// session id for the dialog and moves the version on only when what we say
// changes (RFC 3264 §8), so peers can tell a refresh from a change.
type LocalSDP struct {
	addr netip.AddrPort

	mu      sync.Mutex
	id      uint64
	version uint64
	last    []byte // the body after the o= line, last sent
}

// NewLocalSDP starts a session for media at addr.
func NewLocalSDP(addr netip.AddrPort) *LocalSDP {
	return &LocalSDP{addr: addr, id: rand.Uint64N(1 << 62)}
}

// Answer answers offer: its codec and payload numbers for the stream we
// take, our direction mirrored from its own, every other m= line refused.
func (l *LocalSDP) Answer(offer Session) []byte {
	audio := l.audioLine([]media.Params{offer.Params}, offer.Params.DTMFPayloadType, offer.Params.PtimeMS, offer.LocalDirection())
	if len(offer.streams) == 0 { // built by hand rather than parsed
		return l.body(audio)
	}
	var b bytes.Buffer
	for i, m := range offer.streams {
		if i == offer.audio {
			b.Write(audio)
			continue
		}
		fmt.Fprintf(&b, "m=%s 0 %s %s\r\n", m.media, m.proto, m.format)
	}
	return l.body(b.Bytes())
}

// Offer offers both G.711 laws, prefer first, with telephone-event 101
// (events 0-15: digits, * # and A-D, the ones we act on).
func (l *LocalSDP) Offer(prefer media.Codec) []byte { return l.OfferDirection(prefer, SendRecv) }

// OfferDirection is Offer with a direction other than sendrecv (hold).
func (l *LocalSDP) OfferDirection(prefer media.Codec, dir Direction) []byte {
	codecs := []media.Params{{Codec: media.PCMU, PayloadType: 0}, {Codec: media.PCMA, PayloadType: 8}}
	if prefer == media.PCMA {
		codecs[0], codecs[1] = codecs[1], codecs[0]
	}
	return l.body(l.audioLine(codecs, 101, 20, dir))
}

// audioLine writes our m= line and its attributes. codecs are (codec,
// payload number) pairs in preference order; dtmfPT 0 leaves
// telephone-event out.
func (l *LocalSDP) audioLine(codecs []media.Params, dtmfPT uint8, ptime int, dir Direction) []byte {
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
	return fmt.Appendf(nil, "m=audio %d RTP/AVP%s\r\n%sa=ptime:%d\r\na=%s\r\n", l.addr.Port(), fmts.String(), attrs.String(), ptime, dir)
}

// body puts the session lines around the m= lines, with the version moved
// on if anything differs from what we sent last.
func (l *LocalSDP) body(mlines []byte) []byte {
	ipver := "IP4"
	if l.addr.Addr().Is6() {
		ipver = "IP6"
	}
	rest := fmt.Appendf(nil, "s=hotline\r\nc=IN %s %s\r\nt=0 0\r\n%s", ipver, l.addr.Addr(), mlines)
	l.mu.Lock()
	if !bytes.Equal(rest, l.last) {
		l.version++
		l.last = rest
	}
	version := l.version
	l.mu.Unlock()
	return fmt.Appendf(nil, "v=0\r\no=hotline %d %d IN %s %s\r\n%s", l.id, version, ipver, l.addr.Addr(), rest)
}

// AnswerSDP answers an offer from a one-off session (test phones).
func AnswerSDP(local netip.AddrPort, offer Session) []byte {
	return NewLocalSDP(local).Answer(offer)
}

// OfferSDP offers from a one-off session (test phones).
func OfferSDP(local netip.AddrPort, prefer media.Codec) []byte {
	return NewLocalSDP(local).Offer(prefer)
}
