package pbx

import "github.com/hotline-pbx/hotline/media"

// listenForKeyTones puts an in-band DTMF detector on the caller's leg when
// the call's trunk sends keys as tones in the audio (inband_dtmf): the keys
// it hears reach the IVR as RFC 4733 ones do. A leg has a single tap for
// now, which the recorder takes when an agent answers; talk removes the
// detector then (fan-out taps will let both listen).
func (c *call) listenForKeyTones() {
	if c.in.Trunk == nil || !c.in.Trunk.InbandDTMF {
		return
	}
	leg := c.in.Leg
	leg.SetTap(media.NewDTMFDetector(func(digit byte) { _ = leg.InjectDTMF(digit) }))
	c.log.Debug("listening for in-band DTMF")
}
