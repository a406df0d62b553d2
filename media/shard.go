package media

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrInterrupted is returned by Play and SendDTMF when StopPlay, another
// Play, PlayLoop or SendDTMF, Bridge or Close ended them early.
var ErrInterrupted = errors.New("media: playback interrupted")

// ErrNoDTMF is returned by SendDTMF when no telephone-event payload type was
// negotiated.
var ErrNoDTMF = errors.New("media: telephone-event not negotiated")

// ErrNotSending is returned by SendDTMF on a leg whose direction does not
// send (on hold); an event under way when the hold came ends with it too.
var ErrNotSending = errors.New("media: leg is not sending (on hold)")

const (
	// tickInterval is the period of a shard's one ticker.
	tickInterval = 20 * time.Millisecond
	// pacingSlack sends a frame at the tick nearest its due time rather
	// than always at the next one (ticks wobble by a fraction of a ms).
	pacingSlack = tickInterval / 2
	// maxBurst bounds the frames one job sends per tick after a stall;
	// the rest of the backlog is forgotten, not blasted.
	maxBurst = 3

	defaultDTMFDuration = 100 * time.Millisecond
	minDTMFDuration     = 40 * time.Millisecond
	dtmfEndPackets      = 3
	dtmfVolume          = 10 // -dBm0
)

type jobKind uint8

const (
	jobPrompt jobKind = iota
	jobDTMF
)

// job is one piece of clocked output on a leg: a prompt (once or looped) or
// one DTMF event. Its progress fields are owned by the shard goroutine.
type job struct {
	id   uint64
	leg  *Leg
	kind jobKind

	prompt *Prompt
	loop   bool
	pos    int // next sample of the prompt

	eventCode    uint8
	eventSamples int // full duration of the event
	eventSent    int // duration reported so far
	endsSent     int

	start time.Time     // first tick; zero until then
	clock time.Duration // audio time sent so far

	state atomic.Bool // finished
	done  chan struct{}
	err   error // set before done is closed
}

// finish ends the job once with err; it reports whether this call did.
func (j *job) finish(err error) bool {
	if !j.state.CompareAndSwap(false, true) {
		return false
	}
	j.err = err
	j.leg.job.CompareAndSwap(j, nil)
	close(j.done)
	return true
}

func (j *job) finished() bool { return j.state.Load() }

// wait blocks until the job ends or ctx is done.
func (j *job) wait(ctx context.Context) error {
	select {
	case <-j.done:
		return j.err
	case <-ctx.Done():
		if j.finish(ctx.Err()) {
			return ctx.Err()
		}
		<-j.done
		return j.err
	}
}

func (l *Leg) newJob(kind jobKind) *job {
	return &job{id: l.engine.nextJobID.Add(1), leg: l, kind: kind, done: make(chan struct{})}
}

// startJob makes j the leg's only job, interrupting the previous one, and
// hands it to the leg's shard.
func (l *Leg) startJob(j *job) error {
	l.jobMu.Lock()
	defer l.jobMu.Unlock()
	if l.closed.Load() {
		return fmt.Errorf("media: leg %q: %w", l.name, ErrClosed)
	}
	if old := l.job.Swap(j); old != nil {
		old.finish(ErrInterrupted)
	}
	l.shard.add(j)
	return nil
}

func (l *Leg) stopJob() {
	l.jobMu.Lock()
	defer l.jobMu.Unlock()
	if j := l.job.Load(); j != nil {
		j.finish(ErrInterrupted)
	}
}

// Play sends p once, paced by the shard ticker, and returns when all of it
// was sent (nil), when ctx is done (ctx.Err()) or when something interrupted
// it (ErrInterrupted). The last frame is padded with silence.
func (l *Leg) Play(ctx context.Context, p *Prompt) error {
	if p == nil {
		return fmt.Errorf("media: leg %q: play: nil prompt", l.name)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if p.Samples() == 0 {
		l.stopJob()
		return nil
	}
	j := l.newJob(jobPrompt)
	j.prompt = p
	if err := l.startJob(j); err != nil {
		return err
	}
	return j.wait(ctx)
}

// PlayLoop plays p over and over (music on hold) until StopPlay, Play,
// SendDTMF, Bridge or Close; it returns at once.
func (l *Leg) PlayLoop(p *Prompt) {
	if p == nil {
		return
	}
	j := l.newJob(jobPrompt)
	j.prompt, j.loop = p, true
	_ = l.startJob(j) // only fails on a closed leg, where silence is right
}

// StopPlay ends whatever the leg is playing (prompt, loop or DTMF).
func (l *Leg) StopPlay() { l.stopJob() }

// SendDTMF sends one RFC 4733 event for digit lasting duration (0 means
// 100 ms): a first packet with the marker bit, an update every ptime and
// three end packets, paced by the shard. Like Play it replaces what the leg
// was playing and blocks until done; an interrupted event gets no end packets
// (receivers time it out).
func (l *Leg) SendDTMF(ctx context.Context, digit byte, duration time.Duration) error {
	code, err := digitEvent(digit)
	if err != nil {
		return err
	}
	if err := l.state.Load().params.dtmfBlocked(); err != nil {
		return fmt.Errorf("media: leg %q: send DTMF: %w", l.name, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if duration <= 0 {
		duration = defaultDTMFDuration
	}
	j := l.newJob(jobDTMF)
	j.eventCode = code
	j.eventSamples = int(min(max(duration, minDTMFDuration)/samplePeriod, 0xFFFF))
	if err := l.startJob(j); err != nil {
		return err
	}
	return j.wait(ctx)
}

// shard runs the clocked work of its legs on one goroutine with one ticker,
// and checks their RTP timeouts on a slower one.
type shard struct {
	timeouts timeouts

	mu      sync.Mutex
	pending []*job
	legs    []*Leg // every open leg of the shard, for the timeout check

	wake    chan struct{}
	quit    chan struct{}
	stopped chan struct{}

	audio atomic.Pointer[audioSet] // clocked audio: legs with taps, mixers (audio.go)

	// Owned by the shard goroutine.
	active      []*job
	audioStart  time.Time // the audio clock: frame k is due at audioStart + k*20ms
	audioFrames int64
	packet      [maxPacket]byte
	frame       [maxPacket]byte
	reportsDue  []*Leg // legs whose RTCP report is due, reused

	checkEvery time.Duration // period of the slow clock (timeouts, RTCP); 0: timeoutCheckInterval

	checks atomic.Uint64 // timeout checks done, for tests
}

func newShard(t timeouts) *shard {
	return &shard{
		timeouts: t,
		wake:     make(chan struct{}, 1),
		quit:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
}

func (s *shard) add(j *job) {
	s.mu.Lock()
	s.pending = append(s.pending, j)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *shard) stop() {
	close(s.quit)
	<-s.stopped
}

// run is the shard goroutine. The 20 ms ticker only runs while a job is
// active or audio is clocked; the slow clock (timeouts, RTCP reports)
// ticks at checkEvery.
func (s *shard) run() {
	defer close(s.stopped)
	ticker := time.NewTicker(tickInterval)
	defer ticker.Stop()
	ticking := true
	check := time.NewTicker(checkInterval(0))
	if s.checkEvery > 0 {
		check.Reset(s.checkEvery)
	}
	defer check.Stop()
	for {
		var ticks <-chan time.Time
		busy := len(s.active) > 0 || !s.audio.Load().empty()
		switch {
		case busy && !ticking:
			ticker.Reset(tickInterval)
			ticking = true
		case !busy && ticking:
			ticker.Stop()
			ticking = false
		}
		if ticking {
			ticks = ticker.C
		}
		select {
		case <-s.quit:
			return
		case <-s.wake:
			s.adopt(time.Now())
		case <-ticks:
			now := time.Now()
			s.tick(now)
			s.tickAudio(now)
		case <-check.C:
			s.checkLegs(time.Now())
		}
	}
}

// adopt takes the jobs added since the last call and sends their first
// frame right away, so a prompt starts without waiting for a tick.
func (s *shard) adopt(now time.Time) {
	s.mu.Lock()
	jobs := s.pending
	s.pending = nil
	s.mu.Unlock()
	for _, j := range jobs {
		if !j.finished() {
			s.step(j, now)
		}
		if !j.finished() {
			s.active = append(s.active, j)
		}
	}
}

// tick advances every active job and drops the finished ones.
func (s *shard) tick(now time.Time) {
	for i := 0; i < len(s.active); {
		j := s.active[i]
		if !j.finished() {
			s.step(j, now)
		}
		if j.finished() {
			last := len(s.active) - 1
			s.active[i] = s.active[last]
			s.active[last] = nil
			s.active = s.active[:last]
			continue
		}
		i++
	}
}

// step sends the frames of j that are due at now: frame k is due at
// start + k*ptime.
func (s *shard) step(j *job, now time.Time) {
	if j.start.IsZero() {
		j.start = now
	}
	st := j.leg.state.Load()
	if j.kind == jobDTMF {
		if err := st.params.dtmfBlocked(); err != nil { // renegotiated meanwhile
			j.finish(err)
			return
		}
	}
	ptime := time.Duration(st.params.PtimeMS) * time.Millisecond
	due := now.Sub(j.start) + pacingSlack
	for sent := 0; j.clock <= due; sent++ {
		if sent == maxBurst {
			j.start = now.Add(-j.clock) // behind after a stall: skip the backlog
			return
		}
		var done bool
		if j.kind == jobDTMF {
			done = s.sendEvent(j, st, now)
		} else {
			done = s.sendPromptFrame(j, st, now)
		}
		if done {
			j.finish(nil)
			return
		}
		j.clock += ptime
	}
}

// sendPromptFrame sends the next ptime of the prompt and reports whether
// the prompt has ended.
func (s *shard) sendPromptFrame(j *job, st *legState, now time.Time) bool {
	samples := st.params.frameSamples()
	payload := j.prompt.frame(st.params.Codec, j.pos, samples, j.loop, s.frame[:])
	j.pos += samples
	total := j.prompt.Samples()
	if j.loop && total > 0 {
		j.pos %= total
	}
	j.leg.sendClocked(j.id, st.params.PayloadType, payload, uint32(samples), false, now, s.packet[:])
	return !j.loop && j.pos >= total
}

// sendEvent sends the next packet of a DTMF event and reports whether it was
// the last of the three end packets.
func (s *shard) sendEvent(j *job, st *legState, now time.Time) bool {
	first := j.eventSent == 0 && j.endsSent == 0
	if j.eventSent < j.eventSamples {
		j.eventSent = min(j.eventSent+st.params.frameSamples(), j.eventSamples)
	}
	end := j.eventSent == j.eventSamples
	if end {
		j.endsSent++
	}
	last := j.endsSent == dtmfEndPackets
	var payload [telephoneEventSize]byte
	telephoneEvent{code: j.eventCode, end: end, volume: dtmfVolume, duration: uint16(j.eventSent)}.marshalTo(payload[:])
	// Every packet of an event repeats its start timestamp; the last one
	// moves the stream on by the event's duration.
	var advance uint32
	if last {
		advance = uint32(j.eventSamples)
	}
	j.leg.sendClocked(j.id, st.params.DTMFPayloadType, payload[:], advance, !first, now, s.packet[:])
	return last
}

// sendClocked sends one packet produced by the shard on l's stream.
func (l *Leg) sendClocked(writer uint64, pt uint8, payload []byte, samples uint32, keepRef bool, now time.Time, buf []byte) {
	o := &l.out
	o.mu.Lock()
	if !o.open() { // not negotiated, or on hold: keep time, send nothing
		o.mu.Unlock()
		return
	}
	dest := o.dest
	seq, ts, marker := o.stamp(writer, now, samples, keepRef)
	ssrc := o.ssrc
	o.mu.Unlock()

	n := putHeader(buf, marker, pt, seq, ts, ssrc)
	n += copy(buf[n:], payload)
	l.send(buf[:n], dest)
}
