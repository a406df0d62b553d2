// Package recording writes calls to stereo WAV files: the caller on the left
// channel, the agent on the right, 8 kHz 16-bit PCM.
//
// The media path must never wait for the disk. RTP reader goroutines hand each
// received frame to Channel.WriteAudio, which copies it into a pooled buffer,
// stamps it with its arrival time and offers it to the recording's writer
// goroutine without blocking; when the bounded queue is full the frame is
// dropped and counted. The writer keeps the two channels time-aligned from the
// arrival stamps, interleaves them and writes large chunks. A file left behind
// by a crash is made playable again by Repair.
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
	// chunkSamples is the size of one pooled buffer: a 20 or 30 ms G.711
	// frame fits; longer frames are split across buffers.
	chunkSamples = 320
	// defaultQueueFrames bounds the frames waiting for the writer, about 1.3 s
	// of a two-sided call; it is also the most buffers a recording allocates.
	defaultQueueFrames = 128
	// dropLogInterval rate-limits the warning about dropped frames.
	dropLogInterval = 5 * time.Second
)

const (
	leftSide  = 0
	rightSide = 1
)

// chunk is one received frame (or part of one) on its way to the writer.
type chunk struct {
	side int
	n    int
	// arrival is when the frame's last sample was received, measured from
	// the start of the recording.
	arrival time.Duration
	samples [chunkSamples]int16
}

// Recorder records one call to a stereo WAV file. Its methods are safe for
// concurrent use; each Channel is meant to be fed by one goroutine.
type Recorder struct {
	path    string
	logger  *slog.Logger
	file    *os.File
	now     func() time.Time
	started time.Time
	left    Channel
	right   Channel

	free      chan *chunk // recycled buffers
	frames    chan *chunk // to the writer goroutine
	allocated atomic.Int32
	maxChunks int32
	dropped   atomic.Uint64
	closed    atomic.Bool

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	timeline    timeline // owned by the writer goroutine
	loggedDrops uint64
	lastDropLog time.Time
}

// Channel is one side of the call within a Recorder.
type Channel struct {
	rec  *Recorder
	side int
}

// options are the seams tests use; Create uses the defaults.
type options struct {
	now         func() time.Time
	wrapSink    func(io.Writer) io.Writer // wraps the file for audio data writes
	queueFrames int
}

// Create starts a recording at path, creating parent directories. The file is
// created exclusively, so an existing recording is never overwritten. The WAV
// header is written at once with zero sizes; Close (or Repair after a crash)
// fixes them.
func Create(path string, logger *slog.Logger) (*Recorder, error) {
	return create(path, logger, options{})
}

func create(path string, logger *slog.Logger, opts options) (*Recorder, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	if opts.queueFrames <= 0 {
		opts.queueFrames = defaultQueueFrames
	}
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
	var sink io.Writer = file
	if opts.wrapSink != nil {
		sink = opts.wrapSink(file)
	}
	r := &Recorder{
		path:      path,
		logger:    logger.With("recording", path),
		file:      file,
		now:       opts.now,
		free:      make(chan *chunk, opts.queueFrames),
		frames:    make(chan *chunk, opts.queueFrames),
		maxChunks: int32(opts.queueFrames),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		timeline:  newTimeline(sink),
	}
	r.left = Channel{rec: r, side: leftSide}
	r.right = Channel{rec: r, side: rightSide}
	r.started = r.now()
	go r.runWriter()
	return r, nil
}

// Left is the caller's channel.
func (r *Recorder) Left() *Channel { return &r.left }

// Right is the agent's channel.
func (r *Recorder) Right() *Channel { return &r.right }

// Path is the file being written.
func (r *Recorder) Path() string { return r.path }

// Dropped counts frames that were not recorded: the writer fell behind (slow
// disk) or a side ran more than a second ahead of real time.
func (r *Recorder) Dropped() uint64 { return r.dropped.Load() }

// WriteAudio records one received frame of 8 kHz linear PCM. It is called on
// an RTP reader goroutine: it copies pcm (which it does not keep), never
// blocks and does not allocate once the recording has warmed up. If the
// writer is behind, the frame is dropped and counted. Frames after Close are
// ignored.
func (c *Channel) WriteAudio(pcm []int16) {
	r := c.rec
	if len(pcm) == 0 || r.closed.Load() {
		return
	}
	arrival := r.now().Sub(r.started)
	for len(pcm) > 0 {
		buf := r.takeChunk()
		if buf == nil {
			r.dropped.Add(1)
			return
		}
		buf.side = c.side
		buf.n = copy(buf.samples[:], pcm)
		pcm = pcm[buf.n:]
		// A split frame: this part ended before the samples still to come.
		buf.arrival = arrival - time.Duration(len(pcm))*samplePeriod
		select {
		case r.frames <- buf:
		default: // cannot happen while frames has room for every buffer; never block regardless
			r.returnChunk(buf)
			r.dropped.Add(1)
			return
		}
	}
}

// takeChunk returns a free buffer, allocating only until the pool holds
// maxChunks of them; nil when all are queued.
func (r *Recorder) takeChunk() *chunk {
	select {
	case buf := <-r.free:
		return buf
	default:
	}
	if r.allocated.Add(1) <= r.maxChunks {
		return new(chunk)
	}
	r.allocated.Add(-1)
	return nil
}

func (r *Recorder) returnChunk(buf *chunk) {
	select {
	case r.free <- buf:
	default:
	}
}

// runWriter is the recording's writer goroutine. It sleeps while no frames
// come: a silent side is advanced from the other side's arrival stamps, so
// no per-call ticker is needed.
func (r *Recorder) runWriter() {
	defer close(r.done)
	for {
		select {
		case buf := <-r.frames:
			r.process(buf)
		case <-r.stop:
			for {
				select {
				case buf := <-r.frames:
					r.process(buf)
				default:
					return
				}
			}
		}
	}
}

func (r *Recorder) process(buf *chunk) {
	if !r.timeline.place(buf.side, buf.samples[:buf.n], buf.arrival) {
		r.dropped.Add(1)
	}
	r.returnChunk(buf)
	if err := r.timeline.takeWriteErr(); err != nil {
		r.logger.Error("recording write failed; the rest of the call is not recorded", "err", err)
	}
	if dropped := r.dropped.Load(); dropped != r.loggedDrops {
		if now := r.now(); now.Sub(r.lastDropLog) >= dropLogInterval {
			r.logger.Warn("recording frames dropped", "dropped_total", dropped)
			r.loggedDrops, r.lastDropLog = dropped, now
		}
	}
}

// Close drains the queued frames, pads the shorter channel with silence,
// writes the remaining audio, fixes the WAV sizes and closes the file. It is
// idempotent and returns the first error the recording met.
func (r *Recorder) Close() error {
	r.closeOnce.Do(func() {
		r.closed.Store(true)
		close(r.stop)
		<-r.done
		r.closeErr = r.finish()
	})
	return r.closeErr
}

func (r *Recorder) finish() error {
	var errs []error
	dataBytes, err := r.timeline.finish()
	if err != nil {
		errs = append(errs, fmt.Errorf("write recording %q: %w", r.path, err))
	}
	if err := writeSizes(r.file, wavHeaderSize, dataBytes); err != nil {
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
