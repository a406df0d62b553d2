// Package store keeps call detail records (CDRs).
//
// The daemon talks to the Records interface only, so the embedded SQLite
// backend can later be joined by PostgreSQL without touching callers. Add never
// waits on the database: rows go through a bounded queue to one writer
// goroutine that batches them into transactions, so signalling and media are
// never held up by disk I/O. A row whose transaction committed survives a crash
// of the process (kill -9).
package store

import (
	"context"
	"time"
)

// CallRecord is one finished call as the caller experienced it.
type CallRecord struct {
	CallID        string    `json:"call_id"`
	Caller        string    `json:"caller"` // caller number (From user)
	DID           string    `json:"did"`    // number dialled
	Trunk         string    `json:"trunk"`
	Start         time.Time `json:"start"`           // INVITE received
	Answer        time.Time `json:"answer,omitzero"` // agent answered (zero if never)
	End           time.Time `json:"end"`
	Digits        string    `json:"digits"` // IVR digits taken
	Queue         string    `json:"queue"`
	Agent         string    `json:"agent"`
	WaitSeconds   float64   `json:"wait_seconds"` // queue join -> agent answer (or -> hang-up when never answered)
	TalkSeconds   float64   `json:"talk_seconds"` // agent answer -> end
	HangupCause   string    `json:"hangup_cause"` // e.g. "normal", "no-agent", "ivr-timeout", "caller-abandoned"
	HangupSide    string    `json:"hangup_side"`  // "caller", "agent", "system"
	RecordingPath string    `json:"recording_path"`
}

// Records is what the daemon uses to keep call records: SQLite now,
// PostgreSQL later.
type Records interface {
	// Add hands the row to the writer goroutine and returns at once. When the
	// bounded queue is full the row is dropped, counted and logged rather than
	// blocking the caller.
	Add(r CallRecord)
	// Recent returns up to limit records, newest first.
	Recent(ctx context.Context, limit int) ([]CallRecord, error)
	// Close commits everything queued, then closes the database.
	Close() error
}
