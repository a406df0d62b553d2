// Package store keeps call detail records (CDRs) and registrations.
//
// The daemon talks to the Records and Bindings interfaces only, so the
// embedded SQLite backend can later be joined by PostgreSQL without touching
// callers. Writes never wait on the database: they go through bounded queues
// to one writer goroutine that batches them into transactions, so signalling
// and media are never held up by disk I/O. A write whose transaction committed
// survives a crash of the process (kill -9).
package store

import (
	"context"
	"time"
)

// Cause is why a call ended: a fixed set of values, so that reports can group
// by it and a typo cannot invent a new one.
type Cause string

const (
	CauseNormal          Cause = "normal"           // talked, then one side hung up
	CauseCallerAbandoned Cause = "caller-abandoned" // the caller left the queue before an agent answered
	CauseCallerIVR       Cause = "caller-hangup-ivr"
	CauseIVRHangup       Cause = "ivr-hangup" // the tree hung up (goodbye, too many tries)
	CauseIVREnd          Cause = "ivr-end"    // the tree ran out of nodes or failed
	CauseMediaTimeout    Cause = "media-timeout"
	CauseShutdown        Cause = "shutdown"    // the daemon stopped
	CauseInterrupted     Cause = "interrupted" // left open by a crash; closed at the next start
)

// Side is who ended a call.
type Side string

const (
	SideCaller Side = "caller"
	SideAgent  Side = "agent"
	SideSystem Side = "system"
)

// CallRecord is one call as the caller experienced it. The daemon writes it
// when the call is answered and again as it changes; while the call is in
// progress End is zero and HangupCause empty.
type CallRecord struct {
	ID            string    `json:"id"`      // internal call id, unique per call: the key Put replaces by
	CallID        string    `json:"call_id"` // SIP Call-ID of the caller's leg (an attribute, not a key)
	Caller        string    `json:"caller"`  // caller number (From user)
	DID           string    `json:"did"`     // number dialled
	Trunk         string    `json:"trunk"`
	Start         time.Time `json:"start"`           // INVITE received
	Answer        time.Time `json:"answer,omitzero"` // agent answered (zero if never)
	End           time.Time `json:"end,omitzero"`    // zero while the call is in progress
	Digits        string    `json:"digits"`          // IVR digits taken
	Queue         string    `json:"queue"`
	Agent         string    `json:"agent"`
	WaitSeconds   float64   `json:"wait_seconds"` // queue join -> agent answer (or -> hang-up when never answered)
	TalkSeconds   float64   `json:"talk_seconds"` // agent answer -> end
	HangupCause   Cause     `json:"hangup_cause"` // empty while in progress
	HangupSide    Side      `json:"hangup_side"`
	RecordingPath string    `json:"recording_path"`

	// Audio quality at hang-up of the caller's leg and of the agent's, as
	// hotline received it (RFC 3550 receive statistics), and the round trip
	// to the party measured by RTCP. All 0 for a leg without audio (no
	// agent); RTT 0 when the party sent no RTCP.
	CallerPackets  int64   `json:"caller_packets"`   // RTP packets received from the caller
	CallerLossPct  float64 `json:"caller_loss_pct"`  // of the caller's packets, lost on the way
	CallerJitterMS float64 `json:"caller_jitter_ms"` // interarrival jitter of the caller's packets
	CallerRTTMS    float64 `json:"caller_rtt_ms"`
	AgentPackets   int64   `json:"agent_packets"`
	AgentLossPct   float64 `json:"agent_loss_pct"`
	AgentJitterMS  float64 `json:"agent_jitter_ms"`
	AgentRTTMS     float64 `json:"agent_rtt_ms"`
}

// InProgress reports whether the record is still open: the call had not
// ended when it was last written.
func (r *CallRecord) InProgress() bool { return r.End.IsZero() }

// Records is what the daemon uses to keep call records: SQLite now,
// PostgreSQL later.
type Records interface {
	// Put queues r to be written: inserted, or replacing the row with the same
	// ID. It never blocks: when the bounded queue is full the write is
	// dropped, counted and logged. Puts are applied in the order they were
	// made, so a call's final record is never overwritten by an earlier one.
	// A record without an ID is always inserted as a new row.
	Put(r CallRecord)
	// CloseInterrupted closes every record left open (End zero) by a crash:
	// cause "interrupted", side "system", End = the latest time the record
	// knows (answer, else start). It returns how many. Call it at start-up,
	// before taking calls: it also closes the records of calls in progress.
	CloseInterrupted(ctx context.Context) (int, error)
	// Recent returns up to limit records, newest first, open ones included.
	Recent(ctx context.Context, limit int) ([]CallRecord, error)
	// Close commits everything queued, then closes the database.
	Close() error
}

// Binding is one registered device of an agent, kept so that registrations
// survive a restart of the daemon.
type Binding struct {
	User      string    // agent id
	Key       string    // the device: its +sip.instance, else its Contact URI
	Contact   string    // Contact URI as registered
	Source    string    // host:port the REGISTER came from (the device's NAT)
	Transport string    // "UDP" or "TCP"
	Path      []string  // Path header values in order (RFC 3327): proxies to go through
	CallID    string    // of the last REGISTER, for RFC 3261 §10.3 ordering
	CSeq      uint32    // of the last REGISTER
	UserAgent string    // what the device calls itself
	Expires   time.Time // when the binding lapses
}

// Bindings keeps registrations across restarts. Put and Delete never wait for
// the disk (they are queued to the writer, in order, dropped and counted when
// the queue is full); Load reads them back at start-up.
type Bindings interface {
	PutBinding(b Binding)
	DeleteBinding(user, key string)
	LoadBindings(ctx context.Context) ([]Binding, error)
}
