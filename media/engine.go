package media

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrNoPorts is returned by NewLeg when every RTP port of the range is taken.
var ErrNoPorts = errors.New("media: no free RTP port")

// ErrClosed is returned when using a closed Engine or Leg.
var ErrClosed = errors.New("media: closed")

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
	// with p+1 (RTCP, reserved but unused for now) also in the range.
	PortMin, PortMax int
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

	nextShard atomic.Uint64
	nextJobID atomic.Uint64

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
	if cfg.Shards == 0 {
		cfg.Shards = runtime.GOMAXPROCS(0)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{cfg: cfg, log: logger, legs: make(map[*Leg]struct{})}
	if err := e.pool.init(cfg.PortMin, cfg.PortMax); err != nil {
		return nil, err
	}
	e.nextJobID.Store(writerForward) // job ids start above the reserved writer ids
	for range cfg.Shards {
		s := newShard(timeouts{active: cfg.Timeout, held: cfg.HoldTimeout})
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

// NewLeg binds a random free even port of the pool (skipping ports other
// programs hold), starts the leg's reader goroutine and assigns it to a shard.
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
	conn, port, err := e.pool.acquire(e.bind)
	if err != nil {
		return nil, fmt.Errorf("media: leg %q: %w", name, err)
	}
	shard := e.pickShard(near)
	l := newLeg(e, name, conn, port, shard)
	shard.addLeg(l) // before Engine.Close can see it, so that its Close undoes this

	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		shard.removeLeg(l)
		_ = conn.Close()
		e.pool.release(port)
		return nil, fmt.Errorf("media: leg %q: engine: %w", name, ErrClosed)
	}
	e.legs[l] = struct{}{}
	e.mu.Unlock()

	go l.readLoop()
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

// portPool hands out the even ports of a range in random order, so that
// nobody can guess the port of the next leg from the last one (the agent
// leg is not the caller leg + 2). Late packets of an earlier call that reach
// a reused port come from a source the new call does not accept.
type portPool struct {
	mu    sync.Mutex
	first int     // lowest even port
	free  []int32 // indexes (port-first)/2 not handed out, in any order
	inUse []bool  // by index
}

// maxBindAttempts bounds how many random ports one acquire tries when other
// programs hold them.
const maxBindAttempts = 32

func (pp *portPool) init(portMin, portMax int) error {
	pp.first = portMin + portMin%2
	count := 0
	if pp.first+1 <= portMax {
		count = (portMax-pp.first-1)/2 + 1
	}
	if count == 0 {
		return fmt.Errorf("media: config: port range %d-%d holds no even RTP port with its RTCP port", portMin, portMax)
	}
	pp.inUse = make([]bool, count)
	pp.free = make([]int32, count)
	for i := range pp.free {
		pp.free[i] = int32(i)
	}
	return nil
}

// acquire binds a random free port that bind accepts, calling bind without
// the pool's lock. Ports held by other programs are set aside and another
// is tried, at most maxBindAttempts times; any other bind error is returned.
func (pp *portPool) acquire(bind func(port int) (*net.UDPConn, error)) (*net.UDPConn, int, error) {
	var busy []int
	defer func() {
		for _, port := range busy {
			pp.release(port)
		}
	}()
	for range maxBindAttempts {
		port, ok := pp.take()
		if !ok {
			break
		}
		conn, err := bind(port)
		if err == nil {
			return conn, port, nil
		}
		busy = append(busy, port)
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, 0, fmt.Errorf("bind RTP port %d: %w", port, err)
		}
	}
	last := pp.first + 2*(len(pp.inUse)-1)
	return nil, 0, fmt.Errorf("%w in %d-%d (%d held by other programs)", ErrNoPorts, pp.first, last, len(busy))
}

// take removes a uniformly random port from the free list in O(1).
func (pp *portPool) take() (int, bool) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	n := len(pp.free)
	if n == 0 {
		return 0, false
	}
	k := rand.IntN(n)
	i := pp.free[k]
	pp.free[k] = pp.free[n-1]
	pp.free = pp.free[:n-1]
	pp.inUse[i] = true
	return pp.first + 2*int(i), true
}

// release gives a port back; a port not handed out is ignored.
func (pp *portPool) release(port int) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if i := (port - pp.first) / 2; i >= 0 && i < len(pp.inUse) && pp.inUse[i] {
		pp.inUse[i] = false
		pp.free = append(pp.free, int32(i))
	}
}

// pickShard is near's shard, or the next one in turn.
func (e *Engine) pickShard(near *Leg) *shard {
	if near != nil && near.engine == e {
		return near.shard
	}
	return e.shards[e.nextShard.Add(1)%uint64(len(e.shards))]
}
