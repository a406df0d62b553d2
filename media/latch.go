package media

import "net/netip"

// latchRun is how many packets with consecutive sequence numbers must come
// from one address before it is locked as the peer's source, or before a
// locked source moves to another port (NAT rebinding).
const latchRun = 3

// rebindMaxGap is how far ahead of the last packet of the locked source the
// first packet from a new port may be and still continue its stream: a
// rebinding NAT may lose a few packets, a sequence jump is another stream.
const rebindMaxGap = 25

// latch learns the peer's real source address (symmetric RTP) and follows
// a NAT that rebinds it to another port mid-call.
type latch struct {
	gen       uint64 // negotiation this state belongs to
	candidate netip.AddrPort
	lastSeq   uint16
	run       int
	locked    bool

	// Once locked: the stream of the locked source, and a port of the same
	// IP that may be taking it over.
	ssrc   uint32
	rebind netip.AddrPort
	rebSeq uint16
	rebRun int
}

type latchVerdict uint8

const (
	latchAccept  latchVerdict = iota // learning, or from the locked source
	latchLockNow                     // accept; this packet locked the source (or moved it)
	latchReject                      // from another address than the locked one
)

// observe classifies a packet of stream ssrc with sequence number seq from
// src under source generation gen (the caller has checked that src is
// acceptable).
func (t *latch) observe(src netip.AddrPort, ssrc uint32, seq uint16, gen uint64) latchVerdict {
	if t.gen != gen {
		*t = latch{gen: gen}
	}
	if t.locked {
		if src == t.candidate {
			if int16(seq-t.lastSeq) > 0 {
				t.lastSeq = seq
			}
			t.ssrc = ssrc // a peer that restarts its stream in place stays
			return latchAccept
		}
		return t.observeRebind(src, ssrc, seq)
	}
	switch {
	case t.run > 0 && src == t.candidate && seq == t.lastSeq+1:
		t.run++
	case t.run > 0 && src == t.candidate && seq == t.lastSeq:
		// duplicate: neither breaks nor extends the run
	default:
		t.candidate, t.run = src, 1
	}
	t.lastSeq = seq
	if t.run >= latchRun {
		t.locked, t.ssrc = true, ssrc
		return latchLockNow
	}
	return latchAccept
}

// observeRebind follows a NAT that moved the locked peer to another port of
// the same IP: the same stream (SSRC) continuing its sequence numbers for
// latchRun packets from the new port moves the lock there. Until then its
// packets are dropped; another SSRC, a sequence jump or another IP never
// moves it.
func (t *latch) observeRebind(src netip.AddrPort, ssrc uint32, seq uint16) latchVerdict {
	if src.Addr() != t.candidate.Addr() || ssrc != t.ssrc {
		return latchReject
	}
	switch {
	case t.rebRun > 0 && src == t.rebind && seq == t.rebSeq+1:
		t.rebRun++
	case t.rebRun > 0 && src == t.rebind && seq == t.rebSeq:
		return latchReject // duplicate
	case seq-t.lastSeq >= 1 && seq-t.lastSeq <= rebindMaxGap:
		t.rebind, t.rebRun = src, 1
	default:
		t.rebRun = 0
		return latchReject
	}
	t.rebSeq = seq
	if t.rebRun < latchRun {
		return latchReject
	}
	t.candidate, t.lastSeq, t.rebRun = src, seq, 0
	return latchLockNow
}
