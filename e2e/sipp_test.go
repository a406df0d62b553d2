package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// sipTesterDirs are where Debian's sip-tester (and a source install) put the
// captures SIPp ships.
var sipTesterDirs = []string{"/usr/share/sip-tester", "/usr/local/share/sipp", "/usr/share/sipp"}

// findSIPpCapture returns the path of one of the captures SIPp ships.
func findSIPpCapture(name string) (string, error) {
	for _, dir := range sipTesterDirs {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("capture %s not in %v (Debian package sip-tester)", name, sipTesterDirs)
}

// dtmfCapture is the name of the RFC 4733 capture SIPp ships for a digit.
func dtmfCapture(digit string) string {
	switch digit {
	case "*":
		digit = "star"
	case "#":
		digit = "pound"
	}
	return "dtmf_2833_" + digit + ".pcap"
}

// carrierCall is one run of testdata/sipp/carrier.xml.
type carrierCall struct {
	Scenario    string
	Dir         string // SIPp's working directory: its trace files go here
	LocalPort   int    // SIP
	MediaPort   int
	Target      string // daemon's SIP address host:port
	DID         string
	DTMFPcap    string
	SpeechPcap  string
	MenuWait    time.Duration
	AgentWait   time.Duration
	Tail        time.Duration
	Timeout     time.Duration
	ErrorFile   string
	MessageFile string
	LogFile     string
	ScreenFile  string
}

// carrierResult is what SIPp reported.
type carrierResult struct {
	Argv     []string
	ExitCode int
	Started  time.Time
	Duration time.Duration
	Output   string
	CallID   string // SIPp's [call_id] for the first call
	// InviteTo200 is from sending the INVITE to receiving its 200 OK, from the
	// time stamps of SIPp's message log.
	InviteTo200    time.Duration
	InviteTo200Err error
	Events         []string // the scenario's <log> lines: "<ms since start> <what>"
}

// run runs SIPp to completion (or Timeout) and collects its results.
func (c carrierCall) run(ctx context.Context) (carrierResult, error) {
	argv := []string{"sipp",
		"-sf", c.Scenario,
		"-i", "127.0.0.1", "-p", strconv.Itoa(c.LocalPort), "-mp", strconv.Itoa(c.MediaPort),
		"-m", "1", "-l", "1",
		"-s", c.DID,
		"-key", "dtmf_pcap", c.DTMFPcap,
		"-key", "speech_pcap", c.SpeechPcap,
		"-key", "menu_wait_ms", strconv.FormatInt(c.MenuWait.Milliseconds(), 10),
		"-key", "agent_wait_ms", strconv.FormatInt(c.AgentWait.Milliseconds(), 10),
		"-key", "tail_ms", strconv.FormatInt(c.Tail.Milliseconds(), 10),
		"-nostdin",
		"-trace_err", "-error_file", c.ErrorFile,
		"-trace_msg", "-message_file", c.MessageFile,
		"-trace_logs", "-log_file", c.LogFile,
		"-trace_screen", "-screen_file", c.ScreenFile,
		"-timeout", fmt.Sprintf("%ds", int(c.Timeout.Seconds())), "-timeout_error",
		c.Target,
	}
	res := carrierResult{Argv: argv}
	// SIPp's own -timeout ends it; the context is a backstop.
	ctx, cancel := context.WithTimeout(ctx, c.Timeout+10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = c.Dir
	cmd.WaitDelay = stopGrace
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = &out
	res.Started = time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("start sipp: %w", err)
	}
	res.CallID = fmt.Sprintf("1-%d@127.0.0.1", cmd.Process.Pid)
	err := cmd.Wait()
	res.Duration = time.Since(res.Started)
	res.Output = out.String()
	res.ExitCode = cmd.ProcessState.ExitCode()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return res, fmt.Errorf("sipp: %w", err)
	}
	if b, err := os.ReadFile(c.LogFile); err == nil {
		res.Events = strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	res.InviteTo200, res.InviteTo200Err = inviteTo200(c.MessageFile)
	return res, nil
}

// sippMessageStamp is the layout of the time stamp on the separator line before
// each message in SIPp's -trace_msg log.
const sippMessageStamp = "2006-01-02 15:04:05.000000"

// inviteTo200 reads SIPp's message log: the time from sending the first INVITE
// to receiving its 200 OK, to the microsecond.
func inviteTo200(messageLog string) (time.Duration, error) {
	b, err := os.ReadFile(messageLog)
	if err != nil {
		return 0, err
	}
	var sent time.Time
	for _, block := range strings.Split("\n"+string(b), "\n-----------------------------------------------")[1:] {
		stampLine, rest, _ := strings.Cut(block, "\n")
		at, err := time.Parse(sippMessageStamp, strings.Join(strings.Fields(stampLine), " "))
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(rest), "\n")
		if len(lines) < 3 {
			continue
		}
		direction, startLine := lines[0], strings.TrimSpace(lines[2])
		switch {
		case sent.IsZero() && strings.Contains(direction, "sent") && strings.HasPrefix(startLine, "INVITE "):
			sent = at
		case !sent.IsZero() && strings.Contains(direction, "received") && strings.HasPrefix(startLine, "SIP/2.0 200") &&
			cseqMethod(lines) == "INVITE":
			return at.Sub(sent), nil
		}
	}
	return 0, fmt.Errorf("%s: no INVITE answered by 200", messageLog)
}

// cseqMethod returns the method of a message's CSeq header.
func cseqMethod(lines []string) string {
	for _, l := range lines {
		name, value, ok := strings.Cut(l, ":")
		if ok && strings.EqualFold(strings.TrimSpace(name), "CSeq") {
			f := strings.Fields(value)
			if len(f) == 2 {
				return f[1]
			}
		}
	}
	return ""
}

// eventAt returns when (ms since SIPp started) the scenario logged a line
// containing what.
func (r carrierResult) eventAt(what string) (time.Duration, bool) {
	for _, e := range r.Events {
		tick, rest, ok := strings.Cut(e, " ")
		if !ok || !strings.Contains(rest, what) {
			continue
		}
		if ms, err := strconv.Atoi(tick); err == nil {
			return time.Duration(ms) * time.Millisecond, true
		}
	}
	return 0, false
}
