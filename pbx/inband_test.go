package pbx

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hotline-pbx/hotline/config"
	"github.com/hotline-pbx/hotline/media"
	"github.com/hotline-pbx/hotline/sip/siptest"
	"github.com/hotline-pbx/hotline/store"
)

// keyTone is a DTMF key as a carrier sends it in the audio: its row and
// column tones summed.
func keyTone(rowHz, colHz float64, d time.Duration) []int16 {
	pcm := media.Tone(rowHz, d, 0.25)
	for i, s := range media.Tone(colHz, d, 0.25) {
		pcm[i] += s
	}
	return pcm
}

// A carrier that sends keys only as tones in its audio: with inband_dtmf on
// its trunk, key 1 heard in the menu puts the caller in the sales queue and
// agent 1001 answers; without it, the menu hears nothing and the call ends
// at goodbye. The carrier plays the tones; it sends no RFC 4733 event.
func TestInbandDTMFFromTheCarrierReachesTheQueue(t *testing.T) {
	for i, inband := range []bool{true, false} {
		t.Run(fmt.Sprintf("inband_dtmf=%v", inband), func(t *testing.T) {
			ip := func(n int) string { return fmt.Sprintf("127.0.12.%d", 10*(i+1)+n) }
			ports := 61000 + 400*i
			sw := toneDemo(t, ports, func(c *config.Config) {
				c.SIP.Listen, c.RTP.Address = ip(0)+":0", ip(0)
				c.Trunks[0].Addresses = []string{ip(2)}
				c.Trunks[0].InbandDTMF = inband
				menu := c.IVRs["main"].Nodes["menu"]
				menu.Timeout.Duration, menu.Tries = 300*time.Millisecond, 1
			})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			agent := registerAgent(t, sw, ip(1), "1001", ports+200, siptest.Answer)
			carrier := siptest.NewPhone(t, ip(2), "+15551234", ports+300, siptest.Busy)
			call, err := carrier.Call(ctx, sw.SIPAddr(), "+15550100", media.PCMA)
			if err != nil {
				t.Fatalf("call the DID: %v", err)
			}
			waitFor(t, "the menu prompt (400 Hz)", 5*time.Second, func() bool {
				return heard(call.Received, 60*time.Millisecond, 300, 400) == 400
			})
			if err := call.Leg.Play(ctx, media.NewPrompt("key-1", keyTone(697, 1209, 120*time.Millisecond))); err != nil {
				t.Fatal(err)
			}

			if inband {
				hangUpWhenAnswered(t, ctx, agent, call, "agent 1001 was never rung: the key tone was not heard")
			} else {
				select {
				case <-call.Done(): // goodbye, then our BYE
				case <-agent.Answered:
					t.Fatal("agent rung although the trunk does not listen for key tones")
				case <-ctx.Done():
					t.Fatal("the call did not end after the menu's only try")
				}
			}
			rec := recordOf(t, sw, call.ID())
			want := store.CallRecord{Digits: "", Queue: "", Agent: ""}
			if inband {
				want = store.CallRecord{Digits: "1", Queue: "sales", Agent: "1001"}
			}
			if rec.Digits != want.Digits || rec.Queue != want.Queue || rec.Agent != want.Agent {
				t.Errorf("record: digits %q queue %q agent %q; want %q %q %q", rec.Digits, rec.Queue, rec.Agent, want.Digits, want.Queue, want.Agent)
			}
		})
	}
}
