package store

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
)

// tableTimeLayout is how start times appear in the human table (local time).
const tableTimeLayout = "2006-01-02 15:04:05"

// inProgress stands in the CAUSE column for a call that has not ended (or
// whose end was never written: `hotline run` closes those as interrupted at
// its next start).
const inProgress = "in-progress"

// FormatTable writes recs as an aligned table for people (`hotline cdr`).
// QUALITY is the loss and jitter of the caller's audio, then the agent's
// ("-" for a leg without audio); the round trips are in the JSON.
// Fields come from the network (caller number, digits), so control characters
// are escaped: a record is always exactly one line and cannot drive the
// terminal.
func FormatTable(w io.Writer, recs []CallRecord) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CALL ID\tSTART\tCALLER\tDID\tDIGITS\tQUEUE\tAGENT\tWAIT S\tTALK S\tCAUSE\tSIDE\tQUALITY\tRECORDING")
	for _, r := range recs {
		start := "-"
		if !r.Start.IsZero() {
			start = r.Start.Local().Format(tableTimeLayout)
		}
		talk, cause := fmt.Sprintf("%.1f", r.TalkSeconds), cell(string(r.HangupCause))
		if r.InProgress() {
			talk, cause = "-", inProgress // talk time is known only at the end
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f\t%s\t%s\t%s\t%s|%s\t%s\n",
			cell(r.CallID), start, cell(r.Caller), cell(r.DID), cell(r.Digits),
			cell(r.Queue), cell(r.Agent), r.WaitSeconds, talk,
			cause, cell(string(r.HangupSide)),
			quality(r.CallerPackets, r.CallerLossPct, r.CallerJitterMS),
			quality(r.AgentPackets, r.AgentLossPct, r.AgentJitterMS), cell(r.RecordingPath))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write call record table: %w", err)
	}
	return nil
}

// quality is one leg's part of the QUALITY cell: "0.5%/3.2ms", or "-" when
// the leg received no audio.
func quality(packets int64, lossPct, jitterMS float64) string {
	if packets == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%/%.1fms", lossPct, jitterMS)
}

// cell makes a value safe for one table cell: "-" when empty; control
// characters (tabs and newlines included), invalid UTF-8 and backslashes
// escaped Go-style so the output stays unambiguous.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	if strings.IndexFunc(s, needsEscape) < 0 {
		return s
	}
	quoted := strconv.QuoteToGraphic(s)
	return quoted[1 : len(quoted)-1]
}

func needsEscape(r rune) bool {
	return r == unicode.ReplacementChar || r == '\\' || !unicode.IsGraphic(r)
}

// FormatJSON writes recs as an indented JSON array (times in RFC 3339, UTC,
// "answer" omitted when never answered, "end" while in progress).
func FormatJSON(w io.Writer, recs []CallRecord) error {
	if recs == nil {
		recs = []CallRecord{}
	}
	utc := make([]CallRecord, len(recs))
	for i, r := range recs {
		r.Start, r.Answer, r.End = utcTime(r.Start), utcTime(r.Answer), utcTime(r.End)
		utc[i] = r
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(utc); err != nil {
		return fmt.Errorf("write call records as JSON: %w", err)
	}
	return nil
}

func utcTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}
