package e2e

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/zaf/g711"
)

// wavFile is a 16-bit PCM WAV: Data holds interleaved little-endian samples.
type wavFile struct {
	Rate     int
	Channels int
	Data     []byte
}

// parseWAV reads a RIFF/WAVE file of 16-bit PCM. A data chunk whose size runs past
// the end of the file (a writer that was stopped before it fixed the header) is
// read to the end of the file.
func parseWAV(b []byte) (wavFile, error) {
	var w wavFile
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return w, errors.New("not a RIFF/WAVE file")
	}
	for off := 12; off+8 <= len(b); {
		id, size := string(b[off:off+4]), le32(b[off+4:off+8])
		body := b[off+8:]
		switch id {
		case "fmt ":
			if size < 16 || len(body) < 16 {
				return w, errors.New("short fmt chunk")
			}
			format, bits := le16(body[0:2]), le16(body[14:16])
			if (format != 1 && format != 0xFFFE) || bits != 16 {
				return w, fmt.Errorf("want 16-bit PCM, have format %d with %d bits", format, bits)
			}
			w.Channels, w.Rate = le16(body[2:4]), le32(body[4:8])
			if w.Channels < 1 || w.Rate < 1 {
				return w, fmt.Errorf("bad fmt: %d channels at %d Hz", w.Channels, w.Rate)
			}
		case "data":
			if w.Channels == 0 {
				return w, errors.New("data chunk before fmt chunk")
			}
			if size > len(body) || size == 0 {
				size = len(body)
			}
			w.Data = body[:size-size%(2*w.Channels)]
			return w, nil
		}
		if size > len(body) {
			break
		}
		off += 8 + size + size%2
	}
	return w, errors.New("no data chunk")
}

// readWAVMono reads a WAV file and mixes its channels into one signal (sum, so a
// stereo recording of caller and agent is what a listener of both would hear).
func readWAVMono(path string) (samples []float64, rate int, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	w, err := parseWAV(b)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	frames := len(w.Data) / (2 * w.Channels)
	samples = make([]float64, frames)
	for i := range frames {
		for c := range w.Channels {
			at := 2 * (i*w.Channels + c)
			samples[i] += float64(int16(binary.LittleEndian.Uint16(w.Data[at:])))
		}
	}
	return samples, w.Rate, nil
}

// rtpPacket is one RTP packet out of a capture.
type rtpPacket struct {
	PayloadType uint8
	Payload     []byte
}

// pcapRTP returns the RTP packets of the IPv4/UDP frames in a classic pcap file
// (Ethernet, Linux cooked or raw IP link types).
func pcapRTP(b []byte) ([]rtpPacket, error) {
	if len(b) < 24 {
		return nil, errors.New("short pcap header")
	}
	var order binary.ByteOrder
	switch binary.LittleEndian.Uint32(b) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		order = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		order = binary.BigEndian
	default:
		return nil, errors.New("not a pcap file")
	}
	var linkHeader int
	switch link := order.Uint32(b[20:24]); link {
	case 1: // Ethernet
		linkHeader = 14
	case 113: // Linux cooked capture
		linkHeader = 16
	case 101: // raw IP
		linkHeader = 0
	default:
		return nil, fmt.Errorf("link type %d not supported", link)
	}
	var out []rtpPacket
	for off := 24; off+16 <= len(b); {
		n := int(order.Uint32(b[off+8 : off+12]))
		off += 16
		if n > len(b)-off {
			return out, errors.New("truncated packet record")
		}
		frame := b[off : off+n]
		off += n
		if len(frame) < linkHeader+20 {
			continue
		}
		ip := frame[linkHeader:]
		ihl := int(ip[0]&0x0f) * 4
		if ip[0]>>4 != 4 || ip[9] != 17 || ihl < 20 || len(ip) < ihl+8+12 {
			continue // not IPv4/UDP with room for an RTP header
		}
		rtp := ip[ihl+8:]
		if rtp[0]>>6 != 2 {
			continue
		}
		header := 12 + 4*int(rtp[0]&0x0f)
		if rtp[0]&0x10 != 0 && len(rtp) >= header+4 { // header extension
			header += 4 + 4*int(binary.BigEndian.Uint16(rtp[header+2:]))
		}
		if header > len(rtp) {
			continue
		}
		out = append(out, rtpPacket{PayloadType: rtp[1] & 0x7f, Payload: rtp[header:]})
	}
	return out, nil
}

// alawSpeech decodes the PCMA (payload type 8) packets of a capture, in order.
func alawSpeech(packets []rtpPacket) []float64 {
	var out []float64
	for _, p := range packets {
		if p.PayloadType != 8 {
			continue
		}
		for _, s := range p.Payload {
			out = append(out, float64(g711.DecodeAlawFrame(s)))
		}
	}
	return out
}

func rms(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	var sum float64
	for _, v := range x {
		sum += v * v
	}
	return math.Sqrt(sum / float64(len(x)))
}

func dB(ratio float64) float64 { return 20 * math.Log10(ratio) }

// goertzelPower is |X_k|^2 of the DFT of x at freq: the power of that frequency
// in x, times len(x)^2/4 for a sine of amplitude 1.
func goertzelPower(x []float64, freq float64, rate int) float64 {
	coeff := 2 * math.Cos(2*math.Pi*freq/float64(rate))
	var s1, s2 float64
	for _, v := range x {
		s1, s2 = v+coeff*s1-s2, s1
	}
	return s1*s1 + s2*s2 - coeff*s1*s2
}

// frameLen is 10 ms of samples: 1000 Hz is then exactly DFT bin 10 whatever the
// rate, so all of a 1000 Hz tone's energy in a frame is in bins 10 and N-10.
func frameLen(rate int) int { return rate / 100 }

// toneShare is the fraction of x's energy that is at freq (a multiple of 100 Hz),
// frame by frame (Parseval: the two DFT bins hold 2|X_k|^2/N of the energy).
func toneShare(x []float64, freq float64, rate int) float64 {
	n := frameLen(rate)
	var total, tone float64
	for start := 0; start+n <= len(x); start += n {
		f := x[start : start+n]
		for _, v := range f {
			total += v * v
		}
		tone += 2 * goertzelPower(f, freq, rate) / float64(n)
	}
	if total == 0 {
		return 0
	}
	return tone / total
}

// envelope is the RMS of each 10 ms frame with the energy at removeFreq (if not 0)
// taken out, so a steady tone mixed in does not hide the speech's shape.
func envelope(x []float64, rate int, removeFreq float64) []float64 {
	n := frameLen(rate)
	var env []float64
	for start := 0; start+n <= len(x); start += n {
		f := x[start : start+n]
		var energy float64
		for _, v := range f {
			energy += v * v
		}
		if removeFreq != 0 {
			energy = max(0, energy-2*goertzelPower(f, removeFreq, rate)/float64(n))
		}
		env = append(env, math.Sqrt(energy/float64(n)))
	}
	return env
}

// alignment is where a reference envelope best matches inside another.
type alignment struct {
	Lag     int     // frame of got where ref's frame 0 falls (may be negative)
	Overlap int     // frames compared
	Corr    float64 // Pearson correlation over the overlap
}

// bestAlignment slides ref along got and returns the lag with the highest
// correlation among those overlapping at least minOverlap frames.
func bestAlignment(ref, got []float64, minOverlap int) alignment {
	best := alignment{Corr: math.Inf(-1)}
	for lag := minOverlap - len(ref); lag <= len(got)-minOverlap; lag++ {
		from, to := max(0, -lag), min(len(ref), len(got)-lag)
		if to-from < minOverlap {
			continue
		}
		if c := pearson(ref[from:to], got[from+lag:to+lag]); c > best.Corr {
			best = alignment{Lag: lag, Overlap: to - from, Corr: c}
		}
	}
	return best
}

func pearson(a, b []float64) float64 {
	n := float64(len(a))
	var sa, sb float64
	for i := range a {
		sa += a[i]
		sb += b[i]
	}
	ma, mb := sa/n, sb/n
	var cov, va, vb float64
	for i := range a {
		da, db := a[i]-ma, b[i]-mb
		cov += da * db
		va += da * da
		vb += db * db
	}
	if va == 0 || vb == 0 {
		return 0
	}
	return cov / math.Sqrt(va*vb)
}
