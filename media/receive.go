package media

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/pion/rtp"
)

// maxPacket is the size of every packet buffer. G.711 packets are a few
// hundred bytes; anything longer is truncated and treated as such.
const maxPacket = 2048

// rtpHeaderSize is the fixed RTP header this package sends (no CSRC, no
// extensions).
const rtpHeaderSize = 12

// receiver is the state of a leg's reader goroutine; nothing else touches it.
type receiver struct {
	buf    [maxPacket]byte // datagram as read
	out    [maxPacket]byte // packet forwarded to the bridged peer
	pkt    rtp.Packet
	latch  latch
	events eventLog
}

func (r *receiver) init() {
	// Room for the most CSRCs and some extensions, so that parsing never
	// allocates on the hot path.
	r.pkt.CSRC = make([]uint32, 0, 15)
	r.pkt.Extensions = make([]rtp.Extension, 0, 16)
}

// readLoop is the leg's RTP reader goroutine: it ends when the socket is closed.
func (l *Leg) readLoop() {
	defer close(l.readerDone)
	readDatagrams(l.conn, l.rx.buf[:], l.log, "rtp", l.receive)
}

// readDatagrams reads conn into buf and hands each datagram to handle until
// the socket is closed. It allocates nothing per datagram.
func readDatagrams(conn *net.UDPConn, buf []byte, log *slog.Logger, what string, handle func([]byte, netip.AddrPort, time.Time)) {
	failures := 0
	for {
		n, src, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			failures++
			if failures == 1 {
				log.Warn(what+" read failed", "err", err)
			}
			if failures > 100 { // do not spin on an error that persists
				time.Sleep(time.Millisecond)
			}
			continue
		}
		failures = 0
		handle(buf[:n], src, time.Now())
	}
}

// receive handles one datagram from src. It runs on the reader goroutine
// (tests and benchmarks call it directly) and allocates nothing.
func (l *Leg) receive(data []byte, src netip.AddrPort, now time.Time) {
	st := l.state.Load()
	if !st.negotiated {
		l.stats.early.Add(1)
		return
	}
	// Strangers first: their packets are not even parsed.
	src = unmap(src)
	if !st.params.accepts(src) {
		l.stats.wrongSource.Add(1)
		return
	}
	// Cheap checks first: pion's errors allocate, garbage should not.
	if len(data) < rtpHeaderSize || len(data) > maxPacket || data[0]>>6 != 2 {
		l.stats.malformed.Add(1)
		return
	}
	pkt := &l.rx.pkt
	if err := pkt.Unmarshal(data); err != nil {
		l.stats.malformed.Add(1)
		return
	}
	isEvent := st.params.DTMFPayloadType != 0 && pkt.PayloadType == st.params.DTMFPayloadType
	if !isEvent && pkt.PayloadType != st.params.PayloadType {
		l.stats.unknownPayload.Add(1)
		return
	}
	switch l.rx.latch.observe(src, pkt.SSRC, pkt.SequenceNumber, st.gen) {
	case latchReject:
		l.stats.wrongSource.Add(1)
		return
	case latchLockNow:
		l.lockSource(src, st)
	}
	l.stats.packetsIn.Add(1)
	l.stats.bytesIn.Add(uint64(len(data)))
	l.stats.lastReceived.Store(now.UnixNano())
	l.reception.observe(pkt.SSRC, pkt.SequenceNumber, pkt.Timestamp, !isEvent, now)

	forward := st.peer != nil && st.mixer == nil
	if isEvent {
		forward = l.receiveEvent(pkt, st)
	} else if st.buffered {
		l.jb.put(pkt.SSRC, pkt.Timestamp, pkt.Payload, now)
	}
	if forward {
		st.peer.forwardFrom(st.params.Codec, pkt, isEvent, now, l.rx.out[:])
	}
}

// lockSource makes src the destination of everything sent on l, unless a
// newer negotiation happened meanwhile.
func (l *Leg) lockSource(src netip.AddrPort, st *legState) {
	l.out.mu.Lock()
	current := l.out.gen == st.gen
	if current {
		l.out.dest, l.out.latched = src, true
	}
	l.out.mu.Unlock()
	switch {
	case !current:
	case src != st.params.Remote: // NAT between us and the peer: worth knowing
		l.log.Info("rtp source latched", "source", src, "sdp", st.params.Remote)
	default:
		l.log.Debug("rtp source latched", "source", src)
	}
}

// receiveEvent reports the first packet of each RFC 4733 DTMF event and
// tells whether the packet may be forwarded: only if its event began while
// the current bridge already stood, so the tail of the digit that chose the
// queue never reaches the agent.
func (l *Leg) receiveEvent(pkt *rtp.Packet, st *legState) bool {
	ev, ok := parseTelephoneEvent(pkt.Payload)
	if !ok {
		return false
	}
	var epoch uint64 // 0: the event began unbridged
	if st.peer != nil {
		epoch = st.epoch
	}
	began, isNew := l.rx.events.observe(eventKey{ssrc: pkt.SSRC, timestamp: pkt.Timestamp}, epoch)
	if digit, isDigit := eventDigit(ev.code); isNew && isDigit {
		l.reportDigit(digit)
	}
	return st.peer != nil && began == st.epoch
}

// forwardFrom sends a packet received on the bridged peer (whose codec is
// from) out of l, rewritten into l's stream. buf belongs to the caller's
// reader goroutine.
func (l *Leg) forwardFrom(from Codec, pkt *rtp.Packet, isEvent bool, now time.Time, buf []byte) {
	st := l.state.Load()
	if !st.negotiated || l.job.Load() != nil {
		return // a prompt or DTMF being sent owns l's stream
	}
	pt, samples := st.params.PayloadType, uint32(len(pkt.Payload))
	if isEvent {
		if st.params.DTMFPayloadType == 0 {
			return
		}
		pt, samples = st.params.DTMFPayloadType, 0
	} else if samples == 0 {
		return
	}
	if rtpHeaderSize+len(pkt.Payload) > len(buf) {
		return
	}

	o := &l.out
	o.mu.Lock()
	if !o.open() {
		o.mu.Unlock()
		return
	}
	dest := o.dest
	seq, ts, marker := o.forward(pkt.SSRC, pkt.SequenceNumber, pkt.Timestamp, now, samples)
	ssrc := o.ssrc
	o.mu.Unlock()

	n := putHeader(buf, marker || pkt.Marker, pt, seq, ts, ssrc)
	payload := buf[n : n+len(pkt.Payload)]
	if isEvent {
		copy(payload, pkt.Payload)
	} else {
		TranscodeFrame(from, st.params.Codec, payload, pkt.Payload)
	}
	l.send(buf[:n+len(payload)], dest)
}

// putHeader writes a plain RTP header (no CSRC, no extensions) into buf.
func putHeader(buf []byte, marker bool, pt uint8, seq uint16, ts, ssrc uint32) int {
	h := rtp.Header{
		Version:        2,
		Marker:         marker,
		PayloadType:    pt,
		SequenceNumber: seq,
		Timestamp:      ts,
		SSRC:           ssrc,
	}
	n, err := h.MarshalTo(buf)
	if err != nil { // buf is always maxPacket long
		return 0
	}
	return n
}
