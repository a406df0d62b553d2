//go:build !linux

package sip

import (
	"errors"
	"net"
)

func sizeReadBuffer(c *net.UDPConn, want int) (int, error) {
	return want, c.SetReadBuffer(want)
}

func udpDrops(*net.UDPConn) (uint64, error) {
	return 0, errors.New("udp drop counts are read from /proc/net/udp: Linux only")
}
