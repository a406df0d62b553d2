package pbx

import (
	"errors"
	"time"

	"github.com/hotline-pbx/hotline/media"
	"github.com/hotline-pbx/hotline/sip"
)

// Feature codes an agent dials from their own phone (authenticated as
// themselves). The full set, with reasons and dispositions, comes with the
// ACD issue; these let an agent take a break and come back, including out
// of the automatic "no-answer" pause.
const (
	codePause = "*47" // pause (reason "break")
	codeReady = "*48" // ready: end a pause
)

// Confirmation tones: two rising beeps for done, one low tone for refused.
var (
	toneDone    = media.NewPrompt("feature-done", concat(media.Tone(880, 150*time.Millisecond, 0.3), make([]int16, 400), media.Tone(1320, 150*time.Millisecond, 0.3)))
	toneRefused = media.NewPrompt("feature-refused", media.Tone(400, 600*time.Millisecond, 0.3))
)

var errUnknownCode = errors.New("unknown feature code")

// featureCall runs an agent's feature code: it changes the agent's state,
// plays a tone saying whether that worked, and hangs up.
func (s *Switch) featureCall(in *sip.InboundCall) {
	log := s.log.With("agent", in.Agent, "code", in.DID)
	var err error
	switch in.DID {
	case codeReady:
		err = s.acd.Resume(in.Agent)
	case codePause:
		err = s.acd.Pause(in.Agent, "break")
	default:
		err = errUnknownCode
	}
	tone := toneDone
	if err != nil {
		tone = toneRefused
		log.Info("feature code refused", "error", err)
	} else {
		log.Info("feature code")
	}
	_ = in.Leg.Play(in.Context(), tone)
	in.Hangup()
}

func concat(parts ...[]int16) []int16 {
	var out []int16
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
