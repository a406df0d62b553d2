package pbx

import "github.com/hotline-pbx/hotline/media"

// listenForKeyTones puts an in-band DTMF detector on the caller's leg when
// the call's trunk sends keys as tones in the audio (inband_dtmf): the keys
// it hears reach the IVR as RFC 4733 ones do. It listens for the whole
// call, beside the recorder once an agent answers.
func (c *call) listenForKeyTones() {
	if c.in.Trunk == nil || !c.in.Trunk.InbandDTMF {
		return
	}
	leg := c.in.Leg
	leg.AddTap(media.NewDTMFDetector(func(digit byte) { _ = leg.InjectDTMF(digit) }))
	c.log.Debug("listening for in-band DTMF")
}
