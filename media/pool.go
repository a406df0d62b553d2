package media

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
	"time"
)

// socketPair is the two sockets of a leg: RTP on the even port, RTCP on the
// odd one above it.
type socketPair struct {
	rtp, rtcp *net.UDPConn
}

func (s socketPair) close() {
	for _, c := range []*net.UDPConn{s.rtp, s.rtcp} {
		if c != nil {
			_ = c.Close()
		}
	}
}

// portPool hands out the port pairs of a range in random order, so that
// nobody can guess the port of the next leg from the last one (the agent
// leg is not the caller leg + 2). Both operations are O(1).
//
// A released pair rests for a quarantine before it is handed out again, so
// that late packets of an old call never reach the next leg on that port
// (they would come from a source the new call does not accept anyway, but
// they would be counted against it). Only when no rested pair is left is
// the one released longest ago taken early: refusing a call would be worse.
type portPool struct {
	mu    sync.Mutex
	first int     // lowest even port
	free  []int32 // indexes (port-first)/2 ready to hand out, in any order
	inUse []bool  // by index

	quarantine time.Duration
	now        func() time.Time // the clock; time.Now unless a test sets it
	resting    ring             // released pairs, oldest first
	early      uint64           // pairs taken before their quarantine ended
}

// restingPair is a released pair and when it was released.
type restingPair struct {
	index int32
	at    time.Time
}

// ring is a FIFO of resting pairs with room for every pair of the pool, so
// it never grows.
type ring struct {
	items      []restingPair
	head, size int
}

func (r *ring) push(p restingPair) {
	r.items[(r.head+r.size)%len(r.items)] = p
	r.size++
}

func (r *ring) peek() restingPair { return r.items[r.head] }

func (r *ring) pop() restingPair {
	p := r.items[r.head]
	r.head = (r.head + 1) % len(r.items)
	r.size--
	return p
}

// maxBindAttempts bounds how many random ports one acquire tries when other
// programs hold them.
const maxBindAttempts = 32

// init sets the range up; quarantine 0 hands a released pair out again at
// once.
func (pp *portPool) init(portMin, portMax int, quarantine time.Duration) error {
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
	pp.quarantine = quarantine
	pp.resting = ring{items: make([]restingPair, count)}
	if pp.now == nil {
		pp.now = time.Now
	}
	return nil
}

// acquire binds a random free pair that bind accepts, calling bind (with
// the even port) without the pool's lock. Pairs of which either port is held
// by another program are set aside and another is tried, at most
// maxBindAttempts times; any other bind error is returned.
func (pp *portPool) acquire(bind func(port int) (socketPair, error)) (socketPair, int, error) {
	var busy []int
	defer func() {
		for _, port := range busy {
			pp.giveBack(port)
		}
	}()
	for range maxBindAttempts {
		port, ok := pp.take()
		if !ok {
			break
		}
		pair, err := bind(port)
		if err == nil {
			return pair, port, nil
		}
		busy = append(busy, port)
		if !errors.Is(err, syscall.EADDRINUSE) {
			return socketPair{}, 0, fmt.Errorf("bind ports %d-%d: %w", port, port+1, err)
		}
	}
	last := pp.first + 2*(len(pp.inUse)-1)
	return socketPair{}, 0, fmt.Errorf("%w in %d-%d (%d held by other programs)", ErrNoPorts, pp.first, last, len(busy))
}

// take removes a uniformly random rested pair from the free list in O(1)
// (amortised: pairs whose quarantine ended join the free list first).
func (pp *portPool) take() (int, bool) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	now := pp.now()
	for pp.resting.size > 0 && now.Sub(pp.resting.peek().at) >= pp.quarantine {
		pp.free = append(pp.free, pp.resting.pop().index)
	}
	n := len(pp.free)
	if n == 0 {
		if pp.resting.size == 0 {
			return 0, false
		}
		pp.early++
		pp.free = append(pp.free, pp.resting.pop().index)
		n = 1
	}
	k := rand.IntN(n)
	i := pp.free[k]
	pp.free[k] = pp.free[n-1]
	pp.free = pp.free[:n-1]
	pp.inUse[i] = true
	return pp.first + 2*int(i), true
}

// release gives a pair back after a call: it rests for the quarantine. A
// port not handed out is ignored.
func (pp *portPool) release(port int) { pp.put(port, true) }

// giveBack returns a pair that was never used (its bind failed): no late
// packets can be on their way to it.
func (pp *portPool) giveBack(port int) { pp.put(port, false) }

func (pp *portPool) put(port int, rest bool) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	i := (port - pp.first) / 2
	if port < pp.first || port%2 != pp.first%2 || i >= len(pp.inUse) || !pp.inUse[i] {
		return
	}
	pp.inUse[i] = false
	if rest && pp.quarantine > 0 {
		pp.resting.push(restingPair{index: int32(i), at: pp.now()})
		return
	}
	pp.free = append(pp.free, int32(i))
}

// takenEarly returns how many pairs were handed out before their
// quarantine ended, for want of any other.
func (pp *portPool) takenEarly() uint64 {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	return pp.early
}
