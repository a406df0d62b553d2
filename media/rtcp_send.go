package media

import (
	"math/rand/v2"
	"time"

	"github.com/pion/rtcp"
)

// checkInterval is the period of a shard's slow clock: RTP timeouts need a
// second's resolution, RTCP reports a quarter of their interval.
func checkInterval(rtcpEvery time.Duration) time.Duration {
	if rtcpEvery <= 0 {
		return timeoutCheckInterval
	}
	return min(timeoutCheckInterval, rtcpEvery/4)
}

// checkLegs is the shard's slow tick: RTP timeouts and RTCP reports, with
// no timer per leg.
func (s *shard) checkLegs(now time.Time) {
	if s.timeouts.enabled() {
		s.checkTimeouts(now)
	}
	s.sendReports(now)
}

// sendReports sends the RTCP reports that are due. Each leg reports every
// RTCPInterval randomised by ±50% (RFC 3550 §6.2), the first after half of
// that, so the reports of legs set up together spread out.
func (s *shard) sendReports(now time.Time) {
	s.mu.Lock()
	due := s.reportsDue[:0]
	for _, l := range s.legs {
		every := l.engine.cfg.RTCPInterval
		switch {
		case l.rtcp.nextReport.IsZero():
			l.rtcp.nextReport = now.Add(randomised(every / 2))
		case !now.Before(l.rtcp.nextReport):
			l.rtcp.nextReport = now.Add(randomised(every))
			due = append(due, l)
		}
	}
	s.mu.Unlock()
	for i, l := range due { // without the lock: NewLeg and Close need it
		l.sendReport(now, false)
		due[i] = nil
	}
	s.reportsDue = due[:0]
}

// randomised returns d scaled by a random factor in [0.5, 1.5).
func randomised(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.5 + rand.Float64()))
}

// sendReport sends our RTCP compound packet: an SR if we sent RTP since the
// report before last, else an RR; a report block about the peer's stream
// once it sent some; our SDES CNAME; and, when leaving, a BYE. A leg that
// has neither sent nor received RTP has nothing to report and stays quiet.
func (l *Leg) sendReport(now time.Time, bye bool) {
	st := l.state.Load()
	if !st.negotiated {
		return
	}
	rx := l.reception.snapshot()
	sent := l.stats.packetsOut.Load()
	if !rx.started && sent == 0 {
		return
	}
	octets := l.stats.bytesOut.Load() - rtpHeaderSize*sent // our packets all have the plain header
	rtpNow := l.out.clockAt(now)
	ssrc := l.out.ssrc

	r := &l.rtcp
	r.mu.Lock()
	dest := r.latched
	if !dest.IsValid() || r.gen != st.gen {
		dest = st.params.rtcpRemote()
	}
	if !sendable(dest) {
		r.mu.Unlock()
		return
	}
	var blocks []rtcp.ReceptionReport
	if rx.started {
		blocks = []rtcp.ReceptionReport{r.reportBlock(rx, now)}
	}
	var pkts []rtcp.Packet
	if sent != r.sentAt[0] { // sent since the report before last (RFC 3550 §6.4)
		ntp := ntpTime(now)
		r.srSent[r.srNext] = sentSR{lsr: uint32(ntp >> 16), at: now}
		r.srNext = (r.srNext + 1) % len(r.srSent)
		pkts = append(pkts, &rtcp.SenderReport{SSRC: ssrc, NTPTime: ntp, RTPTime: rtpNow,
			PacketCount: uint32(sent), OctetCount: uint32(octets), Reports: blocks})
	} else {
		pkts = append(pkts, &rtcp.ReceiverReport{SSRC: ssrc, Reports: blocks})
	}
	r.sentAt = [2]uint64{r.sentAt[1], sent}
	r.mu.Unlock()

	pkts = append(pkts, &rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{
		Source: ssrc, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: l.engine.cname}},
	}}})
	if bye {
		pkts = append(pkts, &rtcp.Goodbye{Sources: []uint32{ssrc}})
	}
	data, err := rtcp.Marshal(pkts)
	if err != nil {
		l.log.Warn("rtcp report not built", "err", err)
		return
	}
	if _, err := l.rtcp.conn.WriteToUDPAddrPort(data, dest); err != nil {
		l.log.Debug("rtcp send failed", "dest", dest, "err", err)
		return
	}
	r.sent.Add(1)
}

// reportBlock is RFC 3550 A.3 for the peer's stream: the fraction lost
// since our last report, the cumulative loss (signed 24 bits), and the
// echo of its last SR (LSR, DLSR) so that it can time the round trip.
func (r *rtcpSession) reportBlock(rx receptionSnapshot, now time.Time) rtcp.ReceptionReport {
	if rx.epoch != r.epoch { // the peer restarted its stream: so do the intervals
		r.epoch, r.expectedPrior, r.receivedPrior = rx.epoch, 0, 0
	}
	expectedInterval := rx.expected - r.expectedPrior
	lostInterval := expectedInterval - (rx.received - r.receivedPrior)
	r.expectedPrior, r.receivedPrior = rx.expected, rx.received
	var fraction uint8
	if expectedInterval > 0 && lostInterval > 0 {
		fraction = uint8(min(lostInterval<<8/expectedInterval, 255))
	}
	lost := min(max(rx.expected-rx.received, -1<<23), 1<<23-1)
	b := rtcp.ReceptionReport{
		SSRC:               rx.ssrc,
		FractionLost:       fraction,
		TotalLost:          uint32(lost) & 0xFFFFFF,
		LastSequenceNumber: rx.extMax,
		Jitter:             rx.jitter,
	}
	if !r.lastSRAt.IsZero() {
		b.LastSenderReport = r.lastSR
		b.Delay = uint32(min(now.Sub(r.lastSRAt).Seconds()*65536, 1<<32-1))
	}
	return b
}

// clockAt is the RTP timestamp of our stream at now, the instant an SR
// pairs with its NTP time: the clock reference plus the time since.
func (o *outStream) clockAt(now time.Time) uint32 {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.refTime.IsZero() {
		return o.nextTS
	}
	return o.refTS + uint32(int64(max(now.Sub(o.refTime), 0)/samplePeriod))
}
