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
	"sync/atomic"

	"github.com/hotline-pbx/hotline/acd"
	"github.com/hotline-pbx/hotline/config"
	"github.com/hotline-pbx/hotline/media"
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
	log     *slog.Logger
	snap    atomic.Pointer[snapshot]
	media   *media.Engine
	sip     *sip.Server
	acd     *acd.ACD
	records store.Records
	ctx     context.Context // cancelled on Stop: ends every call
	cancel  context.CancelFunc
	acdDone chan struct{}
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
		f, err := fsys.Open(name + ".wav")
		if err != nil {
			return nil, fmt.Errorf("prompt %q: %w", name, err)
		}
		p, err := media.LoadWAV(name, f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("prompt %q: %w", name, err)
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

// Start opens the database, the media engine and the SIP transports.
func (s *Switch) Start(ctx context.Context) error {
	cfg := s.snap.Load().cfg
	ctx, s.cancel = context.WithCancel(ctx)
	s.ctx = ctx
	rtpIP, err := netip.ParseAddr(cfg.RTP.Address)
	if err != nil {
		return fmt.Errorf("rtp address %q: %w", cfg.RTP.Address, err)
	}
	db, err := store.OpenSQLite(cfg.Storage.Database, s.log)
	if err != nil {
		return err
	}
	s.records = db
	s.media, err = media.NewEngine(media.Config{IP: rtpIP, PortMin: cfg.RTP.PortMin, PortMax: cfg.RTP.PortMax, Logger: s.log})
	if err != nil {
		s.records.Close()
		return err
	}
	settings, qs, as := acdSpecs(cfg)
	s.acd = acd.New(settings, qs, as, nil, s.log)
	s.acdDone = make(chan struct{})
	go func() { defer close(s.acdDone); s.acd.Run(ctx) }()

	s.sip, err = sip.New(sip.Options{
		Config:  func() *config.Config { return s.snap.Load().cfg },
		Media:   s.media,
		Handler: s,
		OnAgent: func(agent string, p sip.Presence) {
			// In this slice a reachable agent is logged in and available.
			if p == sip.PresenceReachable {
				s.acd.Presence(agent, acd.PresenceReachable)
			} else {
				s.acd.Presence(agent, acd.PresenceOffline)
			}
		},
		Logger: s.log,
	})
	if err == nil {
		err = s.sip.Start(ctx)
	}
	if err != nil {
		s.cancel()
		s.media.Close()
		s.records.Close()
		return err
	}
	return nil
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
// keep their state unless they were deleted.
func (s *Switch) Reload(cfg *config.Config) error {
	snap, err := loadSnapshot(cfg)
	if err != nil {
		return err
	}
	s.snap.Store(snap)
	settings, qs, as := acdSpecs(cfg)
	s.acd.Reconfigure(settings, qs, as)
	for _, b := range s.sip.Registrar().Bindings() {
		if cfg.Agent(b.User) == nil { // deleted agents cannot keep taking calls
			s.sip.Registrar().Remove(b.User)
		}
	}
	return nil
}

// Stop ends every call, then flushes the records.
func (s *Switch) Stop() error {
	if s.cancel == nil {
		return errors.New("pbx: not started")
	}
	s.cancel()
	s.sip.Wait()
	s.sip.Close()
	<-s.acdDone
	s.media.Close()
	return s.records.Close()
}
