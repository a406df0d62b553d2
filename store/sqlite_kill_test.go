//go:build unix

package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// TestCommittedRecordSurvivesKill runs a child process that adds a record,
// waits for Flush and then kills itself with SIGKILL; a fresh OpenSQLite of
// the same file (as after a restart) must return the record.
func TestCommittedRecordSurvivesKill(t *testing.T) {
	if path := os.Getenv("HOTLINE_STORE_KILL_CHILD"); path != "" {
		s, err := OpenSQLite(path, quietLogger())
		if err != nil {
			fmt.Println("open:", err)
			os.Exit(1)
		}
		s.Add(sampleRecord(7))
		if err := s.Flush(context.Background()); err != nil {
			fmt.Println("flush:", err)
			os.Exit(1)
		}
		s.Add(sampleRecord(8)) // queued, not committed: may be lost
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}

	path := filepath.Join(t.TempDir(), "cdr.db")
	child := exec.Command(os.Args[0], "-test.run=^TestCommittedRecordSurvivesKill$")
	child.Env = append(os.Environ(), "HOTLINE_STORE_KILL_CHILD="+path)
	out, err := child.CombinedOutput()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL: %v\n%s", err, out)
	}

	reopened, err := OpenSQLite(path, quietLogger())
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer reopened.Close()
	got, err := reopened.Recent(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	want := sampleRecord(7)
	found := false
	for _, r := range got {
		found = found || (r.CallID == want.CallID && r.Start.Equal(want.Start))
	}
	if !found {
		t.Fatalf("after kill -9 and reopen got %+v, want the flushed record %q", got, want.CallID)
	}
}
