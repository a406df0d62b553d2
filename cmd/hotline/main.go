// Command hotline is the contact-centre switch: SIP/RTP B2BUA, IVR, ACD.
//
//	hotline run     [-c FILE] [--drain D]      start the daemon (no -c: the embedded demo config)
//	hotline check   [-c FILE]                  validate a config, print every problem, exit 1 on any
//	hotline cdr     [-c FILE] [--limit N] [--json]   recent call records
//	hotline version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/hotline-pbx/hotline/config"
	"github.com/hotline-pbx/hotline/pbx"
	"github.com/hotline-pbx/hotline/store"
)

// version is set by the Makefile (-ldflags "-X main.version=...").
var version = "dev"

const usage = `usage: hotline <command> [flags]

commands:
  run      [-c FILE] [--drain D]        start the switch (without -c: the embedded demo config);
                                        on SIGTERM let calls finish for up to D (e.g. 10m)
  check    [-c FILE]                    validate a config; print every problem with file:line
  cdr      [-c FILE] [--limit N] [--json]  show recent call records (open ones: in-progress)
  version                               print the version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("c", "", "config file (default: the embedded demo config)")
	switch cmd {
	case "run":
		drain := fs.Duration("drain", 0, "on SIGTERM, let calls in progress finish for up to this long (e.g. 10m) before ending them")
		if fs.Parse(args) != nil {
			return 2
		}
		return runDaemon(*file, *drain, stderr)
	case "check":
		if fs.Parse(args) != nil {
			return 2
		}
		cfg, err := loadConfig(*file)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: ok (%d trunks, %d agents, %d IVRs, %d queues)\n",
			cfg.Source, len(cfg.Trunks), len(cfg.Agents), len(cfg.IVRs), len(cfg.Queues))
		return 0
	case "cdr":
		limit := fs.Int("limit", 20, "how many records, newest first")
		asJSON := fs.Bool("json", false, "print JSON instead of a table")
		if fs.Parse(args) != nil {
			return 2
		}
		return showRecords(*file, *limit, *asJSON, stdout, stderr)
	case "version", "-v", "--version":
		fmt.Fprintln(stdout, "hotline", buildVersion())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "hotline: unknown command %q\n%s", cmd, usage)
	return 2
}

func buildVersion() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return version
}

func loadConfig(file string) (*config.Config, error) {
	if file == "" {
		return config.Default(), nil
	}
	return config.Load(file)
}

func runDaemon(file string, drain time.Duration, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	slog.SetDefault(log) // libraries that log to the default logger use the same format
	cfg, err := loadConfig(file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	sw, err := pbx.New(cfg, log)
	if err == nil {
		err = sw.Start(context.Background())
	}
	if err != nil {
		log.Error("start", "error", err)
		return 1
	}
	log.Info("hotline running", "version", buildVersion(), "config", cfg.Source, "sip", sw.SIPAddr().String(),
		"database", cfg.Storage.Database, "recordings", cfg.Storage.Recordings)
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(signals)
	for sig := range signals {
		if sig == syscall.SIGHUP {
			reload(sw, file, log)
			continue
		}
		shutdown(sw, drain, signals, log)
		log.Info("stopping: ending calls in progress", "calls", sw.ActiveCalls())
		stopped := make(chan error, 1)
		go func() { stopped <- sw.Stop() }()
		for {
			select {
			case err := <-stopped:
				if err != nil {
					log.Error("stop", "error", err)
					return 1
				}
				log.Info("stopped")
				return 0
			case sig := <-signals:
				if sig != syscall.SIGHUP {
					log.Warn("signal while stopping; exiting now")
					return 1
				}
			}
		}
	}
	return 0
}

// shutdown stops taking calls and, with a drain time, waits for the calls
// in progress to end by themselves. A second SIGTERM (or SIGINT) ends the
// wait at once; the calls left are then hung up by Stop.
func shutdown(sw *pbx.Switch, drain time.Duration, signals <-chan os.Signal, log *slog.Logger) {
	sw.Drain()
	if drain <= 0 || sw.ActiveCalls() == 0 {
		return
	}
	log.Info("draining: new calls are refused; waiting for calls in progress", "calls", sw.ActiveCalls(), "up_to", drain)
	deadline := time.NewTimer(drain)
	defer deadline.Stop()
	poll := time.NewTicker(200 * time.Millisecond)
	defer poll.Stop()
	for sw.ActiveCalls() > 0 {
		select {
		case <-deadline.C:
			log.Info("drain time over; ending the calls left", "calls", sw.ActiveCalls())
			return
		case sig := <-signals:
			if sig != syscall.SIGHUP {
				log.Info("second signal; ending the calls left now", "calls", sw.ActiveCalls())
				return
			}
		case <-poll.C:
		}
	}
}

// reload swaps in a new snapshot; a bad file leaves the running one.
func reload(sw *pbx.Switch, file string, log *slog.Logger) {
	if file == "" {
		log.Info("reload: running the embedded config; nothing to reload")
		return
	}
	cfg, err := config.Load(file)
	if err == nil {
		err = sw.Reload(cfg)
	}
	if err != nil {
		log.Error("reload refused; the running config stays", "error", err)
		return
	}
	log.Info("config reloaded", "config", cfg.Source)
}

func showRecords(file string, limit int, asJSON bool, stdout, stderr io.Writer) int {
	cfg, err := loadConfig(file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if _, err := os.Stat(cfg.Storage.Database); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(stderr, "no call records yet: %s does not exist\n", cfg.Storage.Database)
		return 1
	}
	db, err := store.OpenSQLite(cfg.Storage.Database, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer db.Close()
	recs, err := db.Recent(context.Background(), limit)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if asJSON {
		err = store.FormatJSON(stdout, recs)
	} else {
		err = store.FormatTable(stdout, recs)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
