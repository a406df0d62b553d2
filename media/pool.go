package media

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
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

// acquire binds a random free pair that bind accepts, calling bind (with
// the even port) without the pool's lock. Pairs of which either port is held
// by another program are set aside and another is tried, at most
// maxBindAttempts times; any other bind error is returned.
func (pp *portPool) acquire(bind func(port int) (socketPair, error)) (socketPair, int, error) {
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

// release gives a pair back; a port not handed out is ignored.
func (pp *portPool) release(port int) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	i := (port - pp.first) / 2
	if port < pp.first || port%2 != pp.first%2 || i >= len(pp.inUse) || !pp.inUse[i] {
		return
	}
	pp.inUse[i] = false
	pp.free = append(pp.free, int32(i))
}
