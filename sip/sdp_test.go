package sip

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/hotline-pbx/hotline/media"
)

func sdpOf(lines ...string) []byte { return []byte(strings.Join(lines, "\r\n") + "\r\n") }

func TestParseSDP(t *testing.T) {
	head := []string{"v=0", "o=- 1 1 IN IP4 192.0.2.10", "s=-", "c=IN IP4 192.0.2.10", "t=0 0"}
	tests := []struct {
		name    string
		body    []byte
		want    media.Params
		dir     Direction
		wantErr bool
	}{
		{"pcmu static", sdpOf(append(head, "m=audio 4000 RTP/AVP 0 101", "a=rtpmap:101 telephone-event/8000")...),
			media.Params{Remote: netip.MustParseAddrPort("192.0.2.10:4000"), Codec: media.PCMU, PayloadType: 0, DTMFPayloadType: 101, PtimeMS: 20}, SendRecv, false},
		{"offerer order wins: PCMA first", sdpOf(append(head, "m=audio 4000 RTP/AVP 8 0 96", "a=rtpmap:96 telephone-event/8000", "a=ptime:30")...),
			media.Params{Remote: netip.MustParseAddrPort("192.0.2.10:4000"), Codec: media.PCMA, PayloadType: 8, DTMFPayloadType: 96, PtimeMS: 30}, SendRecv, false},
		{"dynamic payload number kept", sdpOf(append(head, "m=audio 4000 RTP/AVP 18 97", "a=rtpmap:97 PCMU/8000")...),
			media.Params{Remote: netip.MustParseAddrPort("192.0.2.10:4000"), Codec: media.PCMU, PayloadType: 97, PtimeMS: 20}, SendRecv, false},
		{"media-level connection and hold", sdpOf("v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0", "m=audio 5000 RTP/AVP 0", "c=IN IP4 198.51.100.7", "a=sendonly"),
			media.Params{Remote: netip.MustParseAddrPort("198.51.100.7:5000"), Codec: media.PCMU, PtimeMS: 20}, SendOnly, false},
		{"RTCP elsewhere (RFC 3605)", sdpOf(append(head, "m=audio 4000 RTP/AVP 0", "a=rtcp:4009 IN IP4 192.0.2.11")...),
			media.Params{Remote: netip.MustParseAddrPort("192.0.2.10:4000"), RTCPRemote: netip.MustParseAddrPort("192.0.2.11:4009"), Codec: media.PCMU, PtimeMS: 20}, SendRecv, false},
		{"RTCP port only", sdpOf(append(head, "m=audio 4000 RTP/AVP 0", "a=rtcp:5005")...),
			media.Params{Remote: netip.MustParseAddrPort("192.0.2.10:4000"), RTCPRemote: netip.MustParseAddrPort("192.0.2.10:5005"), Codec: media.PCMU, PtimeMS: 20}, SendRecv, false},
		{"only G.729", sdpOf(append(head, "m=audio 4000 RTP/AVP 18")...), media.Params{}, "", true},
		{"video only", sdpOf(append(head, "m=video 4000 RTP/AVP 96")...), media.Params{}, "", true},
		{"SRTP profile", sdpOf(append(head, "m=audio 4000 RTP/SAVP 0")...), media.Params{}, "", true},
		{"no connection", sdpOf("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "t=0 0", "m=audio 4000 RTP/AVP 0"), media.Params{}, "", true},
		{"garbage", []byte("hello"), media.Params{}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSDP(tt.body)
			if tt.wantErr {
				if !errors.Is(err, ErrNotAcceptable) {
					t.Fatalf("err = %v, want ErrNotAcceptable", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Params != tt.want || got.Direction != tt.dir {
				t.Errorf("got %+v %s, want %+v %s", got.Params, got.Direction, tt.want, tt.dir)
			}
		})
	}
}

func TestAnswerRoundTrip(t *testing.T) {
	offer := Session{Params: media.Params{Remote: netip.MustParseAddrPort("192.0.2.10:4000"), Codec: media.PCMA, PayloadType: 8, DTMFPayloadType: 96, PtimeMS: 30}, Direction: SendOnly}
	local := netip.MustParseAddrPort("127.0.0.1:10002")
	got, err := ParseSDP(AnswerSDP(local, offer))
	if err != nil {
		t.Fatal(err)
	}
	want := media.Params{Remote: local, Codec: media.PCMA, PayloadType: 8, DTMFPayloadType: 96, PtimeMS: 30}
	if got.Params != want || got.Direction != RecvOnly {
		t.Errorf("answer parses to %+v %s, want %+v recvonly", got.Params, got.Direction, want)
	}
	off, err := ParseSDP(OfferSDP(local, media.PCMA))
	if err != nil || off.Params.Codec != media.PCMA || off.Params.DTMFPayloadType != 101 {
		t.Errorf("offer parses to %+v, %v", off.Params, err)
	}
}

func FuzzParseSDP(f *testing.F) {
	f.Add(OfferSDP(netip.MustParseAddrPort("127.0.0.1:10000"), media.PCMU))
	f.Add(sdpOf("v=0", "o=- 1 1 IN IP4 1.2.3.4", "s=-", "c=IN IP4 1.2.3.4/127", "t=0 0", "m=audio 70000 RTP/AVP 0"))
	f.Add([]byte("m=audio 1 RTP/AVP 300\r\na=rtpmap:300 PCMU/8000\r\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := ParseSDP(body)
		if err == nil && (!s.Params.Remote.IsValid() || s.Params.Remote.Port() == 0) {
			t.Fatalf("accepted an unusable address %v", s.Params.Remote)
		}
	})
}

// RFC 3264 §6: the answer has exactly the offer's m= lines, in order; the
// ones we refuse carry port 0.
func TestAnswerKeepsEveryMediaLine(t *testing.T) {
	offer := sdpOf("v=0", "o=- 7 7 IN IP4 192.0.2.10", "s=-", "c=IN IP4 192.0.2.10", "t=0 0",
		"m=video 5002 RTP/AVP 96", "a=rtpmap:96 H264/90000",
		"m=audio 4000 RTP/AVP 9 8 101", "a=rtpmap:101 telephone-event/8000",
		"m=audio 4002 RTP/AVP 0",
		"m=application 5004 UDP/BFCP *")
	s, err := ParseSDP(offer)
	if err != nil {
		t.Fatal(err)
	}
	if s.Params.Remote.Port() != 4000 || s.Params.Codec != media.PCMA {
		t.Fatalf("took %+v, want the first audio stream at 4000 with PCMA", s.Params)
	}
	answer := string(NewLocalSDP(netip.MustParseAddrPort("127.0.0.1:10002")).Answer(s))
	var mlines []string
	for _, l := range strings.Split(answer, "\r\n") {
		if strings.HasPrefix(l, "m=") {
			mlines = append(mlines, l)
		}
	}
	want := []string{"m=video 0 RTP/AVP 96", "m=audio 10002 RTP/AVP 8 101", "m=audio 0 RTP/AVP 0", "m=application 0 UDP/BFCP *"}
	if strings.Join(mlines, "|") != strings.Join(want, "|") {
		t.Errorf("answer m= lines:\n got %q\nwant %q", mlines, want)
	}
	if _, err := ParseSDP([]byte(answer)); err != nil {
		t.Errorf("our answer does not parse: %v", err)
	}
}

// A refresh keeps the o= version; a change moves it on; the id never changes.
func TestLocalOriginVersion(t *testing.T) {
	l := NewLocalSDP(netip.MustParseAddrPort("127.0.0.1:10002"))
	origin := func(body []byte) (id, version string) {
		for _, line := range strings.Split(string(body), "\r\n") {
			if f := strings.Fields(line); len(f) > 2 && strings.HasPrefix(line, "o=") {
				return f[1], f[2]
			}
		}
		t.Fatalf("no o= line in %q", body)
		return
	}
	offer, err := ParseSDP(OfferSDP(netip.MustParseAddrPort("192.0.2.10:4000"), media.PCMU))
	if err != nil {
		t.Fatal(err)
	}
	id1, v1 := origin(l.Answer(offer))
	id2, v2 := origin(l.Answer(offer))
	offer.Direction = SendOnly // the peer puts us on hold
	id3, v3 := origin(l.Answer(offer))
	if id1 != id2 || id2 != id3 {
		t.Errorf("session id changed: %s %s %s", id1, id2, id3)
	}
	if v1 != v2 {
		t.Errorf("version moved on for the same answer: %s -> %s", v1, v2)
	}
	if v3 == v2 {
		t.Errorf("version %s kept for a changed answer", v3)
	}
}

// Hold, whichever way the peer says it.
func TestHoldDirections(t *testing.T) {
	head := []string{"v=0", "o=- 1 2 IN IP4 192.0.2.10", "s=-", "t=0 0", "m=audio 4000 RTP/AVP 0"}
	for _, tt := range []struct {
		name  string
		extra []string
		local Direction
		held  bool
	}{
		{"sendrecv", []string{"c=IN IP4 192.0.2.10"}, SendRecv, false},
		{"sendonly", []string{"c=IN IP4 192.0.2.10", "a=sendonly"}, RecvOnly, true},
		{"inactive", []string{"c=IN IP4 192.0.2.10", "a=inactive"}, Inactive, true},
		{"recvonly", []string{"c=IN IP4 192.0.2.10", "a=recvonly"}, SendOnly, false},
		{"null address", []string{"c=IN IP4 0.0.0.0"}, RecvOnly, true},
		{"null address and sendonly", []string{"c=IN IP4 0.0.0.0", "a=sendonly"}, RecvOnly, true},
	} {
		s, err := ParseSDP(sdpOf(append(head, tt.extra...)...))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if s.LocalDirection() != tt.local || s.Held() != tt.held || s.Origin != "1 2" {
			t.Errorf("%s: local %s held %v origin %q, want %s %v \"1 2\"", tt.name, s.LocalDirection(), s.Held(), s.Origin, tt.local, tt.held)
		}
		answer, err := ParseSDP(NewLocalSDP(netip.MustParseAddrPort("127.0.0.1:10002")).Answer(s))
		if err != nil || answer.Direction != tt.local {
			t.Errorf("%s: answer says %s (%v), want %s", tt.name, answer.Direction, err, tt.local)
		}
	}
}
