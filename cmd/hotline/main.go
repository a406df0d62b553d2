// Command hotline is the contact-centre switch: SIP/RTP B2BUA, IVR, ACD.
//
//	hotline run     [-c FILE]                  start the daemon (no -c: the embedded demo config)
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

	"github.com/hotline-pbx/hotline/config"
	"github.com/hotline-pbx/hotline/pbx"
	"github.com/hotline-pbx/hotline/store"
)

// version is set by the Makefile (-ldflags "-X main.version=...").
var version = "dev"

const usage = `usage: hotline <command> [flags]

commands:
  run      [-c FILE]                    start the switch (without -c: the embedded demo config)
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
		if fs.Parse(args) != nil {
			return 2
		}
		return runDaemon(*file, stderr)
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

func runDaemon(file string, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	slog.SetDefault(log) // libraries that log to the default logger use the same format
	cfg, err := loadConfig(file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sw, err := pbx.New(cfg, log)
	if err == nil {
		err = sw.Start(ctx)
	}
	if err != nil {
		log.Error("start", "error", err)
		return 1
	}
	log.Info("hotline running", "version", buildVersion(), "config", cfg.Source, "sip", sw.SIPAddr().String(),
		"database", cfg.Storage.Database, "recordings", cfg.Storage.Recordings)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping")
			if err := sw.Stop(); err != nil {
				log.Error("stop", "error", err)
				return 1
			}
			return 0
		case <-hup:
			reload(sw, file, log)
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
