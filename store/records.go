package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// recordColumns are the call_records columns a CallRecord maps to, in the
// order of recordArgs and scanRecord.
const recordColumns = `uid, call_id, caller, did, trunk, start_ms, answer_ms, end_ms, digits, queue, agent,
	wait_seconds, talk_seconds, hangup_cause, hangup_side, recording_path,
	caller_packets, caller_loss_pct, caller_jitter_ms, caller_rtt_ms,
	agent_packets, agent_loss_pct, agent_jitter_ms, agent_rtt_ms`

// putRecordSQL inserts a record or replaces the one with the same uid in
// place (its row id, and so its place among equal start times, stays). A
// record without an ID gets a fresh random uid: always a new row.
const putRecordSQL = `INSERT INTO call_records (` + recordColumns + `)
	VALUES (COALESCE(NULLIF(?, ''), 'anon-' || lower(hex(randomblob(16)))),
		?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (uid) DO UPDATE SET
		call_id = excluded.call_id, caller = excluded.caller, did = excluded.did,
		trunk = excluded.trunk, start_ms = excluded.start_ms, answer_ms = excluded.answer_ms,
		end_ms = excluded.end_ms, digits = excluded.digits, queue = excluded.queue,
		agent = excluded.agent, wait_seconds = excluded.wait_seconds,
		talk_seconds = excluded.talk_seconds, hangup_cause = excluded.hangup_cause,
		hangup_side = excluded.hangup_side, recording_path = excluded.recording_path,
		caller_packets = excluded.caller_packets, caller_loss_pct = excluded.caller_loss_pct,
		caller_jitter_ms = excluded.caller_jitter_ms, caller_rtt_ms = excluded.caller_rtt_ms,
		agent_packets = excluded.agent_packets, agent_loss_pct = excluded.agent_loss_pct,
		agent_jitter_ms = excluded.agent_jitter_ms, agent_rtt_ms = excluded.agent_rtt_ms`

// Put queues r for the writer and returns at once: the row with r.ID is
// inserted or replaced. When the queue is full, or the store is closed, the
// write is dropped, counted (see Dropped) and logged.
func (s *SQLite) Put(r CallRecord) {
	if reason := enqueue(s, s.records, r); reason != "" {
		s.drop("call record", reason, "id", r.ID, "call_id", r.CallID)
	}
}

func (s *SQLite) putRecords(ctx context.Context, tx *sql.Tx, records []CallRecord) error {
	if len(records) == 0 {
		return nil
	}
	put := tx.StmtContext(ctx, s.stmts.putRecord)
	for i := range records {
		r := &records[i]
		if _, err := put.ExecContext(ctx,
			r.ID, r.CallID, r.Caller, r.DID, r.Trunk,
			unixMillis(r.Start), unixMillis(r.Answer), unixMillis(r.End),
			r.Digits, r.Queue, r.Agent, r.WaitSeconds, r.TalkSeconds,
			string(r.HangupCause), string(r.HangupSide), r.RecordingPath,
			r.CallerPackets, r.CallerLossPct, r.CallerJitterMS, r.CallerRTTMS,
			r.AgentPackets, r.AgentLossPct, r.AgentJitterMS, r.AgentRTTMS); err != nil {
			return fmt.Errorf("put call record %q (call %q): %w", r.ID, r.CallID, err)
		}
	}
	return nil
}

// CloseInterrupted closes the records left open by a crash (see Records). It
// runs on the writer, after every Put made before it.
func (s *SQLite) CloseInterrupted(ctx context.Context) (int, error) {
	var closed int64
	err := s.inWriter(ctx, func(ctx context.Context, tx *sql.Tx) error {
		// A record that knows no time at all ends now, so that it is closed
		// once and for all.
		res, err := tx.ExecContext(ctx, `UPDATE call_records
			SET end_ms = COALESCE(answer_ms, start_ms, ?), hangup_cause = ?, hangup_side = ?
			WHERE end_ms IS NULL`,
			time.Now().UnixMilli(), string(CauseInterrupted), string(SideSystem))
		if err != nil {
			return err
		}
		closed, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("close interrupted call records: %w", err)
	}
	return int(closed), nil
}

// Recent returns up to limit records, newest (by start time) first. Calls in
// progress are included, with End zero and no cause.
func (s *SQLite) Recent(ctx context.Context, limit int) ([]CallRecord, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("recent call records: limit %d must be positive", limit)
	}
	if s.closed.Load() {
		return nil, ErrClosed
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+recordColumns+`
		FROM call_records ORDER BY start_ms DESC, id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("query recent call records: %w", err)
	}
	defer rows.Close()
	var recs []CallRecord
	for rows.Next() {
		var r CallRecord
		var start, answer, end sql.NullInt64
		if err := rows.Scan(&r.ID, &r.CallID, &r.Caller, &r.DID, &r.Trunk, &start, &answer, &end,
			&r.Digits, &r.Queue, &r.Agent, &r.WaitSeconds, &r.TalkSeconds,
			&r.HangupCause, &r.HangupSide, &r.RecordingPath,
			&r.CallerPackets, &r.CallerLossPct, &r.CallerJitterMS, &r.CallerRTTMS,
			&r.AgentPackets, &r.AgentLossPct, &r.AgentJitterMS, &r.AgentRTTMS); err != nil {
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
