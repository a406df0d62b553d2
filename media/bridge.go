package media

// Bridge is two legs connected to each other, a value of its own: closing it
// parts them, and nothing else in the package needs to know. Legs with the
// same packet time forward on receive (rewritten into the other leg's
// stream, transcoding PCMU<->PCMA, no buffering, no clock); legs with
// different packet times go through a mixer of two, which repacketises on
// the shard clock. Either way telephone events are forwarded with the other
// leg's payload number (dropped if it has none) and still reported on
// DTMF(); an event that began before the bridge (the digit that chose the
// queue) is not forwarded. A prompt played on a bridged leg replaces what it
// would get from the other one until it ends.
type Bridge struct {
	a, b *Leg
	mix  *Mixer // nil when forwarding on receive
}

// NewBridge connects a and b. Playback on both stops; a leg already in
// another bridge or mixer is taken out of it first. A leg must be bridged
// from one goroutine at a time (its call's).
func NewBridge(a, b *Leg) *Bridge {
	br := &Bridge{a: a, b: b}
	if a == nil || b == nil || a == b || a.closed.Load() || b.closed.Load() {
		return br
	}
	a.detach()
	b.detach()
	a.StopPlay()
	b.StopPlay()
	if a.Params().PtimeMS != b.Params().PtimeMS {
		br.mix = a.engine.NewMixer(a)
		br.mix.Add(a, Talk)
		br.mix.Add(b, Talk)
	}
	a.setPeer(b, br)
	b.setPeer(a, br)
	return br
}

// Close parts the legs; each goes on alone (silence, or what it plays).
func (br *Bridge) Close() {
	if br.mix != nil {
		br.mix.Close()
	}
	for _, l := range []*Leg{br.a, br.b} {
		if l != nil && l.state.Load().bridge == br {
			l.setPeer(nil, nil)
		}
	}
}

// detach takes l out of its bridge or mixer.
func (l *Leg) detach() {
	st := l.state.Load()
	if st.bridge != nil {
		st.bridge.Close()
	}
	if st.mixer != nil {
		st.mixer.Remove(l)
	}
}

// setPeer changes where received packets are forwarded, and makes the next
// packet sent on l a new talk spurt (re-anchored, marker set).
func (l *Leg) setPeer(peer *Leg, br *Bridge) {
	l.update(func(st *legState) { st.peer, st.bridge, st.epoch = peer, br, st.epoch+1 })
	l.out.mu.Lock()
	l.out.writer = writerNone
	l.out.mu.Unlock()
}
