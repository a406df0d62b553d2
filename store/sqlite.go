package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
)

const (
	// queueCapacity bounds the rows waiting for the writer. At a few hundred
	// calls per second this is many seconds of slack for a slow disk.
	queueCapacity = 4096
	// batchRows and batchDelay: commit when this many rows are pending, or
	// this long after the first pending row, whichever comes first.
	batchRows  = 100
	batchDelay = 50 * time.Millisecond
	// busyTimeout is how long a statement waits for another connection or
	// process (e.g. `hotline cdr`) holding the lock.
	busyTimeout = 5 * time.Second
	// dropLogInterval rate-limits the "queue full" warning.
	dropLogInterval = time.Second
)

// ErrClosed is returned by methods called after Close.
var ErrClosed = errors.New("store: closed")

// SQLite keeps call records in an SQLite database in WAL mode. All writes go
// through one writer goroutine; reads use the connection pool and run
// concurrently with it.
type SQLite struct {
	db     *sql.DB
	insert *sql.Stmt
	logger *slog.Logger
	path   string

	queue      chan CallRecord
	flushes    chan chan error
	closing    chan struct{}
	writerDone chan struct{}
	writerErr  error // set by the writer before writerDone is closed

	closed      atomic.Bool
	dropped     atomic.Uint64
	lastDropLog atomic.Int64 // unix nanoseconds
	closeOnce   sync.Once
	closeErr    error
}

var _ Records = (*SQLite)(nil)

// OpenSQLite opens (creating if needed) the database at path: parent
// directories, WAL journal, busy timeout, schema migration; then starts the
// writer goroutine.
func OpenSQLite(path string, logger *slog.Logger) (*SQLite, error) {
	if logger == nil {
		logger = slog.Default()
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("database path %q: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("database directory for %q: %w", path, err)
	}
	db, err := sql.Open("sqlite3", sqliteDSN(abs))
	if err != nil {
		return nil, fmt.Errorf("open database %q: %w", path, err)
	}
	s, err := setup(db, abs, logger)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %q: %w", path, err)
	}
	go s.runWriter()
	return s, nil
}

// sqliteDSN builds a URI filename so that paths containing '?', '#' or '%'
// are not misread as URI syntax. synchronous=FULL makes each committed batch
// durable even against power loss; batching keeps the fsync count low.
func sqliteDSN(absPath string) string {
	u := url.URL{Path: absPath}
	return fmt.Sprintf("file:%s?_journal_mode=WAL&_synchronous=FULL&_busy_timeout=%d&_txlock=immediate",
		u.EscapedPath(), busyTimeout.Milliseconds())
}

func setup(db *sql.DB, path string, logger *slog.Logger) (*SQLite, error) {
	ctx := context.Background()
	var mode string
	if err := db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return nil, fmt.Errorf("read journal mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return nil, fmt.Errorf("journal mode is %q, want wal", mode)
	}
	if err := migrate(ctx, db); err != nil {
		return nil, err
	}
	insert, err := db.PrepareContext(ctx, `INSERT INTO call_records (
		call_id, caller, did, trunk, start_ms, answer_ms, end_ms, digits, queue, agent,
		wait_seconds, talk_seconds, hangup_cause, hangup_side, recording_path
	) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return nil, fmt.Errorf("prepare insert: %w", err)
	}
	return &SQLite{
		db:         db,
		insert:     insert,
		logger:     logger.With("database", path),
		path:       path,
		queue:      make(chan CallRecord, queueCapacity),
		flushes:    make(chan chan error),
		closing:    make(chan struct{}),
		writerDone: make(chan struct{}),
	}, nil
}

// Path returns the absolute path of the database file.
func (s *SQLite) Path() string { return s.path }

// Add queues r for the writer and returns at once. When the queue is full, or
// the store is closed, the row is dropped, counted (see Dropped) and logged.
func (s *SQLite) Add(r CallRecord) {
	if s.closed.Load() {
		s.drop(r, "store closed")
		return
	}
	select {
	case s.queue <- r:
	default:
		s.drop(r, "write queue full")
	}
}

func (s *SQLite) drop(r CallRecord, reason string) {
	total := s.dropped.Add(1)
	now := time.Now().UnixNano()
	last := s.lastDropLog.Load()
	if now-last < int64(dropLogInterval) || !s.lastDropLog.CompareAndSwap(last, now) {
		return
	}
	s.logger.Warn("call record dropped", "reason", reason, "call_id", r.CallID, "dropped_total", total)
}

// Dropped returns how many records were lost: queue full, added after Close,
// or their transaction failed.
func (s *SQLite) Dropped() uint64 { return s.dropped.Load() }

// Flush waits until every record added before the call has been committed (or
// has failed; the first failure since the previous Flush is returned).
func (s *SQLite) Flush(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case s.flushes <- reply:
	case <-s.writerDone:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("flush call records: %w", ctx.Err())
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return fmt.Errorf("flush call records: %w", ctx.Err())
	}
}

// Close commits everything queued, stops the writer and closes the database.
// Records added concurrently with Close may be lost. Close is idempotent.
func (s *SQLite) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.closing)
		<-s.writerDone
		errs := []error{s.writerErr}
		if err := s.insert.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close insert statement: %w", err))
		}
		if err := s.db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close database: %w", err))
		}
		if n := s.dropped.Load(); n > 0 {
			s.logger.Warn("call records were dropped", "dropped_total", n)
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// runWriter is the single writer goroutine: it collects queued rows into a
// batch and commits it when full, when the batch delay expires, on Flush and
// on Close.
func (s *SQLite) runWriter() {
	defer close(s.writerDone)
	w := batchWriter{store: s, pending: make([]CallRecord, 0, batchRows), timer: time.NewTimer(batchDelay)}
	w.timer.Stop()
	for {
		select {
		case r := <-s.queue:
			w.add(r)
		case <-w.deadline:
			w.commit()
		case reply := <-s.flushes:
			w.drainQueue()
			w.commit()
			reply <- w.takeErr()
		case <-s.closing:
			w.drainQueue()
			w.commit()
			s.writerErr = w.takeErr()
			return
		}
	}
}

// batchWriter is the writer goroutine's state; only that goroutine touches it.
type batchWriter struct {
	store    *SQLite
	pending  []CallRecord
	timer    *time.Timer
	deadline <-chan time.Time // timer.C while rows are pending, else nil
	err      error            // first commit failure since the last takeErr
}

func (w *batchWriter) add(r CallRecord) {
	w.pending = append(w.pending, r)
	if len(w.pending) == 1 {
		w.timer.Reset(batchDelay)
		w.deadline = w.timer.C
	}
	if len(w.pending) >= batchRows {
		w.commit()
	}
}

// drainQueue moves everything already queued into batches. Rows added before
// a Flush call are in the queue by the time the flush request is received.
func (w *batchWriter) drainQueue() {
	for {
		select {
		case r := <-w.store.queue:
			w.add(r)
		default:
			return
		}
	}
}

func (w *batchWriter) commit() {
	w.timer.Stop()
	w.deadline = nil
	if len(w.pending) == 0 {
		return
	}
	if err := w.store.insertBatch(w.pending); err != nil {
		w.store.dropped.Add(uint64(len(w.pending)))
		w.store.logger.Error("call records not stored", "rows", len(w.pending),
			"first_call_id", w.pending[0].CallID, "err", err)
		if w.err == nil {
			w.err = err
		}
	}
	clear(w.pending) // release the strings
	w.pending = w.pending[:0]
}

func (w *batchWriter) takeErr() error {
	err := w.err
	w.err = nil
	return err
}

func (s *SQLite) insertBatch(rows []CallRecord) error {
	ctx := context.Background()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	insert := tx.StmtContext(ctx, s.insert)
	for i := range rows {
		r := &rows[i]
		_, err := insert.ExecContext(ctx,
			r.CallID, r.Caller, r.DID, r.Trunk,
			unixMillis(r.Start), unixMillis(r.Answer), unixMillis(r.End),
			r.Digits, r.Queue, r.Agent, r.WaitSeconds, r.TalkSeconds,
			r.HangupCause, r.HangupSide, r.RecordingPath)
		if err != nil {
			return fmt.Errorf("insert call %q: %w", r.CallID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit %d call records: %w", len(rows), err)
	}
	return nil
}

// Recent returns up to limit records, newest (by start time) first.
func (s *SQLite) Recent(ctx context.Context, limit int) ([]CallRecord, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("recent call records: limit %d must be positive", limit)
	}
	if s.closed.Load() {
		return nil, ErrClosed
	}
	rows, err := s.db.QueryContext(ctx, `SELECT
		call_id, caller, did, trunk, start_ms, answer_ms, end_ms, digits, queue, agent,
		wait_seconds, talk_seconds, hangup_cause, hangup_side, recording_path
		FROM call_records ORDER BY start_ms DESC, id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("query recent call records: %w", err)
	}
	defer rows.Close()
	var recs []CallRecord
	for rows.Next() {
		var r CallRecord
		var start, answer, end sql.NullInt64
		if err := rows.Scan(&r.CallID, &r.Caller, &r.DID, &r.Trunk, &start, &answer, &end,
			&r.Digits, &r.Queue, &r.Agent, &r.WaitSeconds, &r.TalkSeconds,
			&r.HangupCause, &r.HangupSide, &r.RecordingPath); err != nil {
			return nil, fmt.Errorf("read call record: %w", err)
		}
		r.Start, r.Answer, r.End = fromMillis(start), fromMillis(answer), fromMillis(end)
		recs = append(recs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read call records: %w", err)
	}
	return recs, nil
}

// unixMillis stores a zero time as NULL so "never answered" stays distinct.
func unixMillis(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

func fromMillis(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}
