package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openTemp(t testing.TB) (*SQLite, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nested", "dir", "hotline.db")
	s, err := OpenSQLite(path, quietLogger())
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func flush(t testing.TB, s *SQLite) {
	t.Helper()
	if err := s.Flush(context.Background()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func sampleRecord(i int) CallRecord {
	start := time.Date(2025, 3, 14, 9, 26, 53, 589_000_000, time.UTC).Add(time.Duration(i) * time.Second)
	return CallRecord{
		ID:            fmt.Sprintf("c%d", i),
		CallID:        fmt.Sprintf("call-%04d@carrier", i),
		Caller:        "+441632960001",
		DID:           "+441632960999",
		Trunk:         "carrier-a",
		Start:         start,
		Answer:        start.Add(12*time.Second + 250*time.Millisecond),
		End:           start.Add(95*time.Second + 7*time.Millisecond),
		Digits:        "12#",
		Queue:         "support",
		Agent:         "alice",
		WaitSeconds:   8.25,
		TalkSeconds:   82.757,
		HangupCause:   "normal",
		HangupSide:    "caller",
		RecordingPath: "/var/lib/hotline/rec/2025/03/14/call.wav",
	}
}

func TestRoundTripAllFields(t *testing.T) {
	s, _ := openTemp(t)
	paris := time.FixedZone("CET", 3600)
	want := CallRecord{
		ID:            "7f3a9c",
		CallID:        "a84b4c76e66710@pc33.example.com",
		Caller:        "+33 1 23 45 67 89",
		DID:           "0800123456",
		Trunk:         "trunk-ünïcode",
		Start:         time.Date(2025, 1, 2, 3, 4, 5, 678_000_000, paris),
		Answer:        time.Date(2025, 1, 2, 3, 4, 20, 1_000_000, paris),
		End:           time.Date(2025, 1, 2, 3, 9, 0, 999_000_000, paris),
		Digits:        "1*2#",
		Queue:         "sales",
		Agent:         "bob",
		WaitSeconds:   14.323,
		TalkSeconds:   280.998,
		HangupCause:   "normal",
		HangupSide:    "agent",
		RecordingPath: "/rec/it's a path?.wav",
		// Every quality column its own value, so a swap shows.
		CallerPackets: 14012, CallerLossPct: 0.25, CallerJitterMS: 3.125, CallerRTTMS: 41.5,
		AgentPackets: 13998, AgentLossPct: 1.75, AgentJitterMS: 0.875, AgentRTTMS: 12.25,
	}
	s.Put(want)
	flush(t, s)
	got, err := s.Recent(context.Background(), 10)
	if err != nil {
		t.Fatalf("Recent: %v", err)
	}
	if len(got) != 1 {
		t.Fatalf("got %d records, want 1", len(got))
	}
	r := got[0]
	// Times come back in UTC; compare the instant.
	for _, tc := range []struct {
		name      string
		got, want time.Time
	}{{"Start", r.Start, want.Start}, {"Answer", r.Answer, want.Answer}, {"End", r.End, want.End}} {
		if !tc.got.Equal(tc.want) {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
		if tc.got.Location() != time.UTC {
			t.Errorf("%s location = %v, want UTC", tc.name, tc.got.Location())
		}
	}
	r.Start, r.Answer, r.End = want.Start, want.Answer, want.End
	if r != want {
		t.Errorf("round trip:\n got %+v\nwant %+v", r, want)
	}
}

func TestTimesKeepMillisecondsAndZero(t *testing.T) {
	s, _ := openTemp(t)
	start := time.Date(2025, 6, 1, 12, 0, 0, 123_456_789, time.UTC)
	s.Put(CallRecord{ID: "n", CallID: "never-answered", Start: start, End: start.Add(time.Minute)})
	flush(t, s)
	got, err := s.Recent(context.Background(), 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("Recent = %v, %v", got, err)
	}
	if want := time.Date(2025, 6, 1, 12, 0, 0, 123_000_000, time.UTC); !got[0].Start.Equal(want) {
		t.Errorf("Start = %v, want %v (millisecond precision)", got[0].Start, want)
	}
	if !got[0].Answer.IsZero() {
		t.Errorf("Answer = %v, want zero for a call never answered", got[0].Answer)
	}
}

func TestThousandPutsThenFlush(t *testing.T) {
	s, path := openTemp(t)
	const n = 1000
	for i := range n {
		s.Put(sampleRecord(i))
	}
	flush(t, s)
	if got := countRows(t, path); got != n {
		t.Errorf("rows in database = %d, want %d", got, n)
	}
	if d := s.Dropped(); d != 0 {
		t.Errorf("Dropped = %d, want 0", d)
	}
}

// countRows reads through a separate connection, as another process would.
func countRows(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite3", sqliteDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM call_records`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCloseFlushesQueuedRows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cdr.db")
	s, err := OpenSQLite(path, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 250 {
		s.Put(sampleRecord(i))
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if got := countRows(t, path); got != 250 {
		t.Errorf("rows after Close = %d, want 250", got)
	}
	s.Put(sampleRecord(999)) // must neither block nor panic
	s.PutBinding(sampleBinding("alice", "phone"))
	s.DeleteBinding("alice", "phone")
	if s.Dropped() != 3 {
		t.Errorf("Dropped after writes on a closed store = %d, want 3", s.Dropped())
	}
	if err := s.Flush(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close = %v, want ErrClosed", err)
	}
}

func TestRecentOrderAndLimit(t *testing.T) {
	s, _ := openTemp(t)
	// Added out of order: Recent sorts by start time, newest first.
	for _, i := range []int{3, 0, 4, 1, 2} {
		s.Put(sampleRecord(i))
	}
	flush(t, s)
	got, err := s.Recent(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range got {
		ids = append(ids, r.CallID)
	}
	want := []string{"call-0004@carrier", "call-0003@carrier", "call-0002@carrier"}
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Errorf("Recent(3) = %v, want %v", ids, want)
	}
	all, err := s.Recent(context.Background(), 100)
	if err != nil || len(all) != 5 {
		t.Errorf("Recent(100) returned %d records (err %v), want 5", len(all), err)
	}
	if _, err := s.Recent(context.Background(), 0); err == nil {
		t.Error("Recent(0) succeeded, want an error")
	}
}

func TestSchemaVersionRecorded(t *testing.T) {
	if len(migrations) != SchemaVersion {
		t.Fatalf("SchemaVersion = %d but there are %d migrations", SchemaVersion, len(migrations))
	}
	s, path := openTemp(t)
	s.Close()
	// Reopening must not re-apply migration 1 (CREATE TABLE would fail).
	again, err := OpenSQLite(path, quietLogger())
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer again.Close()
	var version int
	if err := again.db.QueryRow(`SELECT version FROM schema_version`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version != SchemaVersion {
		t.Errorf("schema_version = %d, want %d", version, SchemaVersion)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	s, path := openTemp(t)
	if _, err := s.db.Exec(`UPDATE schema_version SET version = ?`, SchemaVersion+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if again, err := OpenSQLite(path, quietLogger()); err == nil {
		again.Close()
		t.Fatal("OpenSQLite accepted a database from a newer version")
	}
}

func TestWALMode(t *testing.T) {
	s, _ := openTemp(t)
	var mode string
	if err := s.db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
}

func TestWritesNeverBlockWhenQueueFull(t *testing.T) {
	// A store whose writer never runs: its queues of 2 fill, and further
	// writes must return at once and be counted as dropped.
	stalled := &SQLite{records: make(chan CallRecord, 2), bindings: make(chan bindingChange, 2), logger: quietLogger()}
	for i := range 5 {
		stalled.Put(sampleRecord(i))
	}
	if got := stalled.Dropped(); got != 3 {
		t.Errorf("Dropped = %d, want 3 (queue of 2, 5 puts)", got)
	}
	for range 2 {
		stalled.PutBinding(sampleBinding("alice", "phone"))
		stalled.DeleteBinding("alice", "phone")
	}
	if got := stalled.Dropped(); got != 5 {
		t.Errorf("Dropped = %d, want 5 (3 records, then 4 binding changes for a queue of 2)", got)
	}
}
