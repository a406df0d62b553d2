package media

import (
	"net/netip"
	"testing"

	"github.com/pion/rtp"
)

// newDTMFEngine starts an engine for the DTMF tests of issue 6 on ip (in
// 127.0.12.1-60), ports 61900-61999.
func newDTMFEngine(t testing.TB, ip string) *Engine {
	t.Helper()
	e, err := NewEngine(Config{IP: netip.MustParseAddr(ip), PortMin: 61900, PortMax: 61999, Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// After the bridge, a key the agent presses (RFC 4733 on payload type 101)
// reaches the caller on the caller's own number, 96: every packet of the
// event, the key's code, the end flag, one timestamp for the whole event,
// in the caller leg's stream between the agent's audio. A caller who did
// not negotiate telephone-event gets the audio and no event packet.
func TestBridgeRegeneratesAgentDTMFWithCallerPayloadType(t *testing.T) {
	e := newDTMFEngine(t, "127.0.12.30")
	for _, callerDTMF := range []uint8{96, 0} {
		x, y := newTestLeg(t, e, "caller-leg"), newTestLeg(t, e, "agent-leg")
		caller, agent := newRawPeer(t, "127.0.12.31"), newRawPeer(t, "127.0.12.32")
		x.SetParams(Params{Remote: caller.addr(), Codec: PCMU, PayloadType: 0, DTMFPayloadType: callerDTMF})
		y.SetParams(Params{Remote: agent.addr(), Codec: PCMA, PayloadType: 8, DTMFPayloadType: 101})
		NewBridge(x, y)

		fromAgent := rtpStream{ssrc: 0xA6E7, seq: 500, ts: 16000}
		fromAgent.tone(agent, y.LocalAddr(), PCMA, 1000, 2)
		fromAgent.digit(agent, y.LocalAddr(), 101, '#')
		fromAgent.tone(agent, y.LocalAddr(), PCMA, 1000, 2)
		eventually(t, "the agent leg got everything", func() bool { return y.Stats().PacketsIn == 10 })
		if got := drainDigits(y); got != "#" {
			t.Errorf("caller DTMF %d: agent leg reported %q, want \"#\"", callerDTMF, got)
		}

		var audio, events []rtp.Packet
		var ssrcs []uint32
		for _, raw := range caller.pending() {
			var p rtp.Packet
			if err := p.Unmarshal(raw); err != nil {
				t.Fatal(err)
			}
			ssrcs = append(ssrcs, p.SSRC)
			switch p.PayloadType {
			case 0:
				audio = append(audio, p)
			default:
				events = append(events, p)
			}
		}
		if len(audio) != 4 {
			t.Errorf("caller DTMF %d: caller got %d audio packets, want the agent's 4 (as PCMU)", callerDTMF, len(audio))
		}
		for _, s := range ssrcs {
			if s != ssrcs[0] {
				t.Errorf("caller DTMF %d: caller saw SSRCs %x, want one stream", callerDTMF, ssrcs)
				break
			}
		}
		if callerDTMF == 0 {
			if len(events) != 0 {
				t.Errorf("caller without telephone-event got %d event packets (payload type %d)", len(events), events[0].PayloadType)
			}
			continue
		}
		if len(events) != 6 {
			t.Fatalf("caller got %d event packets, want the 6 of the key", len(events))
		}
		for i, p := range events {
			ev, ok := parseTelephoneEvent(p.Payload)
			key, _ := eventDigit(ev.code)
			if p.PayloadType != 96 || !ok || key != '#' {
				t.Errorf("event packet %d: payload type %d, key %q; want 96 and '#'", i, p.PayloadType, key)
			}
			if ev.end != (i >= 3) {
				t.Errorf("event packet %d: end %v, want %v", i, ev.end, i >= 3)
			}
			if p.Timestamp != events[0].Timestamp {
				t.Errorf("event packet %d: timestamp %d, want the event's %d", i, p.Timestamp, events[0].Timestamp)
			}
			if i > 0 && p.SequenceNumber != events[i-1].SequenceNumber+1 {
				t.Errorf("event packet %d: seq %d after %d", i, p.SequenceNumber, events[i-1].SequenceNumber)
			}
		}
		if d := events[0].Timestamp - audio[1].Timestamp; d != 160 {
			t.Errorf("event timestamp is %d after the audio before it, want 160 (it follows the agent's clock)", d)
		}
	}
}
