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
