package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// migrations[i] brings the schema from version i to version i+1. Append new
// steps; never edit one that has shipped.
var migrations = []string{
	// 1: call detail records. Times are unix milliseconds (UTC), NULL when unset.
	`CREATE TABLE call_records (
		id             INTEGER PRIMARY KEY,
		call_id        TEXT    NOT NULL,
		caller         TEXT    NOT NULL,
		did            TEXT    NOT NULL,
		trunk          TEXT    NOT NULL,
		start_ms       INTEGER,
		answer_ms      INTEGER,
		end_ms         INTEGER,
		digits         TEXT    NOT NULL,
		queue          TEXT    NOT NULL,
		agent          TEXT    NOT NULL,
		wait_seconds   REAL    NOT NULL,
		talk_seconds   REAL    NOT NULL,
		hangup_cause   TEXT    NOT NULL,
		hangup_side    TEXT    NOT NULL,
		recording_path TEXT    NOT NULL
	);
	CREATE INDEX call_records_start ON call_records(start_ms);
	CREATE INDEX call_records_call_id ON call_records(call_id);`,

	// 2: records are written at answer and replaced by the internal call id
	// (uid) as the call goes on; rows from before keep a unique uid of their
	// own. Open rows (end_ms NULL) are indexed for closing after a crash.
	`ALTER TABLE call_records ADD COLUMN uid TEXT NOT NULL DEFAULT '';
	UPDATE call_records SET uid = 'legacy-' || id;
	CREATE UNIQUE INDEX call_records_uid ON call_records(uid);
	CREATE INDEX call_records_open ON call_records(id) WHERE end_ms IS NULL;`,

	// 3: registrations, one row per agent device. path is a JSON array of
	// Path header values ('' when none); expires_ms is unix milliseconds.
	`CREATE TABLE bindings (
		user_id    TEXT    NOT NULL,
		device_key TEXT    NOT NULL,
		contact    TEXT    NOT NULL,
		source     TEXT    NOT NULL,
		transport  TEXT    NOT NULL,
		path       TEXT    NOT NULL,
		call_id    TEXT    NOT NULL,
		cseq       INTEGER NOT NULL,
		user_agent TEXT    NOT NULL,
		expires_ms INTEGER NOT NULL,
		PRIMARY KEY (user_id, device_key)
	) WITHOUT ROWID;`,

	// 4: audio quality at hang-up of the caller's leg and the agent's (RFC
	// 3550 receive statistics and RTCP round trip); 0 when a leg had none.
	`ALTER TABLE call_records ADD COLUMN caller_packets   INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE call_records ADD COLUMN caller_loss_pct  REAL    NOT NULL DEFAULT 0;
	ALTER TABLE call_records ADD COLUMN caller_jitter_ms REAL    NOT NULL DEFAULT 0;
	ALTER TABLE call_records ADD COLUMN caller_rtt_ms    REAL    NOT NULL DEFAULT 0;
	ALTER TABLE call_records ADD COLUMN agent_packets    INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE call_records ADD COLUMN agent_loss_pct   REAL    NOT NULL DEFAULT 0;
	ALTER TABLE call_records ADD COLUMN agent_jitter_ms  REAL    NOT NULL DEFAULT 0;
	ALTER TABLE call_records ADD COLUMN agent_rtt_ms     REAL    NOT NULL DEFAULT 0;`,
}

// SchemaVersion is the schema version this build creates and understands.
const SchemaVersion = 4

// migrate applies every migration the database has not seen yet, each in its
// own transaction together with the version bump, so a crash leaves the
// database at a clean version. The version is read inside the transaction so
// two processes opening the same file at once do not both apply a step.
func migrate(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx,
		`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_version: %w", err)
	}
	for step, statement := range migrations {
		target := step + 1
		if err := applyMigration(ctx, db, target, statement); err != nil {
			return fmt.Errorf("schema migration to version %d: %w", target, err)
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, target int, statement string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit

	current, err := schemaVersion(ctx, tx)
	if err != nil {
		return err
	}
	if current > SchemaVersion {
		return fmt.Errorf("database schema version %d is newer than this program supports (%d)",
			current, SchemaVersion)
	}
	if current >= target {
		return nil
	}
	if _, err := tx.ExecContext(ctx, statement); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM schema_version`); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (?)`, target); err != nil {
		return err
	}
	return tx.Commit()
}

func schemaVersion(ctx context.Context, tx *sql.Tx) (int, error) {
	var version sql.NullInt64
	err := tx.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_version`).Scan(&version)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return int(version.Int64), nil
}
