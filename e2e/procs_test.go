package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stopGrace is how long a child gets to exit after SIGTERM before SIGKILL.
const stopGrace = 5 * time.Second

// process is a child process whose output goes to a log file in the test's
// directory and is kept in memory so the test can wait for a line. It is
// stopped (SIGTERM, then SIGKILL) when the test ends.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	out     *watchedLog
	cancel  context.CancelFunc
	done    chan struct{}
	waitErr error // set before done is closed
}

// startProcess starts argv in dir with output to logPath. The process is bounded by
// ctx and by the test: t.Cleanup stops it and waits for it.
func startProcess(t *testing.T, ctx context.Context, name, dir, logPath string, argv ...string) *process {
	t.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("%s: create log: %v", name, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdin = nil // /dev/null: nothing here is interactive
	out := &watchedLog{file: logFile, started: time.Now()}
	cmd.Stdout = out
	cmd.Stderr = out
	// Ask politely first so baresip unregisters, sndfile finishes its WAV header and
	// the daemon commits its call records.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = stopGrace
	if err := cmd.Start(); err != nil {
		cancel()
		logFile.Close()
		t.Fatalf("%s: start %q: %v", name, strings.Join(argv, " "), err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, out: out, cancel: cancel, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	t.Logf("started %s (pid %d): %s", name, cmd.Process.Pid, strings.Join(argv, " "))
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("--- last lines of %s output (%s) ---\n%s", name, logPath, tailLines(p.out.String(), 60))
		}
	})
	return p
}

// stop sends SIGTERM (SIGKILL after stopGrace) and waits for the process to exit.
func (p *process) stop() {
	p.cancel()
	<-p.done
}

// exited reports whether the process has ended, and how.
func (p *process) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// waitForLine waits until the output contains want and returns when it was first
// seen. It gives up early when the output contains one of failIf, or when the
// process exits.
func (p *process) waitForLine(ctx context.Context, want string, failIf ...string) (time.Time, error) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if at, ok := p.out.firstSeen(want); ok {
			return at, nil
		}
		text := p.out.String()
		for _, bad := range failIf {
			if i := strings.Index(text, bad); i >= 0 {
				return time.Time{}, fmt.Errorf("%s printed %q while waiting for %q", p.name, lineAt(text, i), want)
			}
		}
		if done, err := p.exited(); done {
			return time.Time{}, fmt.Errorf("%s exited (%v) before printing %q", p.name, err, want)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%s did not print %q: %w", p.name, want, ctx.Err())
		case <-tick.C:
		}
	}
}

// watchedLog is an io.Writer that copies to a file and remembers when each line
// arrived, so a test can wait for a line and time it.
type watchedLog struct {
	mu      sync.Mutex
	file    *os.File
	buf     bytes.Buffer
	started time.Time
	lines   []timedLine
	partial []byte
}

type timedLine struct {
	at   time.Time
	text string
}

func (w *watchedLog) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	w.buf.Write(b)
	w.partial = append(w.partial, b...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.lines = append(w.lines, timedLine{at: now, text: string(w.partial[:i])})
		w.partial = w.partial[i+1:]
	}
	return w.file.Write(b)
}

func (w *watchedLog) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// firstSeen returns when the first complete line containing s arrived.
func (w *watchedLog) firstSeen(s string) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range w.lines {
		if strings.Contains(l.text, s) {
			return l.at, true
		}
	}
	return time.Time{}, false
}

func lineAt(text string, i int) string {
	start := strings.LastIndexByte(text[:i], '\n') + 1
	end := strings.IndexByte(text[i:], '\n')
	if end < 0 {
		return text[start:]
	}
	return text[start : i+end]
}

func tailLines(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// tailFile is tailLines for a file; a missing file says so instead.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return tailLines(string(b), n)
}

// buildDaemon builds ./cmd/hotline from the module root into dir.
func buildDaemon(t *testing.T, ctx context.Context, moduleRoot, dir string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is not on PATH: %v", err)
	}
	bin := filepath.Join(dir, "hotline")
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", bin, "./cmd/hotline")
	cmd.Dir = moduleRoot
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/hotline: %v\n%s", err, out)
	}
	t.Logf("built %s in %v", bin, time.Since(start).Round(time.Millisecond))
	return bin
}

// pickPort returns preferred when every port preferred+offset (offsets, both UDP
// and TCP) can be bound on 127.0.0.1, otherwise another port for which that holds.
// Something may still take it before the child binds it; the child then fails
// loudly, which is good enough on a developer machine.
func pickPort(t *testing.T, preferred int, offsets ...int) int {
	t.Helper()
	if len(offsets) == 0 {
		offsets = []int{0}
	}
	if portsFree(preferred, offsets) {
		return preferred
	}
	for range 50 {
		l, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("pick a free port: %v", err)
		}
		port := l.LocalAddr().(*net.UDPAddr).Port
		l.Close()
		if port+offsets[len(offsets)-1] < 65536 && portsFree(port, offsets) {
			return port
		}
	}
	t.Fatalf("no free port on 127.0.0.1 near %d", preferred)
	return 0
}

func portsFree(base int, offsets []int) bool {
	for _, off := range offsets {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(base+off))
		u, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return false
		}
		u.Close()
		l, err := net.Listen("tcp4", addr)
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}

// waitSIPAnswers sends SIP OPTIONS over UDP to addr until something answers with a
// SIP response, the daemon exits, or ctx ends.
func waitSIPAnswers(ctx context.Context, addr string, daemon *process) error {
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("probe socket: %w", err)
	}
	defer conn.Close()
	to, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", addr, err)
	}
	local := conn.LocalAddr().String()
	buf := make([]byte, 4096)
	for n := 1; ; n++ {
		if done, werr := daemon.exited(); done {
			return fmt.Errorf("the daemon exited (%v) before answering SIP on %s", werr, addr)
		}
		probe := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\n"+
			"Via: SIP/2.0/UDP %s;branch=z9hG4bK-e2e-probe-%d;rport\r\n"+
			"Max-Forwards: 70\r\n"+
			"From: <sip:probe@%s>;tag=e2e-probe-%d\r\n"+
			"To: <sip:%s>\r\n"+
			"Call-ID: e2e-probe-%d@127.0.0.1\r\n"+
			"CSeq: %d OPTIONS\r\n"+
			"Content-Length: 0\r\n\r\n", addr, local, n, local, n, addr, n, n)
		if _, err := conn.WriteTo([]byte(probe), to); err != nil {
			return fmt.Errorf("send OPTIONS to %s: %w", addr, err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if m, _, err := conn.ReadFrom(buf); err == nil && bytes.HasPrefix(buf[:m], []byte("SIP/2.0 ")) {
			return nil
		} else if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			// ICMP port unreachable shows up as a read error on Linux: not up yet.
			time.Sleep(100 * time.Millisecond)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("nothing answered SIP OPTIONS on %s: %w", addr, ctx.Err())
		}
	}
}
