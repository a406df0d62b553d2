package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// bindingChange is one queued write to the bindings table: an upsert, or the
// removal of Binding{User, Key}.
type bindingChange struct {
	b      Binding
	remove bool
}

const putBindingSQL = `INSERT INTO bindings
	(user_id, device_key, contact, source, transport, path, call_id, cseq, user_agent, expires_ms)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (user_id, device_key) DO UPDATE SET
		contact = excluded.contact, source = excluded.source, transport = excluded.transport,
		path = excluded.path, call_id = excluded.call_id, cseq = excluded.cseq,
		user_agent = excluded.user_agent, expires_ms = excluded.expires_ms`

const deleteBindingSQL = `DELETE FROM bindings WHERE user_id = ? AND device_key = ?`

// PutBinding queues b for the writer: it replaces the binding with the same
// User and Key. It never blocks; when the queue is full, or the store is
// closed, the change is dropped, counted (see Dropped) and logged.
func (s *SQLite) PutBinding(b Binding) {
	s.changeBinding(bindingChange{b: b})
}

// DeleteBinding queues the removal of the binding of user's device key,
// after every PutBinding made before it. It never blocks, as PutBinding.
func (s *SQLite) DeleteBinding(user, key string) {
	s.changeBinding(bindingChange{b: Binding{User: user, Key: key}, remove: true})
}

func (s *SQLite) changeBinding(c bindingChange) {
	if reason := enqueue(s, s.bindings, c); reason != "" {
		s.drop("binding change", reason, "user", c.b.User, "key", c.b.Key, "delete", c.remove)
	}
}

func (s *SQLite) applyBindings(ctx context.Context, tx *sql.Tx, changes []bindingChange) error {
	if len(changes) == 0 {
		return nil
	}
	put := tx.StmtContext(ctx, s.stmts.putBinding)
	del := tx.StmtContext(ctx, s.stmts.deleteBinding)
	for i := range changes {
		b := &changes[i].b
		var err error
		if changes[i].remove {
			_, err = del.ExecContext(ctx, b.User, b.Key)
		} else {
			_, err = put.ExecContext(ctx, b.User, b.Key, b.Contact, b.Source, b.Transport,
				encodePath(b.Path), b.CallID, int64(b.CSeq), b.UserAgent, b.Expires.UnixMilli())
		}
		if err != nil {
			return fmt.Errorf("binding of %q device %q: %w", b.User, b.Key, err)
		}
	}
	return nil
}

// encodePath keeps each Path value whole whatever it contains (commas,
// semicolons, quotes): a JSON array, or "" when there is none.
func encodePath(path []string) string {
	if len(path) == 0 {
		return ""
	}
	out, _ := json.Marshal(path) // a []string always marshals
	return string(out)
}

func decodePath(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var path []string
	if err := json.Unmarshal([]byte(s), &path); err != nil {
		return nil, fmt.Errorf("path %q: %w", s, err)
	}
	return path, nil
}

// LoadBindings returns the stored bindings ordered by user and key, after
// deleting those already expired (through the writer, after every change
// queued before). A row that cannot be read back is logged and skipped, so
// that one bad row does not cost every other registration.
func (s *SQLite) LoadBindings(ctx context.Context) ([]Binding, error) {
	err := s.inWriter(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM bindings WHERE expires_ms <= ?`, time.Now().UnixMilli())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("delete expired bindings: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT
		user_id, device_key, contact, source, transport, path, call_id, cseq, user_agent, expires_ms
		FROM bindings ORDER BY user_id, device_key`)
	if err != nil {
		return nil, fmt.Errorf("query bindings: %w", err)
	}
	defer rows.Close()
	var out []Binding
	for rows.Next() {
		var b Binding
		var path string
		var cseq, expires int64
		if err := rows.Scan(&b.User, &b.Key, &b.Contact, &b.Source, &b.Transport, &path,
			&b.CallID, &cseq, &b.UserAgent, &expires); err != nil {
			return nil, fmt.Errorf("read binding: %w", err)
		}
		if b.Path, err = decodePath(path); err != nil {
			s.logger.Warn("stored binding skipped", "user", b.User, "key", b.Key, "err", err)
			continue
		}
		b.CSeq, b.Expires = uint32(cseq), time.UnixMilli(expires).UTC()
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read bindings: %w", err)
	}
	return out, nil
}
