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

// TestCommittedRecordSurvivesKill runs a child process that puts a finished
// record and the record of a call in progress (answered, no end), waits for
// Flush and then kills itself with SIGKILL; a fresh OpenSQLite of the same
// file (as after a restart) must return both, and close the open one as
// interrupted at its answer time.
func TestCommittedRecordSurvivesKill(t *testing.T) {
	if path := os.Getenv("HOTLINE_STORE_KILL_CHILD"); path != "" {
		s, err := OpenSQLite(path, quietLogger())
		if err != nil {
			fmt.Println("open:", err)
			os.Exit(1)
		}
		s.Put(sampleRecord(7))
		s.Put(answered(9))
		if err := s.Flush(context.Background()); err != nil {
			fmt.Println("flush:", err)
			os.Exit(1)
		}
		s.Put(sampleRecord(8)) // queued, not committed: may be lost
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
	ctx := context.Background()
	recs := recent(t, reopened)
	want := sampleRecord(7)
	if r, ok := recs[want.ID]; !ok || r.CallID != want.CallID || !r.End.Equal(want.End) {
		t.Fatalf("after kill -9 and reopen got %+v, want the flushed record %q", recs, want.ID)
	}
	open := answered(9)
	if r, ok := recs[open.ID]; !ok || !r.InProgress() || !r.Answer.Equal(open.Answer) {
		t.Fatalf("after kill -9 and reopen: call in progress %+v (found %v), want it open with its answer", r, ok)
	}

	n, err := reopened.CloseInterrupted(ctx)
	if err != nil || n != 1 {
		t.Fatalf("CloseInterrupted = %d, %v; want 1", n, err)
	}
	r := recent(t, reopened)[open.ID]
	if r.HangupCause != CauseInterrupted || r.HangupSide != SideSystem || !r.End.Equal(open.Answer) {
		t.Errorf("closed as %s by %s at %v; want interrupted by system at the answer, %v",
			r.HangupCause, r.HangupSide, r.End, open.Answer)
	}
	if n, err := reopened.CloseInterrupted(ctx); err != nil || n != 0 {
		t.Errorf("second CloseInterrupted = %d, %v; want 0", n, err)
	}
}
