// Package pbx wires the parts into one switch: SIP legs, media, IVR, ACD,
// recording and call records. It holds the per-call glue (the ivr.Call
// implementation) so that cmd/hotline stays flags and wiring only.
package pbx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/hotline-pbx/hotline/acd"
	"github.com/hotline-pbx/hotline/config"
	"github.com/hotline-pbx/hotline/media"
	"github.com/hotline-pbx/hotline/recording"
	"github.com/hotline-pbx/hotline/sip"
	"github.com/hotline-pbx/hotline/store"
)

// snapshot is one immutable generation of configuration and what was
// loaded for it; a call keeps the snapshot it started with.
type snapshot struct {
	cfg     *config.Config
	prompts map[string]*media.Prompt
}

// Switch is a running hotline.
type Switch struct {
	log        *slog.Logger
	snap       atomic.Pointer[snapshot]
	media      *media.Engine
	sip        *sip.Server
	acd        *acd.ACD
	records    *store.SQLite
	recordings *recording.Sink
	ctx        context.Context // cancelled on Stop: ends every call
	cancel     context.CancelFunc
	sipCancel  context.CancelFunc
	acdDone    chan struct{}
	rings      sync.WaitGroup // offers whose phones are not resolved yet
}

// New loads prompts for cfg and prepares a switch; Start runs it.
func New(cfg *config.Config, logger *slog.Logger) (*Switch, error) {
	if logger == nil {
		logger = slog.Default()
	}
	snap, err := loadSnapshot(cfg)
	if err != nil {
		return nil, err
	}
	s := &Switch{log: logger}
	s.snap.Store(snap)
	return s, nil
}

func loadSnapshot(cfg *config.Config) (*snapshot, error) {
	fsys := cfg.PromptFS()
	prompts := make(map[string]*media.Prompt)
	for _, name := range cfg.PromptNames() {
		p, err := media.OpenPrompt(fsys, name)
		if err != nil {
			return nil, err
		}
		prompts[name] = p
	}
	return &snapshot{cfg: cfg, prompts: prompts}, nil
}

func acdSpecs(cfg *config.Config) (acd.Settings, []acd.QueueSpec, []acd.AgentSpec) {
	settings := acd.Settings{BusyBackoff: cfg.ACD.BusyBackoff.Duration, MaxNoAnswer: cfg.ACD.MaxNoAnswer}
	var qs []acd.QueueSpec
	for name, q := range cfg.Queues {
		qs = append(qs, acd.QueueSpec{Name: name, Skill: q.Skill, Retry: q.Retry.Duration})
	}
	var as []acd.AgentSpec
	for _, a := range cfg.Agents {
		as = append(as, acd.AgentSpec{ID: a.ID, Skills: a.Skills})
	}
	return settings, qs, as
}

// presence maps how the registrar can reach an agent's phones to the ACD.
func presence(p sip.Presence) acd.Presence {
	switch p {
	case sip.PresenceReachable:
		return acd.PresenceReachable
	case sip.PresenceUnreachable:
		return acd.PresenceUnreachable
	}
	return acd.PresenceOffline
}

// Start opens the database (closing the records a crash left open), the
// media engine, the ACD and the SIP transports.
func (s *Switch) Start(ctx context.Context) error {
	cfg := s.snap.Load().cfg
	ctx, s.cancel = context.WithCancel(ctx)
	s.ctx = ctx
	mcfg, err := mediaConfig(cfg, s.log)
	if err != nil {
		return err
	}
	db, err := store.OpenSQLite(cfg.Storage.Database, s.log)
	if err != nil {
		return err
	}
	s.records = db
	if n, err := db.CloseInterrupted(ctx); err != nil {
		s.log.Error("closing call records left open by a crash", "error", err)
	} else if n > 0 {
		s.log.Warn("closed call records left open by a crash", "records", n, "cause", store.CauseInterrupted)
	}
	s.media, err = media.NewEngine(mcfg)
	if err != nil {
		s.records.Close()
		return err
	}
	s.recordings = recording.NewSink(s.log)
	settings, qs, as := acdSpecs(cfg)
	s.acd = acd.New(settings, qs, as, nil, s.log)
	s.acdDone = make(chan struct{})
	go func() { defer close(s.acdDone); s.acd.Run(ctx) }()

	s.sip, err = sip.New(sip.Options{
		Config:   func() *config.Config { return s.snap.Load().cfg },
		Media:    s.media,
		Handler:  s,
		OnAgent:  func(agent string, p sip.Presence) { s.acd.Presence(agent, presence(p)) },
		Bindings: db,
		Logger:   s.log,
	})
	// SIP outlives the calls on Stop: their BYEs go out from, and their
	// replies come back to, the socket the peers know.
	sipCtx, sipCancel := context.WithCancel(context.WithoutCancel(ctx))
	s.sipCancel = sipCancel
	if err == nil {
		err = s.sip.Start(sipCtx)
	}
	if err != nil {
		s.cancel()
		sipCancel()
		s.recordings.Close()
		s.media.Close()
		s.records.Close()
		return err
	}
	return nil
}

func mediaConfig(cfg *config.Config, log *slog.Logger) (media.Config, error) {
	ip, err := netip.ParseAddr(cfg.RTP.Address)
	if err != nil {
		return media.Config{}, fmt.Errorf("rtp address %q: %w", cfg.RTP.Address, err)
	}
	mc := media.Config{IP: ip, PortMin: cfg.RTP.PortMin, PortMax: cfg.RTP.PortMax,
		Timeout: cfg.RTP.Timeout.Duration, HoldTimeout: cfg.RTP.HoldTimeout.Duration, Logger: log}
	if cfg.RTP.Advertise != "" {
		if mc.Advertise, err = netip.ParseAddr(cfg.RTP.Advertise); err != nil {
			return media.Config{}, fmt.Errorf("rtp advertise %q: %w", cfg.RTP.Advertise, err)
		}
	}
	return mc, nil
}

// SIPAddr is where SIP listens.
func (s *Switch) SIPAddr() netip.AddrPort { return s.sip.Addr() }

// Registrar exposes agent bindings (status, tests).
func (s *Switch) Registrar() *sip.Registrar { return s.sip.Registrar() }

// ACD exposes queue and agent state (status, tests).
func (s *Switch) ACD() *acd.ACD { return s.acd }

// Records exposes the call records.
func (s *Switch) Records() store.Records { return s.records }

// Reload swaps in cfg, which must come from config.Load/Parse (validated).
// New calls get the new snapshot; calls in progress keep theirs; agents
// keep their state unless they were deleted. Settings that only a restart
// can change are named in the log.
func (s *Switch) Reload(cfg *config.Config) error {
	snap, err := loadSnapshot(cfg)
	if err != nil {
		return err
	}
	old := s.snap.Swap(snap)
	settings, qs, as := acdSpecs(cfg)
	s.acd.Reconfigure(settings, qs, as)
	s.sip.Reconfigure(cfg)
	for _, name := range restartOnly(old.cfg, cfg) {
		s.log.Warn("setting changed; it takes effect after a restart", "setting", name)
	}
	for _, b := range s.sip.Registrar().Bindings() {
		if cfg.Agent(b.User) == nil { // deleted agents cannot keep taking calls
			s.sip.Registrar().Remove(b.User)
		}
	}
	return nil
}

// restartOnly names the settings that differ between old and cfg and are
// read only at start: sockets, port ranges, the database.
func restartOnly(old, cfg *config.Config) []string {
	var changed []string
	for _, s := range []struct {
		name     string
		was, now any
	}{
		{"sip.listen", old.SIP.Listen, cfg.SIP.Listen},
		{"sip.transports", fmt.Sprint(old.SIP.Transports), fmt.Sprint(cfg.SIP.Transports)},
		{"sip.advertise", old.SIP.Advertise, cfg.SIP.Advertise},
		{"sip.tcp_idle_timeout", old.SIP.TCPIdleTimeout, cfg.SIP.TCPIdleTimeout},
		{"sip.tcp_max_per_source", old.SIP.TCPMaxPerSource, cfg.SIP.TCPMaxPerSource},
		{"rtp.address", old.RTP.Address, cfg.RTP.Address},
		{"rtp.advertise", old.RTP.Advertise, cfg.RTP.Advertise},
		{"rtp.port_min", old.RTP.PortMin, cfg.RTP.PortMin},
		{"rtp.port_max", old.RTP.PortMax, cfg.RTP.PortMax},
		{"rtp.timeout", old.RTP.Timeout, cfg.RTP.Timeout},
		{"rtp.hold_timeout", old.RTP.HoldTimeout, cfg.RTP.HoldTimeout},
		{"storage.database", old.Storage.Database, cfg.Storage.Database},
	} {
		if s.was != s.now {
			changed = append(changed, s.name)
		}
	}
	return changed
}

// Drain stops taking new calls (they get 503); calls in progress go on.
func (s *Switch) Drain() { s.sip.Drain() }

// ActiveCalls is how many calls are in progress.
func (s *Switch) ActiveCalls() int { return s.sip.ActiveCalls() }

// Stop ends every call (BYE to both sides, cause "shutdown"), waits for
// rings to be withdrawn, then flushes the records.
func (s *Switch) Stop() error {
	if s.cancel == nil {
		return errors.New("pbx: not started")
	}
	s.sip.Drain()
	s.cancel()
	s.sip.Wait()
	s.rings.Wait()
	s.sipCancel()
	s.sip.Close()
	<-s.acdDone
	if err := s.recordings.Close(); err != nil {
		s.log.Error("recordings", "error", err)
	}
	s.media.Close()
	return s.records.Close()
}
