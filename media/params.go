package media

import (
	"fmt"
	"net/netip"
)

// Params is what SDP negotiation decided for a leg.
type Params struct {
	// Remote is the peer's address from its SDP c= and m= lines. An
	// unspecified IP (c=0.0.0.0, old-style hold) is never sent to.
	Remote netip.AddrPort
	// SignalIP is the IP the peer's SIP signalling for this dialog came
	// from. When valid, RTP from that IP (any port: a phone behind NAT) is
	// accepted besides RTP from Remote. Nothing else is.
	SignalIP netip.Addr
	// RTCPRemote is the peer's RTCP address from its SDP a=rtcp attribute;
	// zero means Remote's port + 1. RTCP is accepted from it or, like RTP,
	// from any port of SignalIP.
	RTCPRemote netip.AddrPort
	// Direction is what this side does on the leg: the SIP layer maps the
	// peer's SDP to it (peer sendonly: RecvOnly; peer inactive or
	// c=0.0.0.0: Inactive).
	Direction Direction
	// Codec is the audio codec both sides agreed on.
	Codec Codec
	// PayloadType is the number the peer uses for Codec (normally 0 for
	// PCMU and 8 for PCMA, but whatever the peer said is accepted).
	PayloadType uint8
	// DTMFPayloadType is the telephone-event payload number; 0 means RFC
	// 4733 events were not negotiated.
	DTMFPayloadType uint8
	// PtimeMS is the audio per outgoing packet: 20 or 30 (0 means 20;
	// values outside 10-120 are treated as 20).
	PtimeMS int
}

const (
	defaultPtimeMS = 20
	minPtimeMS     = 10
	maxPtimeMS     = 120
)

func (p Params) normalized() Params {
	if p.PtimeMS < minPtimeMS || p.PtimeMS > maxPtimeMS {
		p.PtimeMS = defaultPtimeMS
	}
	p.Remote = unmap(p.Remote)
	p.RTCPRemote = unmap(p.RTCPRemote)
	p.SignalIP = p.SignalIP.Unmap()
	return p
}

// frameSamples is the number of samples (= G.711 bytes) in one packet.
func (p *Params) frameSamples() int { return p.PtimeMS * SampleRate / 1000 }

// accepts reports whether RTP from src may be the peer's: the address its
// SDP names, or any port on the IP its signalling came from.
func (p *Params) accepts(src netip.AddrPort) bool {
	return src == p.Remote || (p.SignalIP.IsValid() && src.Addr() == p.SignalIP)
}

// sameSource reports whether p and q accept the same sources, so that a
// source latched under one stays right under the other.
func (p *Params) sameSource(q *Params) bool {
	return p.Remote == q.Remote && p.SignalIP == q.SignalIP && p.RTCPRemote == q.RTCPRemote
}

// unmap turns an IPv4-mapped IPv6 address into plain IPv4.
func unmap(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// sendable reports whether dest is an address packets can go to: not
// unset, not c=0.0.0.0 (hold) and not port 0 (a refused stream).
func sendable(dest netip.AddrPort) bool {
	return dest.IsValid() && !dest.Addr().IsUnspecified() && dest.Port() != 0
}

// Direction is what this side does with a leg's media, as in SDP.
type Direction uint8

// The directions. The zero value is SendRecv.
const (
	SendRecv Direction = iota
	SendOnly
	RecvOnly
	Inactive
)

// String returns the SDP attribute name ("sendrecv", ...).
func (d Direction) String() string {
	switch d {
	case SendRecv:
		return "sendrecv"
	case SendOnly:
		return "sendonly"
	case RecvOnly:
		return "recvonly"
	case Inactive:
		return "inactive"
	}
	return fmt.Sprintf("Direction(%d)", uint8(d))
}

// sends reports whether this side sends in direction d.
func (d Direction) sends() bool { return d == SendRecv || d == SendOnly }

// dtmfBlocked returns why RFC 4733 events cannot be sent under p, or nil.
func (p *Params) dtmfBlocked() error {
	if p.DTMFPayloadType == 0 {
		return ErrNoDTMF
	}
	if !p.Direction.sends() {
		return ErrNotSending
	}
	return nil
}
