package sip

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// sizeReadBuffer asks the kernel for want bytes of receive buffer on c. When
// net.core.rmem_max caps the request it forces it (SO_RCVBUFFORCE), which
// works for root or CAP_NET_ADMIN. It returns what was granted, in the units
// of the request (the kernel reserves twice that for its bookkeeping).
func sizeReadBuffer(c *net.UDPConn, want int) (int, error) {
	if err := c.SetReadBuffer(want); err != nil {
		return 0, fmt.Errorf("set SO_RCVBUF %d: %w", want, err)
	}
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("udp socket: %w", err)
	}
	var got int
	var serr error
	read := func() {
		if err := raw.Control(func(fd uintptr) {
			got, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
		}); err != nil {
			serr = err
		}
	}
	if read(); serr != nil {
		return 0, fmt.Errorf("read SO_RCVBUF: %w", serr)
	}
	if got/2 < want {
		// Capped by rmem_max: without the privilege this fails and the capped size stays.
		_ = raw.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, want)
		})
		if read(); serr != nil {
			return 0, fmt.Errorf("read SO_RCVBUF: %w", serr)
		}
	}
	return got / 2, nil
}

// udpDrops reads the kernel's count of datagrams dropped on c because its
// receive buffer was full, from the drops column of /proc/net/udp{,6}.
func udpDrops(c *net.UDPConn) (uint64, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("udp socket: %w", err)
	}
	var st syscall.Stat_t
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = syscall.Fstat(int(fd), &st) }); err != nil {
		return 0, fmt.Errorf("udp socket: %w", err)
	}
	if serr != nil {
		return 0, fmt.Errorf("stat udp socket: %w", serr)
	}
	inode := strconv.FormatUint(st.Ino, 10)
	for _, table := range []string{"/proc/self/net/udp", "/proc/self/net/udp6"} {
		if drops, ok, err := dropsFor(table, inode); err != nil || ok {
			return drops, err
		}
	}
	return 0, fmt.Errorf("udp socket inode %s not in /proc/self/net/udp{,6}", inode)
}

// dropsFor finds the socket with inode in a /proc/net/udp table.
func dropsFor(table, inode string) (uint64, bool, error) {
	f, err := os.Open(table)
	if err != nil {
		return 0, false, fmt.Errorf("udp drops: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header: sl local_address rem_address st ... inode ref pointer drops
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 13 || fields[9] != inode {
			continue
		}
		drops, err := strconv.ParseUint(fields[12], 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("%s: drops column %q: %w", table, fields[12], err)
		}
		return drops, true, nil
	}
	if err := sc.Err(); err != nil {
		return 0, false, fmt.Errorf("read %s: %w", table, err)
	}
	return 0, false, nil
}
