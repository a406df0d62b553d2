package pbx

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"time"

	"github.com/hotline-pbx/hotline/media"
	"github.com/hotline-pbx/hotline/store"
)

// A call is a session: it owns its legs and writes down what happens to it
// as typed events, in order. The call record is built from those events in
// one place (record), so no field is set from six places, and the events
// are what queue statistics and the wallboard will be built from later.

type eventKind uint8

const (
	evAnswered   eventKind = iota // we answered the caller
	evDigits                      // the caller chose in a menu
	evQueued                      // joined a queue
	evOffered                     // an agent's phones rang
	evOfferEnded                  // that offer failed (detail says how)
	evConnected                   // an agent answered and was bridged
	evHeld                        // one side put the other on hold
	evResumed                     // and took it back
	evEnded                       // the call is over (cause, side)
)

// event is one thing that happened to a call.
type event struct {
	kind   eventKind
	at     time.Time
	queue  string
	agent  string
	digits string
	detail string // offer outcome, who held
	cause  store.Cause
	side   store.Side
}

// session is one call's history; the call goroutine writes it, the
// recording path and status readers may read it.
type session struct {
	id string // internal call id; the SIP Call-ID is an attribute

	mu       sync.Mutex
	base     store.CallRecord // what does not change: ids, numbers, trunk
	events   []event
	recPath  string
	finished bool
	// The audio quality of the caller's and the agent's leg, taken once
	// when that leg's part of the call is over.
	callerQuality, agentQuality media.Quality
}

func newSession(base store.CallRecord) *session {
	base.ID = newCallID()
	return &session{id: base.ID, base: base}
}

// newCallID is a random 128-bit id, hex.
func newCallID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// note appends an event stamped now (unless it carries a time).
func (s *session) note(e event) {
	if e.at.IsZero() {
		e.at = time.Now()
	}
	s.mu.Lock()
	if !s.finished {
		s.events = append(s.events, e)
		s.finished = e.kind == evEnded
	}
	s.mu.Unlock()
}

// ended reports whether an evEnded is recorded (its cause wins over later guesses).
func (s *session) ended() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.finished
}

func (s *session) setRecording(path string) {
	s.mu.Lock()
	s.recPath = path
	s.mu.Unlock()
}

// setQuality keeps the audio figures of the caller's or the agent's leg.
func (s *session) setQuality(side store.Side, q media.Quality) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch side {
	case store.SideCaller:
		s.callerQuality = q
	case store.SideAgent:
		s.agentQuality = q
	}
}

// record builds the call record from the events so far: open (no End) until
// evEnded.
func (s *session) record() store.CallRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.base
	r.RecordingPath = s.recPath
	r.CallerPackets, r.CallerLossPct, r.CallerJitterMS, r.CallerRTTMS = qualityFigures(s.callerQuality)
	r.AgentPackets, r.AgentLossPct, r.AgentJitterMS, r.AgentRTTMS = qualityFigures(s.agentQuality)
	var queued, connected time.Time
	for _, e := range s.events {
		switch e.kind {
		case evDigits:
			r.Digits += e.digits
		case evQueued:
			r.Queue, queued = e.queue, e.at
		case evConnected:
			r.Agent, r.Answer, connected = e.agent, e.at, e.at
		case evEnded:
			r.End, r.HangupCause, r.HangupSide = e.at, e.cause, e.side
		}
	}
	switch {
	case !queued.IsZero() && !connected.IsZero():
		r.WaitSeconds = connected.Sub(queued).Seconds()
	case !queued.IsZero() && !r.End.IsZero():
		// Noted when the caller left, not when a stalled CANCEL to a
		// ringing phone finally completed.
		r.WaitSeconds = r.End.Sub(queued).Seconds()
	}
	if !connected.IsZero() && !r.End.IsZero() {
		r.TalkSeconds = r.End.Sub(connected).Seconds()
	}
	return r
}

// qualityFigures are the figures of a leg's quality that a call record keeps:
// how the party's audio reached us, and the round trip to it.
func qualityFigures(q media.Quality) (packets int64, lossPct, jitterMS, rttMS float64) {
	return q.PacketsReceived, q.LossPercent, q.JitterMS, q.RTTMS
}

// LogValue gives the record's key facts for the "call ended" line.
func (r recordLine) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("digits", r.Digits), slog.String("queue", r.Queue), slog.String("agent", r.Agent),
		slog.String("cause", string(r.HangupCause)), slog.String("side", string(r.HangupSide)),
		slog.Float64("wait_s", r.WaitSeconds), slog.Float64("talk_s", r.TalkSeconds),
		slog.Float64("caller_loss_pct", r.CallerLossPct), slog.Float64("caller_jitter_ms", r.CallerJitterMS),
		slog.Float64("agent_loss_pct", r.AgentLossPct), slog.Float64("agent_jitter_ms", r.AgentJitterMS))
}

type recordLine store.CallRecord
