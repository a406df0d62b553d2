package store

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// keepBehindWriter waits for the writer when the records queue is half full,
// so that a benchmark measures writes, never the drop path.
func keepBehindWriter(b *testing.B, s *SQLite) {
	if len(s.records) > queueCapacity/2 {
		if err := s.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

func checkNothingDropped(b *testing.B, s *SQLite) {
	b.Helper()
	if err := s.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	if d := s.Dropped(); d != 0 {
		b.Fatalf("dropped %d writes", d)
	}
}

// BenchmarkPut measures what a call's goroutine pays per Put: the queue is
// emptied (timer stopped) before it fills so no Put takes the drop path.
func BenchmarkPut(b *testing.B) {
	s, _ := openTemp(b)
	r := sampleRecord(1)
	b.ReportAllocs()
	for b.Loop() {
		s.Put(r)
		if len(s.records) > queueCapacity/2 {
			b.StopTimer()
			keepBehindWriter(b, s)
			b.StartTimer()
		}
	}
	b.StopTimer()
	checkNothingDropped(b, s)
}

// BenchmarkPutAndCommit measures sustained throughput of new rows through
// the writer to disk, and reports how many rows each transaction carried.
func BenchmarkPutAndCommit(b *testing.B) {
	s := openCounting(b)
	before := commits.Load()
	r := sampleRecord(1)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		r.ID = strconv.Itoa(n) // a new row each time, as before upserts
		n++
		s.Put(r)
		keepBehindWriter(b, s)
	}
	checkNothingDropped(b, s)
	b.ReportMetric(float64(n)/float64(commits.Load()-before), "rows/txn")
}

// BenchmarkCallLifecycle is one call's writes as the daemon makes them:
// answered, agent answered, ended (three Puts of the same ID), through to disk.
func BenchmarkCallLifecycle(b *testing.B) {
	s := openCounting(b)
	before := commits.Load()
	b.ReportAllocs()
	n := 0
	ended := sampleRecord(1)
	for b.Loop() {
		r := ended
		r.ID = strconv.Itoa(n)
		n++
		r.Answer, r.End, r.HangupCause, r.HangupSide = time.Time{}, time.Time{}, "", ""
		s.Put(r)
		r.Answer = ended.Answer
		s.Put(r)
		r.End, r.HangupCause, r.HangupSide = ended.End, ended.HangupCause, ended.HangupSide
		s.Put(r)
		keepBehindWriter(b, s)
	}
	checkNothingDropped(b, s)
	b.ReportMetric(float64(3*n)/float64(commits.Load()-before), "puts/txn")
}
