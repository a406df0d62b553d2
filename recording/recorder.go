// Package recording writes calls to stereo WAV files: the caller on the left
// channel, the agent on the right, 8 kHz 16-bit PCM.
//
// The media path must never wait for the disk. The media shards hand each
// channel one 20 ms frame per tick (de-jittered, so both sides of a call
// come in step); WriteAudio copies it into the recording's memory and
// returns, waking nobody. One Sink goroutine serves every recording: a few
// times a second it interleaves what both sides have and writes it out. A
// recording whose memory is full (a slow disk) drops frames, counted and
// logged, never the call's audio. A file left behind by a crash is made
// playable again by Repair.
package recording

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// flushInterval is how often the sink writes what the recordings hold:
	// also about what a crash can lose before Repair.
	flushInterval = 250 * time.Millisecond
	// maxPending bounds what a side may hold unwritten (5 s): beyond it the
	// disk is too slow and frames are dropped.
	maxPending = 5 * SampleRate
	// maxSkew is how far one side may run ahead of the other (its leg went
	// away, or was never tapped) before the other is padded with silence.
	maxSkew = SampleRate
	// dropLogInterval rate-limits the warning about dropped frames.
	dropLogInterval = 5 * time.Second
)

const (
	leftSide  = 0
	rightSide = 1
)

// Sink writes every recording it created, on one goroutine.
type Sink struct {
	log      *slog.Logger
	interval time.Duration
	wrap     func(io.Writer) io.Writer // tests put a slow disk in front of the file

	mu      sync.Mutex
	recs    map[*Recorder]struct{}
	stopped bool

	stop chan struct{}
	done chan struct{}
}

// NewSink starts the writer goroutine. Close stops it.
func NewSink(logger *slog.Logger) *Sink {
	return newSink(logger, flushInterval)
}

func newSink(logger *slog.Logger, interval time.Duration) *Sink {
	if logger == nil {
		logger = slog.Default()
	}
	s := &Sink{log: logger, interval: interval, recs: make(map[*Recorder]struct{}),
		stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s
}

func (s *Sink) run() {
	defer close(s.done)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		recs := make([]*Recorder, 0, len(s.recs))
		for r := range s.recs {
			recs = append(recs, r)
		}
		s.mu.Unlock()
		for _, r := range recs {
			r.flush(false)
		}
	}
}

// Close closes the recordings still open and stops the writer.
func (s *Sink) Close() error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	recs := make([]*Recorder, 0, len(s.recs))
	for r := range s.recs {
		recs = append(recs, r)
	}
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	var errs []error
	for _, r := range recs {
		errs = append(errs, r.Close())
	}
	return errors.Join(errs...)
}

// Recorder is one call being recorded. Its methods are safe for concurrent
// use; each Channel is meant to be fed from one goroutine.
type Recorder struct {
	sink   *Sink
	path   string
	logger *slog.Logger
	file   *os.File
	out    io.Writer
	left   Channel
	right  Channel

	mu      sync.Mutex // guards sides and closed
	sides   [2][]int16 // received, not yet written
	closed  bool
	dropped atomic.Uint64

	writeMu     sync.Mutex // one writer at a time: the sink, or Close
	buf         []byte     // interleaved audio on its way to the file
	dataBytes   int64
	writeErr    error
	loggedDrops uint64
	lastDropLog time.Time
	closeErr    error
	closeOnce   sync.Once
}

// Channel is one side of the call within a Recorder; it is a media tap.
type Channel struct {
	rec  *Recorder
	side int
}

// Create starts a recording at path, creating parent directories. The file
// is created exclusively, so an existing recording is never overwritten. The
// WAV header is written at once with zero sizes; Close (or Repair after a
// crash) fixes them.
func (s *Sink) Create(path string) (*Recorder, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("recording directory for %q: %w", path, err)
	}
	file, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return nil, fmt.Errorf("create recording: %w", err)
	}
	header := wavHeader(0)
	if _, err := file.Write(header[:]); err != nil {
		file.Close()
		return nil, fmt.Errorf("write header of recording %q: %w", path, err)
	}
	r := &Recorder{sink: s, path: path, logger: s.log.With("recording", path), file: file, out: file}
	if s.wrap != nil {
		r.out = s.wrap(file)
	}
	for side := range r.sides {
		r.sides[side] = make([]int16, 0, 2*SampleRate*int(s.interval)/int(time.Second)+2*160)
	}
	r.left = Channel{rec: r, side: leftSide}
	r.right = Channel{rec: r, side: rightSide}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		file.Close()
		os.Remove(path)
		return nil, errors.New("recording: sink closed")
	}
	s.recs[r] = struct{}{}
	s.mu.Unlock()
	return r, nil
}

// Left is the caller's channel.
func (r *Recorder) Left() *Channel { return &r.left }

// Right is the agent's channel.
func (r *Recorder) Right() *Channel { return &r.right }

// Path is the file being written.
func (r *Recorder) Path() string { return r.path }

// Dropped counts frames that were not recorded because the disk fell behind.
func (r *Recorder) Dropped() uint64 { return r.dropped.Load() }

// WriteAudio keeps one frame of 8 kHz linear PCM for the writer. It is called
// on a media shard goroutine: it copies pcm, never blocks on the disk and,
// once the recording has warmed up, does not allocate. Frames after Close
// are ignored.
func (c *Channel) WriteAudio(pcm []int16) {
	r := c.rec
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	if len(r.sides[c.side])+len(pcm) > maxPending {
		r.dropped.Add(1)
		return
	}
	r.sides[c.side] = append(r.sides[c.side], pcm...)
}

// flush writes what both sides have in common (all of it, padding the
// shorter side with silence, when final), and the lagging side's silence
// when the other ran more than maxSkew ahead.
func (r *Recorder) flush(final bool) {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.mu.Lock()
	l, rt := &r.sides[leftSide], &r.sides[rightSide]
	switch {
	case final:
		padTo(l, len(*rt))
		padTo(rt, len(*l))
	case len(*l) > len(*rt)+maxSkew:
		padTo(rt, len(*l)-maxSkew)
	case len(*rt) > len(*l)+maxSkew:
		padTo(l, len(*rt)-maxSkew)
	}
	n := min(len(*l), len(*rt))
	if cap(r.buf) < 4*n {
		r.buf = make([]byte, 4*n)
	}
	buf := r.buf[:4*n]
	for i := range n {
		le, ri := uint16((*l)[i]), uint16((*rt)[i])
		buf[4*i], buf[4*i+1], buf[4*i+2], buf[4*i+3] = byte(le), byte(le>>8), byte(ri), byte(ri>>8)
	}
	*l = (*l)[:copy(*l, (*l)[n:])]
	*rt = (*rt)[:copy(*rt, (*rt)[n:])]
	r.mu.Unlock()

	if n > 0 && r.writeErr == nil {
		written, err := r.out.Write(buf)
		r.dataBytes += int64(written)
		if err != nil {
			r.writeErr = err
			r.logger.Error("recording write failed; the rest of the call is not recorded", "err", err)
		}
	}
	if dropped := r.dropped.Load(); dropped != r.loggedDrops && time.Since(r.lastDropLog) >= dropLogInterval {
		r.logger.Warn("recording frames dropped (disk too slow)", "dropped_total", dropped)
		r.loggedDrops, r.lastDropLog = dropped, time.Now()
	}
}

func padTo(side *[]int16, n int) {
	for len(*side) < n {
		*side = append(*side, 0)
	}
}

// Close writes what is left (the shorter side padded with silence), fixes
// the WAV sizes and closes the file. It is idempotent and returns the first
// error the recording met.
func (r *Recorder) Close() error {
	r.closeOnce.Do(func() {
		r.sink.mu.Lock()
		delete(r.sink.recs, r)
		r.sink.mu.Unlock()
		r.flush(true)
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		r.closeErr = r.finish()
	})
	return r.closeErr
}

func (r *Recorder) finish() error {
	var errs []error
	if r.writeErr != nil {
		errs = append(errs, fmt.Errorf("write recording %q: %w", r.path, r.writeErr))
	}
	if err := writeSizes(r.file, wavHeaderSize, r.dataBytes); err != nil {
		errs = append(errs, fmt.Errorf("fix header of recording %q: %w", r.path, err))
	}
	if err := r.file.Sync(); err != nil {
		errs = append(errs, fmt.Errorf("sync recording %q: %w", r.path, err))
	}
	if err := r.file.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close recording %q: %w", r.path, err))
	}
	if dropped := r.dropped.Load(); dropped > 0 {
		r.logger.Warn("recording closed with dropped frames", "dropped_total", dropped)
	}
	return errors.Join(errs...)
}
