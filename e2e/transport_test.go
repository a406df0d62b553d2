package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

// Addresses and ports of the transport tests: the daemon on transportIP, its
// peers on the addresses above it.
const (
	transportIP      = "127.0.7.10"
	transportSIPPort = 33010
	transportRTPMin  = 33100
	transportRTPMax  = 33198
	fdLimit          = 256
	idleTimeout      = 3 * time.Second
	// secretMarker stands for an Authorization header's digest response.
	secretMarker = "e2e5ecretDigestResp0nse"
)

// peerIP is the n-th peer address, 127.0.7.11 on.
func peerIP(n int) string { return fmt.Sprintf("127.0.7.%d", 11+n) }

// TestDaemonTCPSurvivesDescriptorExhaustion runs the daemon with 256 file
// descriptors, opens TCP connections from many addresses until it cannot
// accept any more, closes them, and checks that a phone can then register
// over TCP; that an idle connection is closed; and that malformed messages
// are logged by their first line, never with their Authorization header.
func TestDaemonTCPSurvivesDescriptorExhaustion(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	bin := buildDaemon(t, ctx, root, tmp)
	port := transportSIPPort
	cfgPath := writeTransportConfig(t, root, tmp, port)
	addr := fmt.Sprintf("%s:%d", transportIP, port)
	daemon := startProcess(t, ctx, "hotline", tmp, filepath.Join(tmp, "hotline.log"),
		"bash", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" run -c "$1"`, fdLimit), bin, cfgPath)
	upCtx, upCancel := context.WithTimeout(ctx, 20*time.Second)
	defer upCancel()
	if err := waitSIPAnswers(upCtx, addr, daemon); err != nil {
		t.Fatal(err)
	}
	if limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", daemon.cmd.Process.Pid)); err == nil {
		t.Logf("daemon %s", lineAt(string(limits), strings.Index(string(limits), "Max open files")))
	}

	// 1. Exhaust its descriptors: 20 addresses x 30 connections (under
	// tcp_max_per_source), far more than 256.
	var conns []net.Conn
	for src := range 20 {
		for range 30 {
			c, err := dialTCPFrom(ctx, peerIP(src), addr)
			if err != nil {
				t.Fatalf("connection %d: %v", len(conns), err)
			}
			conns = append(conns, c)
		}
	}
	// Observed from outside: every descriptor the daemon may have is in use.
	pid := daemon.cmd.Process.Pid
	for open := 0; open < fdLimit; {
		if open, err = openFiles(pid); err != nil {
			t.Fatal(err)
		}
		if ctx.Err() != nil {
			t.Fatalf("opened %d connections; the daemon holds %d descriptors, never %d", len(conns), open, fdLimit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%d connections open; the daemon holds all its %d descriptors", len(conns), fdLimit)
	for _, c := range conns {
		c.Close()
	}

	// 2. Once they are gone, a phone registers over TCP and gets its challenge.
	if got := registerOverTCP(t, ctx, peerIP(20), addr); got != "SIP/2.0 401 Unauthorized" {
		t.Fatalf("REGISTER over TCP after descriptor exhaustion: %q, want SIP/2.0 401 Unauthorized", got)
	}
	const acceptFailed = `msg="sip tcp accept failed; retrying"`
	if i := strings.Index(daemon.out.String(), acceptFailed); i < 0 {
		t.Errorf("the daemon did not log its failed accepts (%s)", acceptFailed)
	} else if failure := lineAt(daemon.out.String(), i); !strings.Contains(failure, "too many open files") {
		t.Errorf("accepts failed for another reason than descriptor exhaustion: %s", failure)
	} else {
		t.Logf("the daemon logged: %s", failure)
	}

	// 3. A connection that sends nothing is closed after tcp_idle_timeout.
	idle, err := dialTCPFrom(ctx, peerIP(21), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	_ = idle.SetReadDeadline(time.Now().Add(10 * idleTimeout))
	if n, err := idle.Read(make([]byte, 16)); err != io.EOF {
		t.Errorf("idle connection: read %d bytes, %v; want EOF: the daemon did not close it", n, err)
	}

	// 4. Malformed messages carrying an Authorization header, over UDP and TCP.
	for i, network := range []string{"udp", "tcp"} {
		d := net.Dialer{LocalAddr: localAddr(network, peerIP(22))}
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/%s %s;branch=z9hG4bK-bad-%d\r\nMax-Forwards: 70\r\n"+
			"From: <sip:1001@%s>;tag=b%d\r\nTo: <sip:1001@%s>\r\nCall-ID: bad-%d\r\nCSeq: x REGISTER\r\n"+
			"Authorization: Digest username=\"1001\", realm=\"hotline\", nonce=\"n\", uri=\"sip:%s\", response=\"%s\"\r\n"+
			"Content-Length: 0\r\n\r\n", transportIP, strings.ToUpper(network), c.LocalAddr(), i, transportIP, i, transportIP, i, transportIP, secretMarker)
		line := fmt.Sprintf(`transport=%s source=%s first_line="REGISTER sip:%s SIP/2.0"`, strings.ToUpper(network), c.LocalAddr(), transportIP)
		logCtx, logCancel := context.WithTimeout(ctx, 10*time.Second)
		if _, err := daemon.waitForLine(logCtx, line); err != nil {
			t.Errorf("malformed REGISTER over %s: %v", network, err)
		}
		logCancel()
		c.Close()
	}
	daemon.stop()
	logged, err := os.ReadFile(daemon.logPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(logged), secretMarker) {
		t.Errorf("the Authorization header reached the daemon's log: %s", lineAt(string(logged), strings.Index(string(logged), secretMarker)))
	}
}

// writeTransportConfig is the demo config on the transport tests' address,
// with a short idle timeout.
func writeTransportConfig(t *testing.T, root, dir string, port int) string {
	t.Helper()
	setup := testSetup{ModuleRoot: root, DemoConfig: filepath.Join(root, "config", "demo", "hotline.toml"),
		SIPPort: port, RTPMin: transportRTPMin, RTPMax: transportRTPMax,
		DatabasePath: filepath.Join(dir, "hotline.db"), RecordingsDir: filepath.Join(dir, "recordings")}
	path, _, err := writeTestConfig(setup, dir, demoDID, demoQueue, demoAgent)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if _, err := toml.DecodeFile(path, &cfg); err != nil {
		t.Fatal(err)
	}
	sip := table(cfg, "sip")
	sip["listen"] = fmt.Sprintf("%s:%d", transportIP, port)
	sip["transports"] = []string{"udp", "tcp"}
	sip["tcp_idle_timeout"] = idleTimeout.String()
	sip["tcp_max_per_source"] = 32
	table(cfg, "rtp")["address"] = transportIP
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := toml.NewEncoder(f).Encode(cfg); err != nil {
		t.Fatal(err)
	}
	return path
}

func localAddr(network, ip string) net.Addr {
	if network == "udp" {
		return &net.UDPAddr{IP: net.ParseIP(ip)}
	}
	return &net.TCPAddr{IP: net.ParseIP(ip)}
}

func dialTCPFrom(ctx context.Context, ip, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: localAddr("tcp", ip), Timeout: 5 * time.Second}
	return d.DialContext(ctx, "tcp", addr)
}

// registerOverTCP sends an unauthenticated REGISTER for agent 1001 from ip
// and returns the status line of the answer.
func registerOverTCP(t *testing.T, ctx context.Context, ip, addr string) string {
	t.Helper()
	c, err := dialTCPFrom(ctx, ip, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	local := c.LocalAddr().String()
	fmt.Fprintf(c, "REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/TCP %s;branch=z9hG4bK-e2e-reg\r\nMax-Forwards: 70\r\n"+
		"From: <sip:1001@%s>;tag=reg\r\nTo: <sip:1001@%s>\r\nCall-ID: e2e-reg@%s\r\nCSeq: 1 REGISTER\r\n"+
		"Contact: <sip:1001@%s;transport=tcp>\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n",
		transportIP, local, transportIP, transportIP, ip, local)
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Sprintf("no answer: %v", err)
	}
	return strings.TrimRight(line, "\r\n")
}

// openFiles counts the descriptors process pid holds.
func openFiles(pid int) (int, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, fmt.Errorf("descriptors of the daemon: %w", err)
	}
	return len(fds), nil
}
