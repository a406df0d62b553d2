package media

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNoPorts is returned by NewLeg when every RTP port of the range is taken.
var ErrNoPorts = errors.New("media: no free RTP port")

// ErrClosed is returned when using a closed Engine or Leg.
var ErrClosed = errors.New("media: closed")

const (
	defaultPortQuarantine = 10 * time.Second
	defaultRTCPInterval   = 5 * time.Second
)

// Config configures an Engine.
type Config struct {
	// IP is the address RTP sockets bind to and, unless Advertise is set,
	// the one that goes into SDP.
	IP netip.Addr
	// Advertise, when set, is the address that goes into SDP (LocalAddr)
	// for a host behind 1:1 NAT (clouds); IP may then be unspecified
	// (0.0.0.0 or ::).
	Advertise netip.Addr
	// PortMin and PortMax are an inclusive range. Legs take even ports p
	// for RTP with p+1, for RTCP, also in the range.
	PortMin, PortMax int
	// PortQuarantine is how long a released port pair rests before another
	// leg gets it, so that late packets of one call never reach the next;
	// 0 means 10 s. When no rested pair is left, the one released longest
	// ago is taken early rather than refusing the leg.
	PortQuarantine time.Duration
	// RTCPInterval is the mean time between the RTCP reports a leg sends,
	// each randomised by ±50% (RFC 3550 §6.2); 0 means 5 s.
	RTCPInterval time.Duration
	// Shards is the number of clock workers; 0 means runtime.GOMAXPROCS(0).
	Shards int
	// Timeout ends a negotiated leg's wait for RTP: MediaTimeout is closed
	// after this long without an accepted packet. HoldTimeout replaces it
	// while the leg is on hold (a held peer often sends nothing). 0
	// disables either.
	Timeout, HoldTimeout time.Duration
	// Logger receives leg events; nil discards them.
	Logger *slog.Logger
}

// Engine owns the RTP port pool and the shard workers that legs share.
type Engine struct {
	cfg    Config
	log    *slog.Logger
	pool   portPool
	shards []*shard

	nextShard   atomic.Uint64
	nextJobID   atomic.Uint64
	cname       string // RTCP SDES CNAME of every leg (RFC 7022: random per run)
	warnedEarly atomic.Bool

	mu     sync.Mutex
	legs   map[*Leg]struct{}
	closed bool
}

// NewEngine validates cfg and starts the shard workers.
func NewEngine(cfg Config) (*Engine, error) {
	if !cfg.IP.IsValid() {
		return nil, errors.New("media: config: IP is not set")
	}
	if cfg.Advertise.IsValid() && cfg.Advertise.IsUnspecified() {
		return nil, fmt.Errorf("media: config: advertised address %v is unspecified; set the address peers reach this host at", cfg.Advertise)
	}
	if cfg.IP.IsUnspecified() && !cfg.Advertise.IsValid() { // it would go into SDP, where 0.0.0.0 means hold
		return nil, fmt.Errorf("media: config: IP %v is unspecified and no address is advertised; set the address peers reach this host at", cfg.IP)
	}
	if cfg.PortMin < 1 || cfg.PortMax > 65535 || cfg.PortMin > cfg.PortMax {
		return nil, fmt.Errorf("media: config: port range %d-%d is not within 1-65535", cfg.PortMin, cfg.PortMax)
	}
	if cfg.Shards < 0 {
		return nil, fmt.Errorf("media: config: shards %d is negative", cfg.Shards)
	}
	if cfg.Timeout < 0 || cfg.HoldTimeout < 0 {
		return nil, fmt.Errorf("media: config: RTP timeouts %v and %v: negative", cfg.Timeout, cfg.HoldTimeout)
	}
	if cfg.PortQuarantine < 0 || cfg.RTCPInterval < 0 {
		return nil, fmt.Errorf("media: config: port quarantine %v or RTCP interval %v is negative", cfg.PortQuarantine, cfg.RTCPInterval)
	}
	if cfg.PortQuarantine == 0 {
		cfg.PortQuarantine = defaultPortQuarantine
	}
	if cfg.RTCPInterval == 0 {
		cfg.RTCPInterval = defaultRTCPInterval
	}
	if cfg.Shards == 0 {
		cfg.Shards = runtime.GOMAXPROCS(0)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{cfg: cfg, log: logger, legs: make(map[*Leg]struct{}), cname: newCNAME()}
	if err := e.pool.init(cfg.PortMin, cfg.PortMax, cfg.PortQuarantine); err != nil {
		return nil, err
	}
	e.nextJobID.Store(writerForward) // job ids start above the reserved writer ids
	for range cfg.Shards {
		s := newShard(timeouts{active: cfg.Timeout, held: cfg.HoldTimeout})
		s.checkEvery = checkInterval(cfg.RTCPInterval)
		e.shards = append(e.shards, s)
		go s.run()
	}
	return e, nil
}

// LegsInUse returns the number of open legs.
func (e *Engine) LegsInUse() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.legs)
}

// Close closes every leg and stops the shard workers.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	legs := make([]*Leg, 0, len(e.legs))
	for l := range e.legs {
		legs = append(legs, l)
	}
	e.mu.Unlock()

	var errs []error
	for _, l := range legs {
		errs = append(errs, l.Close())
	}
	for _, s := range e.shards {
		s.stop()
	}
	return errors.Join(errs...)
}

// NewLeg binds a random free pair of ports of the pool, RTP on the even one
// and RTCP on the odd one (skipping pairs of which other programs hold
// either), starts the leg's reader goroutines and assigns it to a shard.
func (e *Engine) NewLeg(name string) (*Leg, error) { return e.NewLegNear(name, nil) }

// NewLegNear is NewLeg on near's shard: the legs of one call (caller, agent,
// supervisor) share a shard, so their audio is played out, mixed and
// recorded in the same tick.
func (e *Engine) NewLegNear(name string, near *Leg) (*Leg, error) {
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("media: leg %q: engine: %w", name, ErrClosed)
	}
	socks, port, err := e.pool.acquire(e.bindPair)
	if err != nil {
		return nil, fmt.Errorf("media: leg %q: %w", name, err)
	}
	if e.pool.takenEarly() > 0 && e.warnedEarly.CompareAndSwap(false, true) {
		e.log.Warn("rtp port pair reused before its quarantine ended: the port range is small for this call rate", "quarantine", e.cfg.PortQuarantine)
	}
	shard := e.pickShard(near)
	l := newLeg(e, name, socks, port, shard)
	shard.addLeg(l) // before Engine.Close can see it, so that its Close undoes this

	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		shard.removeLeg(l)
		socks.close()
		e.pool.giveBack(port)
		return nil, fmt.Errorf("media: leg %q: engine: %w", name, ErrClosed)
	}
	e.legs[l] = struct{}{}
	e.mu.Unlock()

	go l.readLoop()
	go l.rtcpLoop()
	e.log.Debug("rtp leg opened", "leg", name, "local", l.local)
	return l, nil
}

// advertised is the address that goes into SDP.
func (e *Engine) advertised() netip.Addr {
	if e.cfg.Advertise.IsValid() {
		return e.cfg.Advertise.Unmap()
	}
	return e.cfg.IP.Unmap()
}

// bindPair opens the RTP socket of port and the RTCP socket of port+1.
func (e *Engine) bindPair(port int) (socketPair, error) {
	rtp, err := e.bind(port)
	if err != nil {
		return socketPair{}, err
	}
	rtcp, err := e.bind(port + 1)
	if err != nil {
		_ = rtp.Close()
		return socketPair{}, err
	}
	return socketPair{rtp: rtp, rtcp: rtcp}, nil
}

// bind opens the UDP socket of one port.
func (e *Engine) bind(port int) (*net.UDPConn, error) {
	ip := e.cfg.IP.Unmap()
	network := "udp6"
	switch {
	case ip.Is4():
		network = "udp4"
	case ip.IsUnspecified(): // "::": both families
		network = "udp"
	}
	return net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))))
}

// forget removes a closed leg and gives its port back.
func (e *Engine) forget(l *Leg) {
	e.mu.Lock()
	delete(e.legs, l)
	e.mu.Unlock()
	e.pool.release(l.port)
}

// pickShard is near's shard, or the next one in turn.
func (e *Engine) pickShard(near *Leg) *shard {
	if near != nil && near.engine == e {
		return near.shard
	}
	return e.shards[e.nextShard.Add(1)%uint64(len(e.shards))]
}
