package sip_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/hotline-pbx/hotline/config"
	"github.com/hotline-pbx/hotline/media"
	hsip "github.com/hotline-pbx/hotline/sip"
	"github.com/hotline-pbx/hotline/sip/siptest"
)

// holdHandler keeps every answered call up until the caller hangs up.
type holdHandler struct{}

func (holdHandler) HandleCall(c *hsip.InboundCall) { <-c.Context().Done() }

func startHolding(t *testing.T, adjust ...func(*config.Config)) *hsip.Server {
	return startServerWith(t, holdHandler{}, adjust...)
}

func offerFrom(addr string, dir hsip.Direction) []byte {
	return hsip.NewLocalSDP(netip.MustParseAddrPort(addr)).OfferDirection(media.PCMU, dir)
}

// established places a call from a raw carrier and ACKs its 200.
func established(t *testing.T, srv *hsip.Server, carrier *siptest.RawPhone) (*siptest.RawCall, *sip.Response) {
	t.Helper()
	call := carrier.Invite(srv.Addr(), "+15550100", offerFrom("127.0.0.1:39000", hsip.SendRecv))
	res, ok := call.Final(5*time.Second, sip.INVITE, 0)
	if !ok || res.StatusCode != 200 {
		t.Fatalf("INVITE: %v", res)
	}
	call.Send(call.Request(sip.ACK, nil))
	return call, res
}

// What every response of ours carries, and what a real peer sees of
// re-INVITEs: the 2xx retransmitted until ACKed, 491 while an exchange is
// pending, 500 for a CSeq going backwards, Contact in every 2xx.
func TestReinviteAsAPeerSeesIt(t *testing.T) {
	srv := startHolding(t, func(c *config.Config) { c.SIP.UserAgent = "hotline-test/1" })
	carrier := siptest.NewRawPhone(t, "127.0.0.1", "+15557777")
	call, res := established(t, srv, carrier)
	for _, h := range []string{"Server", "Allow", "Supported", "Contact"} {
		if res.GetHeader(h) == nil {
			t.Errorf("200 to INVITE has no %s header", h)
		}
	}
	if got := res.GetHeader("Server").Value(); got != "hotline-test/1" {
		t.Errorf("Server: %q, want sip.user_agent", got)
	}
	if allow := res.GetHeader("Allow").Value(); !strings.Contains(allow, "UPDATE") || !strings.Contains(allow, "INFO") {
		t.Errorf("Allow: %q", allow)
	}

	hold := call.Request(sip.INVITE, offerFrom("127.0.0.1:39000", hsip.SendOnly))
	call.Send(hold)
	first, ok := call.Final(3*time.Second, sip.INVITE, hold.CSeq().SeqNo)
	if !ok || first.StatusCode != 200 || first.Contact() == nil || !strings.Contains(string(first.Body()), "a=recvonly") {
		t.Fatalf("hold re-INVITE answered %v", first)
	}
	for i := 1; i <= 2; i++ { // at T1, then 2*T1 later (RFC 3261 §13.3.1.4)
		if again, ok := call.Final(3*time.Second, sip.INVITE, hold.CSeq().SeqNo); !ok || again.StatusCode != 200 {
			t.Fatalf("the 2xx to the re-INVITE was not retransmitted a %d. time while unACKed", i)
		}
	}
	glare := call.Request(sip.INVITE, offerFrom("127.0.0.1:39000", hsip.SendRecv))
	call.Send(glare)
	if res, ok := call.Final(3*time.Second, sip.INVITE, glare.CSeq().SeqNo); !ok || res.StatusCode != 491 {
		t.Errorf("re-INVITE during a pending one: %v, want 491", res)
	}
	ack := call.Request(sip.ACK, nil)
	ack.CSeq().SeqNo = hold.CSeq().SeqNo
	call.Send(ack)
	time.Sleep(100 * time.Millisecond)
	for { // drop what crossed the ACK
		if _, ok := carrier.Next(0, func(sip.Message) bool { return true }); !ok {
			break
		}
	}
	if _, again := call.Final(1500*time.Millisecond, sip.INVITE, hold.CSeq().SeqNo); again {
		t.Error("the 2xx was still retransmitted after the ACK")
	}

	old := call.CSeq()
	call.SetCSeq(1) // next request goes out with CSeq 2, below the last
	stale := call.Request(sip.INVITE, offerFrom("127.0.0.1:39000", hsip.SendRecv))
	call.Send(stale)
	if res, ok := call.Final(3*time.Second, sip.INVITE, stale.CSeq().SeqNo); !ok || res.StatusCode != 500 {
		t.Errorf("re-INVITE with a CSeq going backwards: %v, want 500", res)
	}
	call.SetCSeq(old + 5)

	update := call.Request(sip.UPDATE, offerFrom("127.0.0.1:39002", hsip.SendRecv))
	call.Send(update)
	if res, ok := call.Final(3*time.Second, sip.UPDATE, 0); !ok || res.StatusCode != 200 || !strings.Contains(string(res.Body()), "a=sendrecv") {
		t.Errorf("UPDATE with an offer: %v", res)
	}
	info := call.Request(sip.INFO, []byte("<x/>"))
	info.ReplaceHeader(sip.NewHeader("Content-Type", "application/media_control+xml"))
	call.Send(info)
	if res, ok := call.Final(3*time.Second, sip.INFO, 0); !ok || res.StatusCode != 415 {
		t.Errorf("INFO with a body we do not know: %v, want 415", res)
	}
	publish := call.Request("PUBLISH", nil)
	call.Send(publish)
	if res, ok := call.Final(3*time.Second, "PUBLISH", 0); !ok || res.StatusCode != 405 || res.GetHeader("Allow") == nil {
		t.Errorf("PUBLISH: %v, want 405 with Allow", res)
	}
	call.Send(call.Request(sip.BYE, nil))
	if res, ok := call.Final(3*time.Second, sip.BYE, 0); !ok || res.StatusCode != 200 {
		t.Errorf("BYE: %v", res)
	}
}

// An offer with video and a second audio stream: the answer has the same
// m= lines, the refused ones with port 0.
func TestAnswerRefusesExtraStreams(t *testing.T) {
	srv := startHolding(t)
	carrier := siptest.NewRawPhone(t, "127.0.0.1", "+15557777")
	body := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=video 39010 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n" +
		"m=audio 39000 RTP/AVP 0\r\n" +
		"m=audio 39004 RTP/AVP 8\r\n"
	call := carrier.Invite(srv.Addr(), "+15550100", []byte(body))
	res, ok := call.Final(5*time.Second, sip.INVITE, 0)
	if !ok || res.StatusCode != 200 {
		t.Fatalf("INVITE: %v", res)
	}
	call.Send(call.Request(sip.ACK, nil))
	var mlines []string
	for _, l := range strings.Split(string(res.Body()), "\r\n") {
		if strings.HasPrefix(l, "m=") {
			mlines = append(mlines, l)
		}
	}
	if len(mlines) != 3 || !strings.HasPrefix(mlines[0], "m=video 0 ") || strings.HasPrefix(mlines[1], "m=audio 0 ") || !strings.HasPrefix(mlines[2], "m=audio 0 ") {
		t.Errorf("answer m= lines %q, want video refused, first audio taken, second refused", mlines)
	}
	call.Send(call.Request(sip.BYE, nil))
}

// A delayed offer whose ACK brings no answer ends the call with a BYE.
func TestDelayedOfferWithoutAnswerIsHungUp(t *testing.T) {
	srv := startHolding(t)
	carrier := siptest.NewRawPhone(t, "127.0.0.1", "+15557777")
	call := carrier.Invite(srv.Addr(), "+15550100", nil)
	res, ok := call.Final(5*time.Second, sip.INVITE, 0)
	if !ok || res.StatusCode != 200 {
		t.Fatalf("INVITE without SDP: %v, want 200 with our offer", res)
	}
	if _, err := hsip.ParseSDP(res.Body()); err != nil {
		t.Fatalf("the 200 carries no usable offer: %v", err)
	}
	call.Send(call.Request(sip.ACK, nil))
	bye, ok := carrier.Next(5*time.Second, siptest.Method(sip.BYE))
	if !ok {
		t.Fatal("no BYE for a call that never got an answer")
	}
	if bye.Request().GetHeader("User-Agent") == nil {
		t.Error("our BYE says nothing of who we are (User-Agent)")
	}
	carrier.Respond(bye, 200, "OK", nil)
}

// A re-INVITE without SDP (a delayed offer inside the dialog, as some
// phones send to refresh a session) gets our offer in the 200; the answer
// in the ACK is taken, and an ACK without one ends the call.
func TestReinviteWithoutSDP(t *testing.T) {
	srv := startHolding(t)
	carrier := siptest.NewRawPhone(t, "127.0.0.1", "+15557777")
	call, _ := established(t, srv, carrier)
	refresh := call.Request(sip.INVITE, nil)
	call.Send(refresh)
	res, ok := call.Final(3*time.Second, sip.INVITE, refresh.CSeq().SeqNo)
	if !ok || res.StatusCode != 200 {
		t.Fatalf("re-INVITE without SDP: %v", res)
	}
	offer, err := hsip.ParseSDP(res.Body())
	if err != nil {
		t.Fatalf("the 200 carries no usable offer: %v", err)
	}
	ack := call.Request(sip.ACK, hsip.AnswerSDP(netip.MustParseAddrPort("127.0.0.1:39000"), offer))
	ack.CSeq().SeqNo = refresh.CSeq().SeqNo
	call.Send(ack)
	if _, hungUp := carrier.Next(time.Second, siptest.Method(sip.BYE)); hungUp {
		t.Fatal("hung up although the ACK carried an answer")
	}

	bad := call.Request(sip.INVITE, nil)
	call.Send(bad)
	if res, ok := call.Final(3*time.Second, sip.INVITE, bad.CSeq().SeqNo); !ok || res.StatusCode != 200 {
		t.Fatalf("second re-INVITE without SDP: %v", res)
	}
	noAnswer := call.Request(sip.ACK, nil)
	noAnswer.CSeq().SeqNo = bad.CSeq().SeqNo
	call.Send(noAnswer)
	bye, ok := carrier.Next(3*time.Second, siptest.Method(sip.BYE))
	if !ok {
		t.Fatal("an ACK without the answer to our offer did not end the call")
	}
	carrier.Respond(bye, 200, "OK", nil)
}
