package media

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Tap receives the audio a leg receives, decoded to 8 kHz linear PCM, one
// 20 ms frame at a time (see AddTap).
type Tap interface {
	WriteAudio(pcm []int16)
}

// Stats are the counters of one leg.
type Stats struct {
	PacketsIn, PacketsOut uint64 // accepted RTP packets received; packets sent
	BytesIn, BytesOut     uint64 // UDP payload bytes of the same packets
	DTMFEvents            uint64 // RFC 4733 digits received (one per event)
	DTMFDropped           uint64 // digits lost because DTMF() was full
	Early                 uint64 // packets received before SetParams, dropped
	Malformed             uint64 // not RTP version 2 or truncated, dropped
	UnknownPayload        uint64 // payload type not negotiated, dropped
	WrongSource           uint64 // from an address Params do not name, or not the locked one, dropped
	SendErrors            uint64 // failed socket writes
	LastReceived          time.Time
	// Source is the latched address of the peer; zero until locked.
	Source netip.AddrPort
}

// legState is an immutable snapshot of what the reader needs per packet;
// setters copy it, change it and swap the pointer.
type legState struct {
	params     Params
	negotiated bool
	gen        uint64  // counts changes of the accepted sources; restarts latching
	peer       *Leg    // the other leg of a bridge: events, and audio unless mixed
	bridge     *Bridge // the bridge peer belongs to
	epoch      uint64  // counts changes of peer; an event is forwarded only within the bridge it began in
	mixer      *Mixer  // the mix the leg's audio goes to, if any
	taps       []Tap   // consumers of the played-out audio
	buffered   bool    // the reader feeds the jitter buffer (taps or a mixer)
}

type legCounters struct {
	packetsIn, bytesIn, packetsOut, bytesOut atomic.Uint64
	dtmfEvents, dtmfDropped                  atomic.Uint64
	early, malformed, unknownPayload         atomic.Uint64
	wrongSource, sendErrors                  atomic.Uint64
	lastReceived                             atomic.Int64 // unix nanoseconds
	paramsAt                                 atomic.Int64 // unix nanoseconds of the last SetParams
}

// dtmfBuffer is how many digits DTMF() holds before new ones are dropped.
const dtmfBuffer = 32

// Leg is one RTP endpoint: a UDP socket, its reader goroutine and the
// outgoing stream towards one peer.
type Leg struct {
	engine *Engine
	name   string
	conn   *net.UDPConn
	port   int
	local  netip.AddrPort
	shard  *shard
	log    *slog.Logger

	stateMu sync.Mutex // serialises writers of state
	state   atomic.Pointer[legState]

	out outStream

	jobMu sync.Mutex // serialises starting and stopping jobs
	job   atomic.Pointer[job]

	dtmf  chan byte
	rx    receiver // owned by the reader goroutine
	stats legCounters

	// Clocked audio (audio.go): the jitter buffer the reader feeds while
	// the leg has taps or a mixer, and the frame the shard played last.
	jb       *jitterBuffer
	played   [frame20]int16
	playedMu sync.Mutex
	audioMu  sync.Mutex // serialises syncAudio
	inAudio  bool       // in the shard's audio set; guarded by audioMu

	reception receptionStats // of the peer's stream (RFC 3550 A.1, A.8), fed by the reader
	rtcp      rtcpSession    // the RTCP socket and the reports both ways

	timedOut        chan struct{} // closed once by the shard: no RTP for too long
	timeoutReported bool          // guarded by shard.mu
	shardSlot       int           // index in shard.legs, guarded by shard.mu

	closed     atomic.Bool
	closeOnce  sync.Once
	closeErr   error
	readerDone chan struct{}
}

func newLeg(e *Engine, name string, socks socketPair, port int, s *shard) *Leg {
	l := &Leg{
		engine:     e,
		name:       name,
		conn:       socks.rtp,
		port:       port,
		local:      netip.AddrPortFrom(e.advertised(), uint16(port)),
		shard:      s,
		log:        e.log.With("leg", name),
		dtmf:       make(chan byte, dtmfBuffer),
		timedOut:   make(chan struct{}),
		readerDone: make(chan struct{}),
	}
	l.state.Store(&legState{params: Params{PtimeMS: defaultPtimeMS}})
	l.jb = newJitterBuffer(PCMU)
	l.out.ssrc = rand.Uint32()
	l.out.nextSeq = uint16(rand.Uint32())
	l.out.nextTS = rand.Uint32()
	l.rx.init()
	l.rtcp.init(socks.rtcp, l.out.nextSeq)
	return l
}

// Name returns the name the leg was created with.
func (l *Leg) Name() string { return l.name }

// LocalAddr returns the address and port to put into SDP.
func (l *Leg) LocalAddr() netip.AddrPort { return l.local }

// SetParams applies an (re)negotiation: where to send, which sources to
// accept, direction, codec, payload numbers and ptime. The first call, and
// any that changes Remote or SignalIP, (re)starts source learning; until a
// source is locked, packets go to p.Remote. A refresh or hold with the same
// addresses keeps the locked source.
func (l *Leg) SetParams(p Params) {
	p = p.normalized()
	l.stateMu.Lock()
	defer l.stateMu.Unlock()
	st := *l.state.Load()
	relearn := !st.negotiated || !st.params.sameSource(&p)
	st.params, st.negotiated = p, true
	if relearn {
		st.gen++
	}

	l.out.mu.Lock()
	if relearn {
		l.out.dest, l.out.latched, l.out.gen = p.Remote, false, st.gen
	}
	l.out.sending = p.Direction.sends()
	l.out.mu.Unlock()
	l.jb.setCodec(p.Codec)

	// Before the state: the timeout check must never see a negotiated leg
	// without its baseline.
	l.stats.paramsAt.Store(time.Now().UnixNano())
	l.state.Store(&st)
}

// OnHold reports whether this side does not both send and receive on the
// leg (Params.Direction is not SendRecv).
func (l *Leg) OnHold() bool { return l.state.Load().params.Direction != SendRecv }

// MediaTimeout is closed, once, when the negotiated leg accepted no RTP for
// Config.Timeout (Config.HoldTimeout while OnHold) since the later of its
// last accepted packet and its last SetParams.
func (l *Leg) MediaTimeout() <-chan struct{} { return l.timedOut }

// Params returns the parameters last set (PtimeMS 0 reads back as 20).
func (l *Leg) Params() Params { return l.state.Load().params }

func (l *Leg) update(change func(*legState)) {
	l.stateMu.Lock()
	defer l.stateMu.Unlock()
	st := *l.state.Load()
	change(&st)
	l.state.Store(&st)
}

// DTMF returns the digits received as RFC 4733 events, one per event. The
// channel is never closed; digits arriving while it is full are dropped.
func (l *Leg) DTMF() <-chan byte { return l.dtmf }

// InjectDTMF reports digit ('0'-'9', '*', '#', 'A'-'D') on DTMF() as if it
// had been received, for digits signalled otherwise (SIP INFO).
func (l *Leg) InjectDTMF(digit byte) error {
	code, err := digitEvent(digit)
	if err != nil {
		return fmt.Errorf("media: leg %q: inject DTMF: %w", l.name, err)
	}
	l.reportDigit(dtmfDigits[code])
	return nil
}

// reportDigit hands one digit to DTMF(), or drops it when DTMF() is full.
func (l *Leg) reportDigit(digit byte) {
	l.stats.dtmfEvents.Add(1)
	select {
	case l.dtmf <- digit:
	default:
		l.stats.dtmfDropped.Add(1)
	}
}

// FlushDTMF discards the digits not read yet.
func (l *Leg) FlushDTMF() {
	for {
		select {
		case <-l.dtmf:
		default:
			return
		}
	}
}

// Stats returns the leg's counters.
func (l *Leg) Stats() Stats {
	c := &l.stats
	s := Stats{
		PacketsIn:      c.packetsIn.Load(),
		PacketsOut:     c.packetsOut.Load(),
		BytesIn:        c.bytesIn.Load(),
		BytesOut:       c.bytesOut.Load(),
		DTMFEvents:     c.dtmfEvents.Load(),
		DTMFDropped:    c.dtmfDropped.Load(),
		Early:          c.early.Load(),
		Malformed:      c.malformed.Load(),
		UnknownPayload: c.unknownPayload.Load(),
		WrongSource:    c.wrongSource.Load(),
		SendErrors:     c.sendErrors.Load(),
	}
	if ns := c.lastReceived.Load(); ns != 0 {
		s.LastReceived = time.Unix(0, ns)
	}
	l.out.mu.Lock()
	if l.out.latched {
		s.Source = l.out.dest
	}
	l.out.mu.Unlock()
	return s
}

// Close stops playback, undoes a bridge, sends an RTCP BYE (with a last
// report), closes the sockets, waits for the readers to exit and gives the
// ports back. It is idempotent.
func (l *Leg) Close() error {
	l.closeOnce.Do(func() {
		l.closed.Store(true)
		l.detach()
		l.syncAudio()
		l.stopJob()
		l.shard.removeLeg(l)
		l.closeErr = errors.Join(l.closeRTCP(), l.conn.Close())
		<-l.readerDone
		l.engine.forget(l)
		l.log.Debug("rtp leg closed", "local", l.local)
	})
	return l.closeErr
}

// send writes one packet to dest and counts it.
func (l *Leg) send(pkt []byte, dest netip.AddrPort) {
	n, err := l.conn.WriteToUDPAddrPort(pkt, dest)
	if err != nil {
		if l.stats.sendErrors.Add(1) == 1 {
			l.log.Warn("rtp send failed", "dest", dest, "err", err)
		}
		return
	}
	l.stats.packetsOut.Add(1)
	l.stats.bytesOut.Add(uint64(n))
}
