package sip

import (
	"bytes"
	"net"

	"github.com/emiago/sipgo/sip"
)

// Malformed datagrams: sipgo drops what it cannot parse. A request that is
// broken beyond parsing but still names a Via gets a stateless 400 so the
// sender stops retransmitting (RFC 3261 §16.3); anything else is dropped.

var copiedHeaders = [][]byte{[]byte("via"), []byte("v"), []byte("from"), []byte("f"), []byte("to"), []byte("t"), []byte("call-id"), []byte("i"), []byte("cseq")}

// badRequestFor builds a 400 for raw, or nil when no response is possible.
func badRequestFor(raw []byte) []byte {
	lines := bytes.Split(raw, []byte("\n"))
	if len(lines) == 0 || !bytes.Contains(lines[0], []byte("SIP/2.0")) || bytes.HasPrefix(lines[0], []byte("SIP/")) {
		return nil // not a request line: responses get no response
	}
	if bytes.HasPrefix(lines[0], []byte("ACK ")) {
		return nil // an ACK is never answered
	}
	out := []byte("SIP/2.0 400 Bad Request\r\n")
	hasVia := false
	for _, l := range lines[1:] {
		l = bytes.TrimRight(l, "\r")
		if len(l) == 0 {
			break
		}
		name, _, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			continue
		}
		name = bytes.ToLower(bytes.TrimSpace(name))
		for _, h := range copiedHeaders {
			if bytes.Equal(name, h) {
				if h[0] == 'v' {
					hasVia = true
				}
				out = append(append(out, l...), "\r\n"...)
			}
		}
	}
	if !hasVia {
		return nil
	}
	return append(out, "Content-Length: 0\r\n\r\n"...)
}

// udpFilter checks each UDP datagram before sipgo parses it: what cannot
// be parsed is logged by its first line (sipgo would log it whole) and
// dropped, with a 400 when possible; a request the strictness checks refuse
// gets its answer here.
func (w *wireChecks) udpFilter(conn func() net.PacketConn) sip.TransportReadFilter {
	return func(info sip.TransportReadProps, data []byte) ([]byte, error) {
		if info.Transport != "UDP" {
			return data, nil // streams are checked by streamConn
		}
		if len(bytes.Trim(data, "\r\n\x00")) == 0 {
			return nil, nil // a keep-alive: nothing to parse, nothing to answer
		}
		var res []byte
		msg, err := w.parser.ParseSIP(data)
		if err != nil {
			w.dropUnparseable("UDP", info.RemoteAddr.String(), data, err)
			res = badRequestFor(data)
		} else if req, ok := msg.(*sip.Request); !ok {
			return data, nil
		} else if r := checkRequest(req); r.code == 0 {
			return data, nil
		} else {
			w.refused.Add(1)
			res = refusalFor(req, r, info.RemoteAddr.String())
		}
		if c := conn(); c != nil && res != nil {
			_, _ = c.WriteTo(res, info.RemoteAddr)
		}
		return nil, nil
	}
}
