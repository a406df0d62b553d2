package media

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func BenchmarkDecodeFrame(b *testing.B) {
	src := make([]byte, 160)
	EncodeFrame(PCMU, src, Tone(440, 20*time.Millisecond, 0.5))
	dst := make([]int16, 160)
	b.SetBytes(160)
	b.ReportAllocs()
	for b.Loop() {
		DecodeFrame(PCMU, dst, src)
	}
}

func BenchmarkEncodeFrame(b *testing.B) {
	src := Tone(440, 20*time.Millisecond, 0.5)
	for _, c := range []Codec{PCMU, PCMA} {
		b.Run(c.String(), func(b *testing.B) {
			dst := make([]byte, 160)
			b.SetBytes(160)
			b.ReportAllocs()
			for b.Loop() {
				EncodeFrame(c, dst, src)
			}
		})
	}
}

func BenchmarkTranscodeFrame(b *testing.B) {
	src := make([]byte, 160)
	EncodeFrame(PCMU, src, Tone(440, 20*time.Millisecond, 0.5))
	dst := make([]byte, 160)
	b.SetBytes(160)
	b.ReportAllocs()
	for b.Loop() {
		TranscodeFrame(PCMU, PCMA, dst, src)
	}
}

// BenchmarkReceiveForward is the per-packet work of a bridged leg's reader
// after the socket read: source and latch checks, parse, optional tap, rewrite,
// transcode and the socket write to the peer's remote.
func BenchmarkReceiveForward(b *testing.B) {
	cases := []struct {
		name   string
		to     Codec
		tapped bool
	}{
		{"same-codec", PCMU, false},
		{"transcode", PCMA, false},
		{"transcode+tap", PCMA, true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			e := newTestEngine(b, "127.0.0.1")
			x, y := newTestLeg(b, e, "x"), newTestLeg(b, e, "y")
			sink := newRawPeer(b, "127.0.0.1")
			// The packets come from another port of the signalling IP (NAT).
			x.SetParams(Params{Remote: sink.addr(), SignalIP: sink.addr().Addr(), Codec: PCMU, PayloadType: 0, DTMFPayloadType: 101})
			y.SetParams(Params{Remote: sink.addr(), Codec: c.to, PayloadType: uint8(c.to), DTMFPayloadType: 101})
			NewBridge(x, y)
			if c.tapped {
				x.AddTap(discardTap{})
			}
			payload := make([]byte, 160)
			EncodeFrame(PCMU, payload, Tone(440, 20*time.Millisecond, 0.5))
			pkt := rtpPacket(0, false, 0, 0, 0x1234, payload)
			src := netip.MustParseAddrPort("127.0.0.1:40000")
			var seq uint16
			b.ReportAllocs()
			for b.Loop() {
				seq++
				binary.BigEndian.PutUint16(pkt[2:], seq)
				binary.BigEndian.PutUint32(pkt[4:], uint32(seq)*160)
				x.receive(pkt, src, time.Now())
			}
			if y.Stats().PacketsOut == 0 {
				b.Fatal("nothing forwarded")
			}
		})
	}
}

// BenchmarkLoopbackForward sends a packet to a bridged leg over loopback and
// waits for the forwarded copy: the whole path including both socket reads,
// the reader goroutine and the write. Allocations count every goroutine.
func BenchmarkLoopbackForward(b *testing.B) {
	e := newTestEngine(b, "127.0.0.1")
	x, y := newTestLeg(b, e, "x"), newTestLeg(b, e, "y")
	caller, agent := newRawPeer(b, "127.0.0.1"), newRawPeer(b, "127.0.0.1")
	x.SetParams(Params{Remote: caller.addr(), Codec: PCMU, PayloadType: 0})
	y.SetParams(Params{Remote: agent.addr(), Codec: PCMA, PayloadType: 8})
	NewBridge(x, y)
	pkt := rtpPacket(0, false, 0, 0, 0x1234, make([]byte, 160))
	buf := make([]byte, maxPacket)
	var seq uint16
	b.ReportAllocs()
	for b.Loop() {
		seq++
		binary.BigEndian.PutUint16(pkt[2:], seq)
		binary.BigEndian.PutUint32(pkt[4:], uint32(seq)*160)
		if _, err := caller.conn.WriteToUDPAddrPort(pkt, x.LocalAddr()); err != nil {
			b.Fatal(err)
		}
		if _, _, err := agent.conn.ReadFromUDPAddrPort(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkShardTick is one 20 ms tick of a shard with n legs playing music
// on hold: one frame built and sent per leg.
func BenchmarkShardTick(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("legs=%d", n), func(b *testing.B) {
			e, err := NewEngine(Config{IP: netip.MustParseAddr("127.0.0.1"), PortMin: 40000, PortMax: 44999, Shards: 1})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = e.Close() })
			sink := newRawPeer(b, "127.0.0.1")
			moh := NewPrompt("moh", Tone(300, 9*time.Second, 0.2))
			s := newShard(timeouts{}) // not running: the benchmark drives its ticks
			for i := range n {
				l := newTestLeg(b, e, fmt.Sprint("leg", i))
				codec := []Codec{PCMU, PCMA}[i%2]
				l.SetParams(Params{Remote: sink.addr(), Codec: codec, PayloadType: uint8(codec)})
				j := l.newJob(jobPrompt)
				j.prompt, j.loop = moh, true
				l.job.Store(j)
				s.active = append(s.active, j)
			}
			now := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				now = now.Add(tickInterval)
				s.tick(now)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/leg")
		})
	}
}
