package media

import (
	"net/netip"
	"testing"
	"time"
)

// FuzzReceive feeds arbitrary datagrams through the whole receive path of a
// bridged, tapped leg: parse, latch, DTMF, decode, transcode and forward.
func FuzzReceive(f *testing.F) {
	audio := make([]byte, 160)
	f.Add(rtpPacket(0, true, 1, 160, 7, audio))
	f.Add(rtpPacket(101, true, 2, 160, 7, []byte{1, 0x0a, 0, 160}))
	f.Add(rtpPacket(101, false, 3, 160, 7, []byte{1, 0x8a}))
	f.Add([]byte{0x81, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 9})                            // one CSRC
	f.Add([]byte{0x90, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 7, 0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0, 1}) // extension
	f.Add([]byte{0x90, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 7, 0xbe, 0xde, 0xff, 0xff})                // extension too long
	f.Add([]byte{0xa0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 7, 1, 2, 3, 2})                            // padding
	f.Add([]byte{0xa0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 7, 0xff})                                  // padding too long
	f.Add([]byte("not rtp at all"))
	f.Add(rtpPacket(0, false, 4, 320, 7, make([]byte, 2*maxPacket))) // longer than any read

	e := newTestEngine(f, "127.0.0.1")
	a, b := newTestLeg(f, e, "a"), newTestLeg(f, e, "b")
	sink := newRawPeer(f, "127.0.0.1")
	a.SetParams(Params{Remote: sink.addr(), SignalIP: sink.addr().Addr(), Codec: PCMU, PayloadType: 0, DTMFPayloadType: 101})
	b.SetParams(Params{Remote: sink.addr(), Codec: PCMA, PayloadType: 8, DTMFPayloadType: 96})
	NewBridge(a, b)
	a.AddTap(discardTap{})
	src := netip.MustParseAddrPort("127.0.0.1:40000") // behind NAT: the signalling IP, another port
	f.Fuzz(func(t *testing.T, data []byte) {
		before := a.Stats()
		a.receive(data, src, time.Now())
		after := a.Stats()
		counted := (after.PacketsIn - before.PacketsIn) + (after.Malformed - before.Malformed) +
			(after.UnknownPayload - before.UnknownPayload) + (after.WrongSource - before.WrongSource)
		if counted != 1 {
			t.Fatalf("datagram counted %d times, want exactly once", counted)
		}
		a.FlushDTMF()
	})
}

type discardTap struct{}

func (discardTap) WriteAudio([]int16) {}
