package media

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
)

// RTCP (RFC 3550 §6) runs on the odd port above each leg's RTP port. A
// reader goroutine per leg takes the peer's compound packets (RTCP is a few
// packets a minute, so parsing may allocate); the shard's slow clock sends
// ours. The RTP reader only feeds receptionStats.

// rtcpSession is a leg's RTCP socket and what the reports both ways say.
type rtcpSession struct {
	conn     *net.UDPConn
	done     chan struct{} // closed when the reader exits
	buf      []byte        // owned by the reader
	firstSeq uint16        // our stream's first sequence number: where the peer's count starts

	received, sent, dropped atomic.Uint64

	// nextReport is when the shard sends our next report; guarded by the
	// shard's mu, like the timeout fields.
	nextReport time.Time

	mu sync.Mutex
	// The peer's RTCP source, latched like RTP's (see follow).
	gen      uint64
	latched  netip.AddrPort
	peerSSRC uint32
	// From the peer's reports.
	lastSR     uint32    // middle 32 bits of the NTP time of its last SR
	lastSRAt   time.Time // when that SR arrived
	peerLost   int64
	peerLoss   float64
	peerJitter float64 // ms
	rtt        time.Duration
	bye        bool
	// For ours.
	srSent        [4]sentSR // our last SRs, to time the round trip exactly
	srNext        int
	epoch         uint64 // reception epoch the priors belong to
	expectedPrior int64  // at our last report, for the fraction lost (RFC 3550 A.3)
	receivedPrior int64
	sentAt        [2]uint64 // RTP packets we had sent at our last two reports
}

// sentSR is one SR we sent: its NTP time as the peer will echo it (LSR) and
// when we sent it.
type sentSR struct {
	lsr uint32
	at  time.Time
}

func (r *rtcpSession) init(conn *net.UDPConn, firstSeq uint16) {
	r.conn, r.firstSeq = conn, firstSeq
	r.done = make(chan struct{})
	r.buf = make([]byte, maxPacket)
}

// rtcpRemote is where the peer's SDP wants RTCP: a=rtcp, or the RTP port + 1.
func (p *Params) rtcpRemote() netip.AddrPort {
	if p.RTCPRemote.IsValid() {
		return p.RTCPRemote
	}
	if port := p.Remote.Port(); port != 0 && port != 65535 {
		return netip.AddrPortFrom(p.Remote.Addr(), port+1)
	}
	return netip.AddrPort{}
}

// acceptsRTCP is the rule of accepts for RTCP: the address the SDP names,
// or any port of the signalling IP.
func (p *Params) acceptsRTCP(src netip.AddrPort) bool {
	return src == p.rtcpRemote() || (p.SignalIP.IsValid() && src.Addr() == p.SignalIP)
}

// rtcpLoop is the leg's RTCP reader: it ends when the socket is closed.
func (l *Leg) rtcpLoop() {
	defer close(l.rtcp.done)
	readDatagrams(l.rtcp.conn, l.rtcp.buf, l.log, "rtcp", l.receiveRTCP)
}

// receiveRTCP handles one datagram on the RTCP port.
func (l *Leg) receiveRTCP(data []byte, src netip.AddrPort, now time.Time) {
	st := l.state.Load()
	src = unmap(src)
	if !st.negotiated || !st.params.acceptsRTCP(src) {
		l.rtcp.dropped.Add(1)
		return
	}
	c, err := parseRTCP(data)
	if err != nil {
		if l.rtcp.dropped.Add(1) == 1 {
			l.log.Debug("rtcp dropped", "source", src, "err", err)
		}
		return
	}
	rx := l.reception.snapshot()
	r := &l.rtcp
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.follow(src, c.sender, rx, st.gen) {
		r.dropped.Add(1)
		return
	}
	r.received.Add(1)
	if c.sr {
		r.lastSR, r.lastSRAt = uint32(c.ntp>>16), now
	}
	for i := range c.blocks {
		if c.blocks[i].SSRC == l.out.ssrc { // set before the readers start, never changed
			r.peerReport(&c.blocks[i], now)
		}
	}
	if c.bye {
		r.bye = true
		l.log.Debug("rtcp bye", "source", src)
	}
}

// follow latches the peer's RTCP source as the RTP latch does: the first
// valid packet locks its address; another port of the same IP takes over
// only with the peer's SSRC (a NAT rebinding: the SSRC of the RTP we
// receive, or of the RTCP locked so far); anything else is dropped.
// Renegotiated addresses start over.
func (r *rtcpSession) follow(src netip.AddrPort, ssrc uint32, rx receptionSnapshot, gen uint64) bool {
	switch {
	case r.gen != gen || !r.latched.IsValid():
		r.gen, r.latched, r.peerSSRC = gen, src, ssrc
		return true
	case src == r.latched:
		r.peerSSRC = ssrc
		return true
	}
	want := r.peerSSRC
	if rx.started {
		want = rx.ssrc
	}
	if src.Addr() != r.latched.Addr() || ssrc != want {
		return false
	}
	r.latched, r.peerSSRC = src, ssrc
	return true
}

// peerReport takes in the peer's report block about our stream.
func (r *rtcpSession) peerReport(b *rtcp.ReceptionReport, now time.Time) {
	lost := int64(b.TotalLost & 0xFFFFFF)
	if lost >= 1<<23 { // signed 24 bits: duplicates make it negative
		lost -= 1 << 24
	}
	r.peerLost = lost
	// The peer counts from the first packet of ours it got; ours started
	// at firstSeq, which is where its extended numbers start too.
	if expected := int64(b.LastSequenceNumber-uint32(r.firstSeq)) + 1; expected > 0 && expected < 1<<31 {
		r.peerLoss = 100 * float64(max(lost, 0)) / float64(expected)
	}
	r.peerJitter = ticksMS(b.Jitter)
	if b.LastSenderReport != 0 {
		if rtt, ok := r.roundTrip(b.LastSenderReport, b.Delay, now); ok {
			r.rtt = rtt
		}
	}
}

// roundTrip is RFC 3550 §6.4.1: arrival - LSR - DLSR. When LSR echoes one
// of our recent SRs, its send time is known to the nanosecond; otherwise
// the compact NTP arithmetic (1/65536 s) is used.
func (r *rtcpSession) roundTrip(lsr, dlsr uint32, now time.Time) (time.Duration, bool) {
	delay := time.Duration(dlsr) * time.Second / 65536
	for _, s := range r.srSent {
		if s.lsr == lsr && !s.at.IsZero() {
			rtt := now.Sub(s.at) - delay
			return rtt, rtt >= 0
		}
	}
	units := int32(ntpMiddle(now) - lsr - dlsr)
	if units < 0 {
		return 0, false
	}
	return time.Duration(units) * time.Second / 65536, true
}

// peerQuality fills the figures that come from the peer's reports.
func (r *rtcpSession) peerQuality(q *Quality) {
	q.ReportsReceived = r.received.Load()
	q.ReportsSent = r.sent.Load()
	q.RTCPDropped = r.dropped.Load()
	r.mu.Lock()
	defer r.mu.Unlock()
	q.PeerPacketsLost = r.peerLost
	q.PeerLossPercent = r.peerLoss
	q.PeerJitterMS = r.peerJitter
	q.RTTMS = float64(r.rtt) / float64(time.Millisecond)
	q.PeerLeft = r.bye
}

// closeRTCP says goodbye to the peer (a last report and a BYE), closes the
// socket and waits for the reader.
func (l *Leg) closeRTCP() error {
	l.sendReport(time.Now(), true)
	err := l.rtcp.conn.Close()
	<-l.rtcp.done
	return err
}

// compound is what hotline uses of one RTCP compound packet.
type compound struct {
	sender uint32 // SSRC of the SR or RR that opens it
	sr     bool
	ntp    uint64 // NTP time of the SR
	blocks []rtcp.ReceptionReport
	bye    bool // the sender said BYE
}

var (
	errRTCPTruncated = errors.New("rtcp: packet longer than the datagram")
	errRTCPPadding   = errors.New("rtcp: padding before the last packet")
	errRTCPFirst     = errors.New("rtcp: compound does not begin with SR or RR")
)

// parseRTCP checks a compound packet as RFC 3550 A.2 asks (version 2,
// opening with SR or RR, padding only on the last packet, lengths adding
// up to the datagram) and reads its SR, RR, SDES and BYE packets; others
// (APP, XR, feedback) are skipped.
func parseRTCP(data []byte) (compound, error) {
	var c compound
	for first := true; len(data) > 0; first = false {
		var h rtcp.Header
		if err := h.Unmarshal(data); err != nil {
			return c, fmt.Errorf("rtcp header: %w", err)
		}
		size := (int(h.Length) + 1) * 4
		if size > len(data) {
			return c, errRTCPTruncated
		}
		pkt := data[:size]
		data = data[size:]
		if h.Padding && len(data) > 0 {
			return c, errRTCPPadding
		}
		if first && h.Type != rtcp.TypeSenderReport && h.Type != rtcp.TypeReceiverReport {
			return c, errRTCPFirst
		}
		if err := c.add(h.Type, pkt, first); err != nil {
			return c, fmt.Errorf("rtcp %v: %w", h.Type, err)
		}
	}
	return c, nil
}

// add reads one packet of a compound.
func (c *compound) add(typ rtcp.PacketType, pkt []byte, first bool) error {
	switch typ {
	case rtcp.TypeSenderReport:
		var sr rtcp.SenderReport
		if err := sr.Unmarshal(pkt); err != nil {
			return err
		}
		if first {
			c.sender, c.sr, c.ntp = sr.SSRC, true, sr.NTPTime
		}
		c.blocks = append(c.blocks, sr.Reports...)
	case rtcp.TypeReceiverReport:
		var rr rtcp.ReceiverReport
		if err := rr.Unmarshal(pkt); err != nil {
			return err
		}
		if first {
			c.sender = rr.SSRC
		}
		c.blocks = append(c.blocks, rr.Reports...)
	case rtcp.TypeSourceDescription:
		var sd rtcp.SourceDescription
		return sd.Unmarshal(pkt) // checked, not used: the CNAME is the peer's business
	case rtcp.TypeGoodbye:
		var bye rtcp.Goodbye
		if err := bye.Unmarshal(pkt); err != nil {
			return err
		}
		for _, s := range bye.Sources {
			c.bye = c.bye || s == c.sender
		}
	}
	return nil
}

// ntpEpochOffset is the seconds from 1900 (NTP) to 1970 (Unix).
const ntpEpochOffset = 2208988800

// ntpTime is t as a 64-bit NTP timestamp.
func ntpTime(t time.Time) uint64 {
	secs := uint64(t.Unix() + ntpEpochOffset)
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return secs<<32 | frac
}

// ntpMiddle is the middle 32 bits of t's NTP timestamp (LSR, RFC 3550 §6.4.1).
func ntpMiddle(t time.Time) uint32 { return uint32(ntpTime(t) >> 16) }

// newCNAME is a random SDES CNAME for one run of the engine (RFC 7022).
func newCNAME() string {
	return fmt.Sprintf("%016x@hotline", rand.Uint64())
}
