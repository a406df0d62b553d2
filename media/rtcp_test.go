package media

import (
	"math"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

// newEngine6 starts an engine for the tests of issue 6: its own loopback
// address in 127.0.11.1-60, ports 60000-60999. cfg.IP and the range are
// filled in; Shards defaults to 1 and RTCPInterval to 100 ms, so reports
// flow within a test.
func newEngine6(t testing.TB, ip string, cfg Config) *Engine {
	t.Helper()
	cfg.IP = netip.MustParseAddr(ip)
	if cfg.PortMin == 0 {
		cfg.PortMin, cfg.PortMax = 60000, 60999
	}
	if cfg.Shards == 0 {
		cfg.Shards = 1
	}
	if cfg.RTCPInterval == 0 {
		cfg.RTCPInterval = 100 * time.Millisecond
	}
	e, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// impairedLink relays one direction of a call between two legs through two
// raw sockets: RTP packets are counted, every dropEvery-th is dropped and
// every other one is held back by delay; RTCP is relayed as it is.
type impairedLink struct {
	rtpIn, rtcpIn   *rawPeer // what the sending leg sends to
	rtpOut, rtcpOut *rawPeer // where the receiving leg hears it from
	to              *Leg
	dropEvery       int
	delay           time.Duration

	mu      sync.Mutex
	relayed int
	pending sync.WaitGroup
}

func (k *impairedLink) run(t *testing.T) {
	go func() {
		buf := make([]byte, maxPacket)
		for n := 1; ; n++ {
			size, _, err := k.rtpIn.conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if k.dropEvery > 0 && n%k.dropEvery == 0 {
				continue
			}
			pkt := append([]byte(nil), buf[:size]...)
			send := func() {
				_, _ = k.rtpOut.conn.WriteToUDPAddrPort(pkt, k.to.LocalAddr())
				k.mu.Lock()
				k.relayed++
				k.mu.Unlock()
			}
			if k.delay > 0 && n%2 == 0 {
				k.pending.Add(1)
				time.AfterFunc(k.delay, func() { send(); k.pending.Done() })
				continue
			}
			send()
		}
	}()
	go func() {
		buf := make([]byte, maxPacket)
		rtcpPort := netip.AddrPortFrom(k.to.LocalAddr().Addr(), k.to.LocalAddr().Port()+1)
		for {
			size, _, err := k.rtcpIn.conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = k.rtcpOut.conn.WriteToUDPAddrPort(buf[:size], rtcpPort)
		}
	}()
	t.Cleanup(k.pending.Wait)
}

// Two legs talk through a link that loses every 10th packet one way and
// delays every other one by 10 ms: each side's receive statistics and the
// other side's reports about them say so, RTCP flows both ways and times
// the round trip, and a leg that closes says BYE.
func TestRTCPReportsLossJitterAndRoundTrip(t *testing.T) {
	e := newEngine6(t, "127.0.11.1", Config{})
	a, b := newTestLeg(t, e, "a"), newTestLeg(t, e, "b")
	peer := func() *rawPeer { return newRawPeer(t, "127.0.11.2") }
	aToB := &impairedLink{rtpIn: peer(), rtcpIn: peer(), rtpOut: peer(), rtcpOut: peer(), to: b, dropEvery: 10, delay: 10 * time.Millisecond}
	bToA := &impairedLink{rtpIn: aToB.rtpOut, rtcpIn: aToB.rtcpOut, rtpOut: aToB.rtpIn, rtcpOut: aToB.rtcpIn, to: a}
	aToB.run(t)
	bToA.run(t)
	// Each leg's SDP names the relay's sockets, a=rtcp included.
	a.SetParams(Params{Remote: aToB.rtpIn.addr(), RTCPRemote: aToB.rtcpIn.addr(), Codec: PCMU})
	b.SetParams(Params{Remote: bToA.rtpIn.addr(), RTCPRemote: bToA.rtcpIn.addr(), Codec: PCMU})

	const aFrames, bFrames = 101, 50
	ctx := testContext(t)
	var wg sync.WaitGroup
	for leg, frames := range map[*Leg]int{a: aFrames, b: bFrames} {
		wg.Go(func() {
			if err := leg.Play(ctx, NewPrompt("talk", Tone(440, time.Duration(frames)*20*time.Millisecond, 0.3))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()

	// By hand: a sent 101 packets, numbers 10, 20, ... 100 were lost; the
	// highest (101) arrived, so 101 were expected and 91 received.
	const wantLost, wantReceived = 10, aFrames - 10
	wantLoss := 100.0 * wantLost / aFrames
	eventually(t, "b received what the link let through", func() bool { return b.Quality().PacketsReceived == wantReceived })
	eventually(t, "a received all of b", func() bool { return a.Quality().PacketsReceived == bFrames })
	// a learns b's view from b's next report, with a round trip.
	eventually(t, "reports covering the whole stream", func() bool {
		qa, qb := a.Quality(), b.Quality()
		return qa.PeerPacketsLost == wantLost && qa.RTTMS > 0 && qb.RTTMS > 0 && qb.ReportsReceived > 0
	})

	qa, qb := a.Quality(), b.Quality()
	t.Logf("a: %+v", qa)
	t.Logf("b: %+v", qb)
	if qb.PacketsExpected != aFrames || qb.PacketsLost != wantLost || math.Abs(qb.LossPercent-wantLoss) > 1e-9 {
		t.Errorf("b: expected %d, lost %d (%.3f%%); want %d, %d (%.3f%%)", qb.PacketsExpected, qb.PacketsLost, qb.LossPercent, aFrames, wantLost, wantLoss)
	}
	if qa.PacketsExpected != bFrames || qa.PacketsLost != 0 || qa.LossPercent != 0 {
		t.Errorf("a: expected %d, lost %d (%.3f%%); want %d, 0, 0", qa.PacketsExpected, qa.PacketsLost, qa.LossPercent, bFrames)
	}
	if math.Abs(qa.PeerLossPercent-wantLoss) > 1e-9 || qb.PeerPacketsLost != 0 || qb.PeerLossPercent != 0 {
		t.Errorf("peer reports: a hears %d lost (%.3f%%), b hears %d (%.3f%%); want %d (%.3f%%) and 0",
			qa.PeerPacketsLost, qa.PeerLossPercent, qb.PeerPacketsLost, qb.PeerLossPercent, wantLost, wantLoss)
	}
	// Every other packet 10 ms late: |D| is 80 timestamp units (10 ms) at
	// each step, so the estimate heads for 10 ms; a clean link has far less.
	if qb.JitterMS < 4 || qb.Jitter != uint32(qb.JitterMS*8) {
		t.Errorf("b's jitter %.2f ms (%d units), want about 10 ms", qb.JitterMS, qb.Jitter)
	}
	if math.Abs(qa.PeerJitterMS-qb.JitterMS) > 2 {
		t.Errorf("a hears jitter %.2f ms from b, b measures %.2f ms", qa.PeerJitterMS, qb.JitterMS)
	}
	for name, q := range map[string]Quality{"a": qa, "b": qb} {
		if q.ReportsReceived == 0 || q.ReportsSent == 0 || q.RTCPDropped != 0 || q.RTTMS <= 0 || q.RTTMS > 1000 {
			t.Errorf("%s: %d reports received, %d sent, %d dropped, RTT %.3f ms; want reports both ways, none dropped, a round trip", name, q.ReportsReceived, q.ReportsSent, q.RTCPDropped, q.RTTMS)
		}
	}

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b hears a's BYE", func() bool { return b.Quality().PeerLeft })
	if a.Quality().PacketsReceived != bFrames {
		t.Error("a's figures are gone after Close")
	}
}

// rtcpPeer is a remote endpoint's RTP and RTCP sockets, on port p and p+1.
type rtcpPeer struct {
	rtp, rtcp *rawPeer
}

func newRTCPPeer(t *testing.T, ip string, port uint16) rtcpPeer {
	t.Helper()
	bind := func(port uint16) *rawPeer {
		conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), port)))
		if err != nil {
			t.Fatalf("test peer on %s:%d: %v", ip, port, err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return &rawPeer{t: t, conn: conn}
	}
	return rtcpPeer{rtp: bind(port), rtcp: bind(port + 1)}
}

// receiverReport is an RR from ssrc about stream about with lost packets lost.
func receiverReport(t testing.TB, ssrc, about uint32, lost uint32) []byte {
	t.Helper()
	data, err := rtcp.Marshal([]rtcp.Packet{
		&rtcp.ReceiverReport{SSRC: ssrc, Reports: []rtcp.ReceptionReport{{SSRC: about, TotalLost: lost, LastSequenceNumber: 100}}},
		&rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: ssrc, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "peer"}}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// RTCP is accepted like RTP: from the SDP's RTCP address (RTP port + 1 by
// default) or the signalling IP; a stranger's reports are dropped and
// counted. Our reports go to RTP port + 1, and follow the peer's RTCP when
// its NAT moves it to another port (same SSRC), not a same-IP stranger's.
func TestRTCPAcceptsOnlyThePeer(t *testing.T) {
	e := newEngine6(t, "127.0.11.3", Config{})
	l := newTestLeg(t, e, "l")
	peer := newRTCPPeer(t, "127.0.11.4", 60400)
	stranger := newRawPeer(t, "127.0.11.5")
	ours := netip.AddrPortFrom(l.LocalAddr().Addr(), l.LocalAddr().Port()+1)
	l.SetParams(Params{Remote: peer.rtp.addr(), SignalIP: peer.rtp.addr().Addr(), Codec: PCMU})
	const peerSSRC = 0x5EED

	stranger.send(ours, receiverReport(t, 0xBAD, l.out.ssrc, 99))
	eventually(t, "stranger's report dropped", func() bool { return l.Quality().RTCPDropped == 1 })

	stream := rtpStream{ssrc: peerSSRC}
	stream.tone(peer.rtp, l.LocalAddr(), PCMU, 440, 3) // something to report on
	// Our reports reach RTP port + 1: RRs (we sent nothing) about the
	// peer's stream.
	for {
		c, err := parseRTCP(peer.rtcp.receive())
		if err != nil || c.sr || c.sender != l.out.ssrc || len(c.blocks) != 1 || c.blocks[0].SSRC != peerSSRC {
			t.Fatalf("report at the peer: %+v, %v; want an RR from %x about %x", c, err, l.out.ssrc, peerSSRC)
		}
		if c.blocks[0].LastSequenceNumber == 2 {
			break // one after all three packets
		}
	}

	peer.rtcp.send(ours, receiverReport(t, peerSSRC, l.out.ssrc, 5))
	eventually(t, "peer's report taken", func() bool { return l.Quality().ReportsReceived == 1 })
	if q := l.Quality(); q.PeerPacketsLost != 5 || q.RTCPDropped != 1 {
		t.Errorf("after the peer's report: %d lost, %d dropped; want 5 and 1", q.PeerPacketsLost, q.RTCPDropped)
	}

	// The peer's IP, another port, another SSRC: dropped.
	sameIP := newRawPeer(t, "127.0.11.4")
	sameIP.send(ours, receiverReport(t, 0xBAD2, l.out.ssrc, 77))
	eventually(t, "same-IP stranger dropped", func() bool { return l.Quality().RTCPDropped == 2 })
	// The peer's NAT rebinds its RTCP to another port: followed.
	moved := newRawPeer(t, "127.0.11.4")
	moved.send(ours, receiverReport(t, peerSSRC, l.out.ssrc, 6))
	eventually(t, "moved peer's report taken", func() bool { return l.Quality().ReportsReceived == 2 })
	if q := l.Quality(); q.PeerPacketsLost != 6 || q.RTCPDropped != 2 {
		t.Errorf("after the move: %d lost, %d dropped; want 6 and 2", q.PeerPacketsLost, q.RTCPDropped)
	}
	if c, err := parseRTCP(moved.receive()); err != nil || c.sender != l.out.ssrc {
		t.Errorf("our next report at the moved port: %+v, %v", c, err)
	}
	if n := len(sameIP.pending()) + len(stranger.pending()); n != 0 {
		t.Errorf("strangers got %d reports", n)
	}
}

// The receive statistics by hand (RFC 3550 A.1, A.3): a wrap with one
// packet lost and one reordered, a duplicate (counted, as the RFC counts
// it), a stray jump (ignored), a restart (two sequential packets after a
// jump), and a new SSRC; the leg's figures cover all of them.
func TestReceptionStatsByHand(t *testing.T) {
	e := newEngine6(t, "127.0.11.6", Config{})
	l := newTestLeg(t, e, "l")
	src := netip.MustParseAddrPort("127.0.11.7:60700")
	l.SetParams(Params{Remote: src, Codec: PCMU})
	feed := func(ssrc uint32, seqs ...uint16) {
		for _, seq := range seqs {
			l.receive(rtpPacket(0, false, seq, uint32(seq)*160, ssrc, make([]byte, 160)), src, time.Now())
		}
	}
	steps := []struct {
		name                     string
		ssrc                     uint32
		seqs                     []uint16
		extMax                   uint32
		expected, received, lost int64 // totals of the leg
	}{
		{"wrap, 65533 lost, 2 late", 1, []uint16{65530, 65531, 65532, 65534, 65535, 0, 1, 3, 2}, 65536 + 3, 10, 9, 1},
		{"duplicate", 1, []uint16{2}, 65536 + 3, 10, 10, 0},
		{"stray jump ignored", 1, []uint16{20000, 4}, 65536 + 4, 11, 11, 0},
		{"restart after two sequential", 1, []uint16{40000, 40001, 40003}, 40003, 14, 13, 1},
		{"new SSRC", 2, []uint16{7, 8}, 8, 16, 15, 1},
	}
	for _, s := range steps {
		feed(s.ssrc, s.seqs...)
		rx, q := l.reception.snapshot(), l.Quality()
		if rx.extMax != s.extMax || q.PacketsExpected != s.expected || q.PacketsReceived != s.received || q.PacketsLost != s.lost {
			t.Errorf("%s: highest %d, expected %d, received %d, lost %d; want %d, %d, %d, %d",
				s.name, rx.extMax, q.PacketsExpected, q.PacketsReceived, q.PacketsLost, s.extMax, s.expected, s.received, s.lost)
		}
	}
	if q := l.Quality(); math.Abs(q.LossPercent-100.0/16) > 1e-9 {
		t.Errorf("loss %.4f%%, want 1 of 16", q.LossPercent)
	}
}

// Interarrival jitter by hand (RFC 3550 A.8, kept times 16): ten 20 ms
// packets, the sixth 10 ms late (80 timestamp units). J16 goes 0, +80 (the
// late one), +80-5 = 155 (the next is early relative to it), then decays by
// J16/16 rounded: 145, 136, 127: 127/16 = 7 units. A DTMF event, whose
// timestamp stands still, does not count.
func TestJitterByHand(t *testing.T) {
	e := newEngine6(t, "127.0.11.6", Config{})
	l := newTestLeg(t, e, "l")
	src := netip.MustParseAddrPort("127.0.11.7:60702")
	l.SetParams(Params{Remote: src, Codec: PCMU, DTMFPayloadType: 101})
	t0 := time.Unix(1700000000, 0)
	for k := range 10 {
		at := t0.Add(time.Duration(k) * 20 * time.Millisecond)
		if k == 5 {
			at = at.Add(10 * time.Millisecond)
		}
		l.receive(rtpPacket(0, false, uint16(k), uint32(k)*160, 3, make([]byte, 160)), src, at)
	}
	l.receive(rtpPacket(101, false, 10, 9*160, 3, eventPayload(1, false, 160)), src, t0.Add(time.Second))
	if q := l.Quality(); q.Jitter != 7 || q.JitterMS != 0.875 || q.PacketsReceived != 11 {
		t.Errorf("jitter %d units (%.3f ms) over %d packets, want 7 (0.875 ms) over 11", q.Jitter, q.JitterMS, q.PacketsReceived)
	}
}

// FuzzRTCP feeds arbitrary datagrams to the RTCP parser and to a leg's
// RTCP port from the accepted source: nothing panics, and what parses is
// what the leg counts as a report.
func FuzzRTCP(f *testing.F) {
	report := func(pkts ...rtcp.Packet) []byte {
		data, err := rtcp.Marshal(pkts)
		if err != nil {
			f.Fatal(err)
		}
		return data
	}
	block := rtcp.ReceptionReport{SSRC: 1, FractionLost: 25, TotalLost: 0xFFFFFF, LastSequenceNumber: 70000, Jitter: 80, LastSenderReport: 0x12345678, Delay: 65536}
	sdes := &rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: 9, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "x@y"}}}}}
	sr := &rtcp.SenderReport{SSRC: 9, NTPTime: 1 << 40, RTPTime: 5, PacketCount: 3, OctetCount: 480, Reports: []rtcp.ReceptionReport{block}}
	full := report(sr, sdes, &rtcp.Goodbye{Sources: []uint32{9}, Reason: "bye"})
	f.Add(full)
	f.Add(full[:len(full)-3])
	f.Add(report(&rtcp.ReceiverReport{SSRC: 9, Reports: []rtcp.ReceptionReport{block, block}}, sdes))
	f.Add(report(&rtcp.ReceiverReport{SSRC: 9}, &rtcp.ApplicationDefined{SSRC: 9, Name: "abcd", Data: []byte{1, 2, 3, 4}}))
	f.Add(report(sdes))                          // not opening with SR or RR
	f.Add(report(&rtcp.PictureLossIndication{})) // feedback alone
	f.Add([]byte{0xa0, 201, 0, 1, 0, 0, 0, 9, 0x81, 202, 0, 0})
	f.Add([]byte{0x81, 200, 0, 6, 0, 0, 0, 9})
	f.Add([]byte("not rtcp at all"))

	e := newEngine6(f, "127.0.11.6", Config{})
	l := newTestLeg(f, e, "l")
	src := netip.MustParseAddrPort("127.0.11.7:60705")
	l.SetParams(Params{Remote: src, RTCPRemote: src, Codec: PCMU})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := parseRTCP(data)
		before := l.Quality()
		l.receiveRTCP(data, src, time.Now())
		after := l.Quality()
		taken := after.ReportsReceived - before.ReportsReceived
		if (err == nil) != (taken == 1) || taken+after.RTCPDropped-before.RTCPDropped != 1 {
			t.Errorf("parse error %v, but %d taken and %d dropped", err, taken, after.RTCPDropped-before.RTCPDropped)
		}
	})
}

// Round trip, RFC 3550 §6.4.1: arrival - LSR - DLSR. For one of our recent
// SRs the send time is exact; for another LSR the compact NTP arithmetic
// (1/65536 s) gives the same within a unit; a negative result is no sample.
func TestRoundTripFromReport(t *testing.T) {
	var r rtcpSession
	t0 := time.Unix(1700000000, 123456789)
	r.srSent[0] = sentSR{lsr: ntpMiddle(t0), at: t0}
	dlsr := uint32(200 * 65536 / 1000) // 200 ms, rounded down as a peer sends it
	held := time.Duration(dlsr) * time.Second / 65536
	arrival := t0.Add(300 * time.Millisecond)
	if rtt, ok := r.roundTrip(ntpMiddle(t0), dlsr, arrival); !ok || rtt != 300*time.Millisecond-held {
		t.Errorf("exact round trip %v (%v), want %v", rtt, ok, 300*time.Millisecond-held)
	}
	r.srSent[0] = sentSR{} // forgotten: the compact arithmetic
	if rtt, ok := r.roundTrip(ntpMiddle(t0), dlsr, arrival); !ok || (rtt-100*time.Millisecond).Abs() > 2*time.Second/65536 {
		t.Errorf("compact round trip %v (%v), want 100ms within 2/65536 s", rtt, ok)
	}
	if _, ok := r.roundTrip(ntpMiddle(t0), dlsr, t0.Add(100*time.Millisecond)); ok {
		t.Error("a delay longer than the round trip gave a sample")
	}
}

// BenchmarkReceptionStats is what the RTP reader pays per packet for the
// RFC 3550 statistics.
func BenchmarkReceptionStats(b *testing.B) {
	var s receptionStats
	now := time.Now()
	var seq uint16
	b.ReportAllocs()
	for b.Loop() {
		seq++
		now = now.Add(20 * time.Millisecond)
		s.observe(7, seq, uint32(seq)*160, true, now)
	}
}

// BenchmarkRTCP is one report each way: ours built and sent, the peer's
// received and taken in. RTCP is a few packets a minute per leg; this shows
// what its allocations amount to.
func BenchmarkRTCP(b *testing.B) {
	e := newEngine6(b, "127.0.11.14", Config{})
	l := newTestLeg(b, e, "l")
	sink := newRawPeer(b, "127.0.11.14")
	l.SetParams(Params{Remote: sink.addr(), RTCPRemote: sink.addr(), Codec: PCMU})
	l.receive(rtpPacket(0, false, 1, 160, 9, make([]byte, 160)), sink.addr(), time.Now())
	report := receiverReport(b, 9, l.out.ssrc, 1)
	b.Run("send", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			l.sendReport(time.Now(), false)
		}
	})
	b.Run("receive", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			l.receiveRTCP(report, sink.addr(), time.Now())
		}
	})
}
