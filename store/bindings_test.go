package store

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// bindingExpiry is a millisecond-exact time well in the future, so that
// LoadBindings keeps the binding and it round-trips exactly.
var bindingExpiry = time.Now().Add(time.Hour).Truncate(time.Millisecond).UTC()

func sampleBinding(user, key string) Binding {
	return Binding{
		User:      user,
		Key:       key,
		Contact:   "sip:" + user + "@192.0.2.10:5062;transport=tcp;ob",
		Source:    "192.0.2.10:5062",
		Transport: "TCP",
		Path: []string{
			`<sip:edge1.example.net;lr;received="sip:192.0.2.1:5060">`,
			`<sip:p2.example.net;lr>, <sip:p3.example.net;lr>`, // a comma and semicolons inside one value
			`"quoted ; name" <sip:p4.example.net>`,
		},
		CallID:    "reg-" + user + "@192.0.2.10",
		CSeq:      4_000_000_000, // above int32: the full uint32 range survives
		UserAgent: "Linphone/5.2 (Ubuntu)",
		Expires:   bindingExpiry,
	}
}

func load(t *testing.T, s *SQLite) []Binding {
	t.Helper()
	bs, err := s.LoadBindings(context.Background())
	if err != nil {
		t.Fatalf("LoadBindings: %v", err)
	}
	return bs
}

func countBindings(t *testing.T, s *SQLite) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow(`SELECT COUNT(*) FROM bindings`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestBindingRoundTrip(t *testing.T) {
	s, _ := openTemp(t)
	noPath := sampleBinding("1002", "urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF")
	noPath.Path = nil
	want := []Binding{sampleBinding("1001", "sip:1001@192.0.2.10:5062"), noPath}
	for _, b := range want {
		s.PutBinding(b)
	}
	// No Flush: LoadBindings comes after the changes queued before it.
	if got := load(t, s); !reflect.DeepEqual(got, want) {
		t.Errorf("LoadBindings:\n got %+v\nwant %+v", got, want)
	}
}

// Changes to one binding are applied in the order they were made, across
// batches: a delete removes what was put before it, and only that.
func TestBindingPutThenDelete(t *testing.T) {
	s, _ := openTemp(t)
	s.PutBinding(sampleBinding("1001", "desk"))
	s.PutBinding(sampleBinding("1001", "mobile"))
	s.DeleteBinding("1001", "desk")
	for i := range 2 * batchRows { // other agents' churn, over several batches
		s.PutBinding(sampleBinding(fmt.Sprint(2000+i), "phone"))
		s.DeleteBinding(fmt.Sprint(2000+i), "phone")
	}
	s.DeleteBinding("1001", "mobile")
	reregistered := sampleBinding("1001", "mobile")
	reregistered.CSeq, reregistered.Source = 7, "192.0.2.99:40000"
	s.PutBinding(reregistered)
	s.DeleteBinding("1001", "no-such-device") // deleting nothing is no error

	if got := load(t, s); !reflect.DeepEqual(got, []Binding{reregistered}) {
		t.Errorf("LoadBindings = %+v, want only the re-registered mobile %+v", got, reregistered)
	}
	if d := s.Dropped(); d != 0 {
		t.Errorf("Dropped = %d, want 0", d)
	}
}

func TestBindingsSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hotline.db")
	s, err := OpenSQLite(path, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	want := sampleBinding("1001", "desk")
	s.PutBinding(want)
	if err := s.Close(); err != nil { // Close commits what is queued
		t.Fatal(err)
	}
	again, err := OpenSQLite(path, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if got := load(t, again); !reflect.DeepEqual(got, []Binding{want}) {
		t.Errorf("after reopen: %+v, want %+v", got, want)
	}
}

func TestLoadBindingsDeletesExpired(t *testing.T) {
	s, _ := openTemp(t)
	expired := sampleBinding("1001", "old")
	expired.Expires = time.Now().Add(-time.Second)
	live := sampleBinding("1001", "new")
	s.PutBinding(expired)
	s.PutBinding(live)
	if got := load(t, s); !reflect.DeepEqual(got, []Binding{live}) {
		t.Errorf("LoadBindings = %+v, want only the live one", got)
	}
	if n := countBindings(t, s); n != 1 {
		t.Errorf("%d binding rows left, want 1 (the expired one deleted)", n)
	}
}

// A row whose Path cannot be decoded (written by hand, or damaged) costs only
// that binding.
func TestLoadBindingsSkipsAnUnreadableRow(t *testing.T) {
	s, _ := openTemp(t)
	good := sampleBinding("1001", "desk")
	s.PutBinding(good)
	s.PutBinding(sampleBinding("1002", "desk"))
	flush(t, s)
	if _, err := s.db.Exec(`UPDATE bindings SET path = '["unterminated' WHERE user_id = '1002'`); err != nil {
		t.Fatal(err)
	}
	if got := load(t, s); !reflect.DeepEqual(got, []Binding{good}) {
		t.Errorf("LoadBindings = %+v, want only the readable binding", got)
	}
}
