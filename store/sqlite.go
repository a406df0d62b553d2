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
	// queueCapacity bounds the writes waiting for the writer, per kind. At a
	// few hundred calls per second this is many seconds of slack for a slow
	// disk.
	queueCapacity = 4096
	// batchRows and batchDelay: commit when this many writes are pending, or
	// this long after the first pending write, whichever comes first.
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

// SQLite keeps call records and bindings in an SQLite database in WAL mode.
// All writes go through one writer goroutine; reads use the connection pool
// and run concurrently with it.
type SQLite struct {
	db     *sql.DB
	stmts  statements
	logger *slog.Logger
	path   string

	// One FIFO per kind of write: the writer applies each in order. Records
	// and bindings live in separate tables, so their relative order is free.
	records    chan CallRecord
	bindings   chan bindingChange
	requests   chan writeRequest
	closing    chan struct{}
	writerDone chan struct{}
	writerErr  error // set by the writer before writerDone is closed

	closed      atomic.Bool
	dropped     atomic.Uint64
	lastDropLog atomic.Int64 // unix nanoseconds
	closeOnce   sync.Once
	closeErr    error
}

var (
	_ Records  = (*SQLite)(nil)
	_ Bindings = (*SQLite)(nil)
)

// statements are prepared once and used by the writer inside each batch.
type statements struct {
	putRecord, putBinding, deleteBinding *sql.Stmt
}

func prepareStatements(ctx context.Context, db *sql.DB) (statements, error) {
	var st statements
	for _, p := range []struct {
		stmt  **sql.Stmt
		query string
	}{
		{&st.putRecord, putRecordSQL},
		{&st.putBinding, putBindingSQL},
		{&st.deleteBinding, deleteBindingSQL},
	} {
		stmt, err := db.PrepareContext(ctx, p.query)
		if err != nil {
			st.close()
			return statements{}, fmt.Errorf("prepare %q: %w", firstLine(p.query), err)
		}
		*p.stmt = stmt
	}
	return st, nil
}

func (st statements) close() error {
	var errs []error
	for _, stmt := range []*sql.Stmt{st.putRecord, st.putBinding, st.deleteBinding} {
		if stmt != nil {
			if err := stmt.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close statement: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

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

// setup checks and migrates the database and prepares the store, without
// starting its writer.
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
	stmts, err := prepareStatements(ctx, db)
	if err != nil {
		return nil, err
	}
	return &SQLite{
		db:         db,
		stmts:      stmts,
		logger:     logger.With("database", path),
		path:       path,
		records:    make(chan CallRecord, queueCapacity),
		bindings:   make(chan bindingChange, queueCapacity),
		requests:   make(chan writeRequest),
		closing:    make(chan struct{}),
		writerDone: make(chan struct{}),
	}, nil
}

// Path returns the absolute path of the database file.
func (s *SQLite) Path() string { return s.path }

// enqueue hands v to the writer without waiting. It returns "" when v was
// queued, else why it was not.
func enqueue[T any](s *SQLite, queue chan<- T, v T) (dropReason string) {
	if s.closed.Load() {
		return "store closed"
	}
	select {
	case queue <- v:
		return ""
	default:
		return "write queue full"
	}
}

// drop counts a lost write and logs it, at most once per dropLogInterval.
func (s *SQLite) drop(what, reason string, attrs ...any) {
	total := s.dropped.Add(1)
	now := time.Now().UnixNano()
	last := s.lastDropLog.Load()
	if now-last < int64(dropLogInterval) || !s.lastDropLog.CompareAndSwap(last, now) {
		return
	}
	s.logger.Warn(what+" dropped", append(attrs, "reason", reason, "dropped_total", total)...)
}

// Dropped returns how many writes (call records and binding changes) were
// lost: queue full, made after Close, or their transaction failed.
func (s *SQLite) Dropped() uint64 { return s.dropped.Load() }

// Flush waits until every write queued before the call has been committed
// (or has failed; the first failure since the previous Flush is returned).
func (s *SQLite) Flush(ctx context.Context) error {
	if err := s.inWriter(ctx, nil); err != nil {
		if errors.Is(err, ErrClosed) {
			return err
		}
		return fmt.Errorf("flush: %w", err)
	}
	return nil
}

// writeRequest asks the writer to commit what is queued, then run apply (when
// not nil) in a transaction of its own. Keeping these writes on the writer
// goroutine keeps it the only writer and orders them after earlier Puts.
type writeRequest struct {
	ctx   context.Context
	apply func(ctx context.Context, tx *sql.Tx) error
	reply chan error // buffered: the writer never waits for a caller who gave up
}

// inWriter runs apply on the writer goroutine (see writeRequest) and waits
// for it. A nil apply is a Flush.
func (s *SQLite) inWriter(ctx context.Context, apply func(context.Context, *sql.Tx) error) error {
	req := writeRequest{ctx: ctx, apply: apply, reply: make(chan error, 1)}
	select {
	case s.requests <- req:
	case <-s.writerDone:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close commits everything queued, stops the writer and closes the database.
// Writes made concurrently with Close may be lost. Close is idempotent.
func (s *SQLite) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.closing)
		<-s.writerDone
		errs := []error{s.writerErr, s.stmts.close()}
		if err := s.db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close database: %w", err))
		}
		if n := s.dropped.Load(); n > 0 {
			s.logger.Warn("writes were dropped", "dropped_total", n)
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// runWriter is the single writer goroutine: it collects queued writes into a
// batch and commits it when full, when the batch delay expires, before a
// request and on Close.
func (s *SQLite) runWriter() {
	defer close(s.writerDone)
	w := newBatchWriter(s)
	for {
		select {
		case r := <-s.records:
			w.addRecord(r)
		case c := <-s.bindings:
			w.addBinding(c)
		case <-w.deadline:
			w.commit()
		case req := <-s.requests:
			w.drainQueues()
			w.commit()
			req.reply <- w.serve(req)
		case <-s.closing:
			w.drainQueues()
			w.commit()
			s.writerErr = w.takeErr()
			return
		}
	}
}

// batchWriter is the writer goroutine's state; only that goroutine touches it.
type batchWriter struct {
	store    *SQLite
	records  []CallRecord
	bindings []bindingChange
	timer    *time.Timer
	deadline <-chan time.Time // timer.C while writes are pending, else nil
	err      error            // first commit failure since the last takeErr
}

func newBatchWriter(s *SQLite) *batchWriter {
	w := &batchWriter{
		store:    s,
		records:  make([]CallRecord, 0, batchRows),
		bindings: make([]bindingChange, 0, batchRows),
		timer:    time.NewTimer(batchDelay),
	}
	w.timer.Stop()
	return w
}

func (w *batchWriter) addRecord(r CallRecord) {
	w.records = append(w.records, r)
	w.added()
}

func (w *batchWriter) addBinding(c bindingChange) {
	w.bindings = append(w.bindings, c)
	w.added()
}

func (w *batchWriter) added() {
	pending := len(w.records) + len(w.bindings)
	if pending == 1 {
		w.timer.Reset(batchDelay)
		w.deadline = w.timer.C
	}
	if pending >= batchRows {
		w.commit()
	}
}

// drainQueues moves everything already queued into batches. Writes made
// before a request are in the queues by the time the request is received.
func (w *batchWriter) drainQueues() {
	for {
		select {
		case r := <-w.store.records:
			w.addRecord(r)
		case c := <-w.store.bindings:
			w.addBinding(c)
		default:
			return
		}
	}
}

// commit writes the pending batch in one transaction.
func (w *batchWriter) commit() {
	w.timer.Stop()
	w.deadline = nil
	n := len(w.records) + len(w.bindings)
	if n == 0 {
		return
	}
	if err := w.store.writeBatch(w.records, w.bindings); err != nil {
		w.store.dropped.Add(uint64(n))
		w.store.logger.Error("writes not stored", "call_records", len(w.records),
			"binding_changes", len(w.bindings), "err", err)
		if w.err == nil {
			w.err = err
		}
	}
	clear(w.records) // release the strings
	clear(w.bindings)
	w.records, w.bindings = w.records[:0], w.bindings[:0]
}

// serve answers a request once the batch before it is committed: a Flush
// gets the first batch failure since the last one; others run their apply.
func (w *batchWriter) serve(req writeRequest) error {
	if req.apply == nil {
		return w.takeErr()
	}
	return w.store.inTransaction(req.ctx, req.apply)
}

func (w *batchWriter) takeErr() error {
	err := w.err
	w.err = nil
	return err
}

func (s *SQLite) writeBatch(records []CallRecord, bindings []bindingChange) error {
	return s.inTransaction(context.Background(), func(ctx context.Context, tx *sql.Tx) error {
		if err := s.putRecords(ctx, tx, records); err != nil {
			return err
		}
		return s.applyBindings(ctx, tx, bindings)
	})
}

func (s *SQLite) inTransaction(ctx context.Context, apply func(context.Context, *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if err := apply(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
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
