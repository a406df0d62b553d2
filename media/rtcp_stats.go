package media

import (
	"sync"
	"time"
)

// RFC 3550 A.1 constants.
const (
	maxDropout  = 3000 // a jump ahead by less is loss, not a restart
	maxMisorder = 100  // a step back by less is reordering, not a restart
	seqMod      = 1 << 16
)

// receptionStats are the receive statistics of the peer's stream: RFC 3550
// A.1 (sequence numbers, wrap, restart), A.3 (expected and lost) and A.8
// (interarrival jitter). The reader goroutine feeds every accepted packet;
// the shard (reports) and Quality read them. The lock is never contended
// per packet (readers come every few seconds), so a packet pays an
// uncontended lock and a few integer operations, and allocates nothing.
type receptionStats struct {
	mu sync.Mutex

	started bool
	epoch   uint64 // counts source restarts (a new SSRC, a sequence restart)
	ssrc    uint32
	maxSeq  uint16
	cycles  uint32 // sequence wraps, shifted left 16
	baseSeq uint32
	badSeq  uint32
	recv    uint32 // packets counted since the epoch began

	// Totals of earlier epochs, so that a leg's figures cover its whole call.
	priorExpected, priorReceived int64

	haveTransit bool
	transit     uint32 // relative transit time of the last audio packet, timestamp units
	jitter      uint32 // interarrival jitter in timestamp units, times 16 (A.8)
}

// receptionSnapshot is what a report and Quality need, read at once.
type receptionSnapshot struct {
	started  bool
	epoch    uint64
	ssrc     uint32
	extMax   uint32 // extended highest sequence number received
	expected int64  // in this epoch
	received int64  // in this epoch
	jitter   uint32 // timestamp units

	totalExpected, totalReceived int64
}

// rtpTicks is a time in RTP timestamp units of our codecs (8 kHz).
func rtpTicks(t time.Time) uint32 { return uint32(t.UnixNano() / int64(samplePeriod)) }

// observe counts one accepted packet arriving at now. audio is false for
// RFC 4733 events, whose timestamps stand still and say nothing of jitter.
func (s *receptionStats) observe(ssrc uint32, seq uint16, ts uint32, audio bool, now time.Time) {
	s.mu.Lock()
	switch {
	case !s.started || ssrc != s.ssrc:
		s.restart(ssrc, seq)
	default:
		s.updateSeq(seq)
	}
	if audio {
		arrival := rtpTicks(now)
		transit := arrival - ts
		if s.haveTransit {
			d := int32(transit - s.transit)
			if d < 0 {
				d = -d
			}
			s.jitter += uint32(d) - ((s.jitter + 8) >> 4)
		}
		s.transit, s.haveTransit = transit, true
	}
	s.mu.Unlock()
}

// restart begins a new epoch at seq, keeping the totals of the last one.
// The source was validated already (the latch wants consecutive packets),
// so there is no probation: this packet counts.
func (s *receptionStats) restart(ssrc uint32, seq uint16) {
	if s.started {
		s.priorExpected += s.expectedLocked()
		s.priorReceived += int64(s.recv)
		s.epoch++
	}
	s.started, s.ssrc = true, ssrc
	s.initSeq(seq)
	s.recv = 1
	s.haveTransit = false
}

func (s *receptionStats) initSeq(seq uint16) {
	s.baseSeq = uint32(seq)
	s.maxSeq = seq
	s.badSeq = seqMod + 1 // so that seq == badSeq is false
	s.cycles = 0
}

// updateSeq is RFC 3550 A.1 update_seq without probation.
func (s *receptionStats) updateSeq(seq uint16) {
	udelta := seq - s.maxSeq
	switch {
	case udelta < maxDropout: // in order, with a permissible gap
		if seq < s.maxSeq {
			s.cycles += seqMod
		}
		s.maxSeq = seq
	case uint32(udelta) <= seqMod-maxMisorder: // a very large jump
		if uint32(seq) != s.badSeq {
			s.badSeq = (uint32(seq) + 1) & (seqMod - 1)
			return // not counted: one stray packet
		}
		// Two sequential packets: the other side restarted without
		// telling us; start a new epoch.
		s.priorExpected += s.expectedLocked()
		s.priorReceived += int64(s.recv)
		s.epoch++
		s.initSeq(seq)
		s.recv = 0
	default:
		// duplicate or reordered: counted, max unchanged
	}
	s.recv++
}

func (s *receptionStats) expectedLocked() int64 {
	return int64(s.cycles+uint32(s.maxSeq)) - int64(s.baseSeq) + 1
}

func (s *receptionStats) snapshot() receptionSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		return receptionSnapshot{}
	}
	expected := s.expectedLocked()
	return receptionSnapshot{
		started:       true,
		epoch:         s.epoch,
		ssrc:          s.ssrc,
		extMax:        s.cycles + uint32(s.maxSeq),
		expected:      expected,
		received:      int64(s.recv),
		jitter:        s.jitter >> 4,
		totalExpected: s.priorExpected + expected,
		totalReceived: s.priorReceived + int64(s.recv),
	}
}

// Quality is what a leg knows of its audio: how the peer's stream reaches
// us (our receive statistics, RFC 3550 A.1, A.3, A.8) and how ours reaches
// the peer (its RTCP reports about our stream, and the round trip they
// measure). Figures from the peer are zero until its first report.
type Quality struct {
	// The peer's stream as we receive it, over the whole leg.
	PacketsReceived int64   // RTP packets accepted (duplicates included, as RFC 3550 counts)
	PacketsExpected int64   // by sequence numbers, from the first to the highest received
	PacketsLost     int64   // expected - received, never negative
	LossPercent     float64 // PacketsLost / PacketsExpected, in percent
	Jitter          uint32  // interarrival jitter, RTP timestamp units (8 kHz)
	JitterMS        float64 // the same in milliseconds

	// Our stream as the peer receives it, from its last report.
	PeerPacketsLost int64   // cumulative, as reported
	PeerLossPercent float64 // of what we sent up to the highest packet it reports
	PeerJitterMS    float64 // interarrival jitter it measured
	RTTMS           float64 // round-trip time of the last report that allows one (LSR/DLSR)

	ReportsReceived uint64 // RTCP packets accepted from the peer
	ReportsSent     uint64 // RTCP packets we sent
	RTCPDropped     uint64 // RTCP from an address not accepted, or malformed
	PeerLeft        bool   // the peer sent an RTCP BYE
}

// Quality returns the leg's figures so far; they stay readable after Close.
func (l *Leg) Quality() Quality {
	r := l.reception.snapshot()
	q := Quality{
		PacketsReceived: r.totalReceived,
		PacketsExpected: r.totalExpected,
		PacketsLost:     max(r.totalExpected-r.totalReceived, 0),
		Jitter:          r.jitter,
		JitterMS:        ticksMS(r.jitter),
	}
	if r.totalExpected > 0 {
		q.LossPercent = 100 * float64(q.PacketsLost) / float64(r.totalExpected)
	}
	l.rtcp.peerQuality(&q)
	return q
}

// ticksMS converts RTP timestamp units of our 8 kHz codecs to milliseconds.
func ticksMS(ticks uint32) float64 { return float64(ticks) * 1000 / SampleRate }
