package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pion/rtp"
)

// Talk-off: speech and music must never pass for a key. The corpus is what a
// trunk leg can hear: the demo prompts (a carrier echoing them back), the
// music on hold, and the speech in SIPp's G.711 capture.

// sippSpeech is the A-law speech capture Debian's sip-tester ships
// (installed by scripts/install-test-deps.sh).
const sippSpeech = "/usr/share/sip-tester/g711a.pcap"

// talkOff runs a detector over pcm in 20 ms frames and returns the keys it
// reported and how many single blocks heard a key (a measure of margin:
// a report needs two in a row).
func talkOff(pcm []int16) (keys string, blocks int) {
	var got []byte
	d := NewDTMFDetector(func(k byte) { got = append(got, k) })
	for i := 0; i < len(pcm); i += 160 {
		d.WriteAudio(pcm[i:min(i+160, len(pcm))])
	}
	probe := NewDTMFDetector(nil)
	for i := 0; i+dtmfBlockSamples <= len(pcm); i += dtmfBlockSamples {
		for j, s := range pcm[i : i+dtmfBlockSamples] {
			probe.block[j] = float32(s) / 32768
		}
		if probe.analyse() != 0 {
			blocks++
		}
	}
	return string(got), blocks
}

func TestDTMFDetectorIgnoresPromptsAndMusic(t *testing.T) {
	prompts, _ := loadDemoPrompts(t)
	total := 0
	for _, name := range slices.Sorted(maps.Keys(prompts)) {
		for _, c := range []Codec{PCMU, PCMA} {
			pcm := heardPCM(prompts[name], c)
			if name == "moh.wav" {
				pcm = append(append(pcm, pcm...), pcm...) // the loop seams too
			}
			keys, blocks := talkOff(pcm)
			total += len(keys)
			t.Logf("%s as %s, %.1f s: %d false keys %q, %d blocks of %d heard a key alone",
				name, c, float64(len(pcm))/SampleRate, len(keys), keys, blocks, len(pcm)/dtmfBlockSamples)
			if keys != "" {
				t.Errorf("%s as %s: heard keys %q in a prompt", name, c, keys)
			}
		}
	}
	t.Logf("false keys in the demo prompts and music on hold: %d", total)
}

func TestDTMFDetectorIgnoresSpeech(t *testing.T) {
	data, err := os.ReadFile(sippSpeech)
	if err != nil {
		if os.Getenv("HOTLINE_SKIP_REAL_PEERS") == "1" {
			t.Skipf("%s: %v (HOTLINE_SKIP_REAL_PEERS=1)", sippSpeech, err)
		}
		t.Fatalf("the speech capture of sip-tester is missing (%v): run scripts/install-test-deps.sh "+
			"(apt-get install sip-tester), or set HOTLINE_SKIP_REAL_PEERS=1 to skip", err)
	}
	streams, err := rtpFromPcap(data)
	if err != nil {
		t.Fatal(err)
	}
	speech := streams[PCMA]
	if len(speech) < 5*SampleRate {
		t.Fatalf("%s: %d samples of A-law, want several seconds of speech", sippSpeech, len(speech))
	}
	keys, blocks := talkOff(speech)
	t.Logf("%s, %.2f s of speech: %d false keys %q, %d blocks of %d heard a key alone",
		filepath.Base(sippSpeech), float64(len(speech))/SampleRate, len(keys), keys, blocks, len(speech)/dtmfBlockSamples)
	if keys != "" {
		t.Errorf("heard keys %q in speech", keys)
	}
	// Louder and quieter talkers too.
	for _, gain := range []float64{4, 0.25} {
		loud := make([]int16, len(speech))
		for i, s := range speech {
			loud[i] = toInt16(float32(float64(s) * gain / 32768))
		}
		if keys, _ := talkOff(loud); keys != "" {
			t.Errorf("speech at %vx: heard keys %q", gain, keys)
		}
	}
}

// rtpFromPcap decodes the G.711 RTP audio of a classic pcap file (Ethernet,
// IPv4, UDP), by codec, in capture order.
func rtpFromPcap(data []byte) (map[Codec][]int16, error) {
	if len(data) < 24 {
		return nil, errors.New("pcap: short file")
	}
	var order binary.ByteOrder = binary.LittleEndian
	switch binary.LittleEndian.Uint32(data) {
	case 0xa1b2c3d4, 0xa1b23c4d:
	case 0xd4c3b2a1, 0x4d3cb2a1:
		order = binary.BigEndian
	default:
		return nil, errors.New("pcap: not a pcap file")
	}
	if link := order.Uint32(data[20:]); link != 1 {
		return nil, fmt.Errorf("pcap: link type %d, want Ethernet", link)
	}
	out := map[Codec][]int16{}
	var pkt rtp.Packet
	for rest := data[24:]; len(rest) >= 16; {
		n := int(order.Uint32(rest[8:]))
		if n > len(rest)-16 {
			return nil, errors.New("pcap: truncated record")
		}
		frame := rest[16 : 16+n]
		rest = rest[16+n:]
		udp, ok := udpPayload(frame)
		if !ok || pkt.Unmarshal(udp) != nil {
			continue
		}
		if c := Codec(pkt.PayloadType); c == PCMU || c == PCMA {
			pcm := make([]int16, len(pkt.Payload))
			DecodeFrame(c, pcm, pkt.Payload)
			out[c] = append(out[c], pcm...)
		}
	}
	return out, nil
}

// udpPayload returns the UDP payload of an Ethernet frame carrying IPv4.
func udpPayload(frame []byte) ([]byte, bool) {
	if len(frame) < 14+20 || binary.BigEndian.Uint16(frame[12:]) != 0x0800 {
		return nil, false
	}
	ip := frame[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[0]>>4 != 4 || ip[9] != 17 || ihl < 20 || len(ip) < ihl+8 {
		return nil, false
	}
	udp := ip[ihl:]
	length := int(binary.BigEndian.Uint16(udp[4:]))
	if length < 8 || length > len(udp) {
		return nil, false
	}
	return udp[8:length], true
}
