package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"
)

// answered is record i as Put when the agent answers: no end, no cause yet.
func answered(i int) CallRecord {
	r := sampleRecord(i)
	r.End, r.TalkSeconds, r.HangupCause, r.HangupSide = time.Time{}, 0, "", ""
	return r
}

func recent(t *testing.T, s *SQLite) map[string]CallRecord {
	t.Helper()
	recs, err := s.Recent(context.Background(), 10_000)
	if err != nil {
		t.Fatalf("Recent: %v", err)
	}
	byID := make(map[string]CallRecord, len(recs))
	for _, r := range recs {
		if _, dup := byID[r.ID]; dup {
			t.Fatalf("Recent returned ID %q twice", r.ID)
		}
		byID[r.ID] = r
	}
	return byID
}

func TestPutReplacesTheRowWithTheSameID(t *testing.T) {
	s, path := openTemp(t)
	s.Put(answered(1))
	flush(t, s)
	open := recent(t, s)["c1"]
	if !open.InProgress() || open.HangupCause != "" || !open.Answer.Equal(sampleRecord(1).Answer) {
		t.Fatalf("after the answer: %+v, want in progress with its answer time", open)
	}
	ended := sampleRecord(1)
	// The quality of the legs is known only at the end.
	ended.CallerPackets, ended.CallerLossPct, ended.CallerJitterMS, ended.CallerRTTMS = 4100, 0.5, 2.5, 30
	ended.AgentPackets, ended.AgentLossPct, ended.AgentJitterMS, ended.AgentRTTMS = 4090, 1.5, 3.5, 20
	s.Put(ended)
	flush(t, s)
	if n := countRows(t, path); n != 1 {
		t.Fatalf("%d rows after answer and end of one call, want 1", n)
	}
	got := recent(t, s)["c1"]
	if got.InProgress() || !got.End.Equal(ended.End) {
		t.Fatalf("after the end: %+v, want %+v", got, ended)
	}
	got.Start, got.Answer, got.End = ended.Start, ended.Answer, ended.End
	if got != ended {
		t.Errorf("after the end:\n got %+v\nwant %+v", got, ended)
	}
}

// The writes of one call are applied in the order they were made, even when
// the batch limit puts them in different transactions; the last Put wins
// either way round.
func TestPutsKeepTheirOrderAcrossBatches(t *testing.T) {
	s, _ := openTemp(t)
	s.Put(answered(1))
	s.Put(sampleRecord(2)) // ended first, then (wrongly, but in this order) reopened
	for i := range 2 * batchRows {
		s.Put(sampleRecord(1000 + i))
	}
	s.Put(sampleRecord(1))
	s.Put(answered(2))
	flush(t, s)
	recs := recent(t, s)
	if len(recs) != 2+2*batchRows {
		t.Fatalf("%d rows, want %d", len(recs), 2+2*batchRows)
	}
	if r := recs["c1"]; r.InProgress() || r.HangupCause != CauseNormal {
		t.Errorf("c1 (answered, then ended) = %s by %s, in progress %v; want normal", r.HangupCause, r.HangupSide, r.InProgress())
	}
	if r := recs["c2"]; !r.InProgress() {
		t.Errorf("c2 (ended, then answered) = %s by %s; want the later, open record", r.HangupCause, r.HangupSide)
	}
}

func TestPutWithoutIDAddsARow(t *testing.T) {
	s, path := openTemp(t)
	r := sampleRecord(1)
	r.ID = ""
	s.Put(r)
	s.Put(r)
	flush(t, s)
	if n := countRows(t, path); n != 2 {
		t.Fatalf("%d rows after two Puts without ID, want 2", n)
	}
	for id := range recent(t, s) {
		if !strings.HasPrefix(id, "anon-") {
			t.Errorf("record without ID stored as %q, want an anon- id", id)
		}
	}
}

func TestCloseInterrupted(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	s.Put(answered(1))
	neverAnswered := answered(2)
	neverAnswered.Answer, neverAnswered.Agent = time.Time{}, ""
	s.Put(neverAnswered)
	s.Put(sampleRecord(3))
	// No Flush: CloseInterrupted comes after the Puts made before it.
	n, err := s.CloseInterrupted(ctx)
	if err != nil || n != 2 {
		t.Fatalf("CloseInterrupted = %d, %v; want 2 (the answered and the unanswered open call)", n, err)
	}
	recs := recent(t, s)
	for id, wantEnd := range map[string]time.Time{"c1": sampleRecord(1).Answer, "c2": sampleRecord(2).Start} {
		r := recs[id]
		if r.HangupCause != CauseInterrupted || r.HangupSide != SideSystem || !r.End.Equal(wantEnd) {
			t.Errorf("%s closed as %s by %s at %v; want interrupted by system at %v", id, r.HangupCause, r.HangupSide, r.End, wantEnd)
		}
	}
	if r, want := recs["c3"], sampleRecord(3); r.HangupCause != want.HangupCause || !r.End.Equal(want.End) {
		t.Errorf("finished call touched: %s at %v, want %s at %v", r.HangupCause, r.End, want.HangupCause, want.End)
	}
	if n, err := s.CloseInterrupted(ctx); err != nil || n != 0 {
		t.Errorf("second CloseInterrupted = %d, %v; want 0", n, err)
	}
}

func TestCloseInterruptedAfterClose(t *testing.T) {
	s, _ := openTemp(t)
	s.Close()
	if _, err := s.CloseInterrupted(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("CloseInterrupted after Close = %v, want ErrClosed", err)
	}
}

// A database written by the first release (schema 1, no uid) opens with
// this one: its rows are kept, each with an ID of its own, and new calls are
// written beside them.
func TestMigrateFromVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	old, err := sql.Open("sqlite3", sqliteDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	legacy := []CallRecord{sampleRecord(1), sampleRecord(2)}
	for _, stmt := range []string{
		`CREATE TABLE schema_version (version INTEGER NOT NULL)`,
		migrations[0],
		`INSERT INTO schema_version (version) VALUES (1)`,
	} {
		if _, err := old.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range legacy {
		if _, err := old.Exec(`INSERT INTO call_records (call_id, caller, did, trunk, start_ms, answer_ms, end_ms,
			digits, queue, agent, wait_seconds, talk_seconds, hangup_cause, hangup_side, recording_path)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.CallID, r.Caller, r.DID, r.Trunk, r.Start.UnixMilli(), r.Answer.UnixMilli(), r.End.UnixMilli(),
			r.Digits, r.Queue, r.Agent, r.WaitSeconds, r.TalkSeconds, r.HangupCause, r.HangupSide, r.RecordingPath); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()

	s, err := OpenSQLite(path, quietLogger())
	if err != nil {
		t.Fatalf("open a version 1 database: %v", err)
	}
	defer s.Close()
	recs := recent(t, s)
	for i, want := range legacy {
		want.ID = fmt.Sprintf("legacy-%d", i+1)
		got, ok := recs[want.ID]
		if !ok {
			t.Fatalf("row %d not found as %q in %v", i+1, want.ID, recs)
		}
		got.Start, got.Answer, got.End = want.Start, want.Answer, want.End
		if got != want {
			t.Errorf("legacy row %d:\n got %+v\nwant %+v", i+1, got, want)
		}
	}
	s.Put(answered(3))
	if n, err := s.CloseInterrupted(context.Background()); err != nil || n != 1 {
		t.Errorf("CloseInterrupted = %d, %v; want 1 (the new open call, not the legacy rows)", n, err)
	}
	if n := len(recent(t, s)); n != 3 {
		t.Errorf("%d rows, want 2 legacy + 1 new", n)
	}
}

// Flush waits for every write made before it, whichever goroutine made it.
func TestFlushWaitsForEveryEarlierPut(t *testing.T) {
	s, path := openTemp(t)
	const writers, each = 8, 300
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				r := sampleRecord(i)
				r.ID = fmt.Sprintf("w%d-%d", w, i)
				s.Put(r)
				s.PutBinding(sampleBinding(r.ID, "phone"))
			}
		})
	}
	wg.Wait()
	flush(t, s)
	if n := countRows(t, path); n != writers*each {
		t.Errorf("call records after Flush = %d, want %d", n, writers*each)
	}
	if n := countBindings(t, s); n != writers*each {
		t.Errorf("bindings after Flush = %d, want %d", n, writers*each)
	}
	if d := s.Dropped(); d != 0 {
		t.Errorf("Dropped = %d, want 0", d)
	}
}

// commits counts the transactions SQLite itself committed on connections of
// the "sqlite3_counting" driver.
var commits atomic.Int64

func init() {
	sql.Register("sqlite3_counting", &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		c.RegisterCommitHook(func() int { commits.Add(1); return 0 })
		return nil
	}})
}

// openCounting opens a store whose commits are counted.
func openCounting(tb testing.TB) *SQLite {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "counted.db")
	db, err := sql.Open("sqlite3_counting", sqliteDSN(path))
	if err != nil {
		tb.Fatal(err)
	}
	s, err := setup(db, path, quietLogger())
	if err != nil {
		tb.Fatal(err)
	}
	go s.runWriter()
	tb.Cleanup(func() { s.Close() })
	return s
}

// The writer commits one transaction per batch of batchRows writes, not one
// per row.
func TestOneTransactionPerBatch(t *testing.T) {
	s := openCounting(t)
	w := newBatchWriter(s) // driven here; the store's own writer has nothing queued
	before := commits.Load()
	const rows = 2*batchRows + batchRows/2
	for i := range rows {
		if i%2 == 0 {
			w.addRecord(sampleRecord(i))
		} else {
			w.addBinding(bindingChange{b: sampleBinding(fmt.Sprint(i), "phone")})
		}
	}
	w.commit() // the remainder, as a Flush does
	if got := commits.Load() - before; got != 3 {
		t.Errorf("%d writes made %d transactions, want 3 (batches of %d)", rows, got, batchRows)
	}
	if n := countBindings(t, s) + len(recent(t, s)); n != rows {
		t.Errorf("%d rows stored, want %d", n, rows)
	}
}
