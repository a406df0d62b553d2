package config

import (
	"net/netip"
	"reflect"
	"time"
)

// Defaults for settings a file leaves out.
const (
	DefaultListen      = "127.0.0.1:5060"
	DefaultRealm       = "hotline"
	DefaultUserAgent   = "hotline"
	DefaultPortMin     = 10000
	DefaultPortMax     = 20000
	DefaultDatabase    = "./var/hotline.db"
	DefaultRecordings  = "./var/recordings"
	DefaultMenuTimeout = 5 * time.Second
	DefaultMenuTries   = 3
	DefaultRingTimeout = 15 * time.Second
	DefaultMusicOnHold = "moh"
	DefaultRetry       = 5 * time.Second

	DefaultTCPIdleTimeout  = 5 * time.Minute
	DefaultTCPMaxPerSource = 32
	DefaultQualifyInterval = 30 * time.Second
	DefaultMinExpires      = 60
	DefaultMaxExpires      = 3600
	DefaultRTPTimeout      = 30 * time.Second
	DefaultHoldTimeout     = 5 * time.Minute
	DefaultBusyBackoff     = 30 * time.Second
	DefaultMaxNoAnswer     = 3
)

// DefaultTransports are the SIP transports used when a file names none.
var DefaultTransports = []string{"udp", "tcp"}

// DefaultDigestAlgorithms are offered when a file names none.
var DefaultDigestAlgorithms = []string{"MD5"}

// Parse decodes a TOML config, fills in defaults and validates all of it. source
// names the file in problems and becomes Config.Source.
//
// On any problem it returns a nil Config and a [Problems] error listing every
// problem found, in file order. Parse stats the prompt files the config refers to
// (see [Config.PromptFS]); it reads nothing else.
func Parse(source string, data []byte) (*Config, error) {
	c, r, syntax := decode(source, string(data))
	if syntax != nil {
		return nil, Problems{*syntax}
	}
	checkNodeKeys(c, r) // before defaults, which fill in keys a node type ignores
	applyDefaults(c)
	validate(c, r)
	if err := r.result(); err != nil {
		return nil, err
	}
	return c, nil
}

// decode turns TOML text into a Config as written, without defaults or checks
// beyond types and key names.
func decode(source, src string) (*Config, *report, *Problem) {
	raw, syntax := parseTOML(source, src)
	if syntax != nil {
		return nil, nil, syntax
	}
	r := newReport(source, locate(src))
	c := &Config{Source: source}
	(&decoder{r: r}).value(nil, "", "", raw, reflect.ValueOf(c).Elem())
	return c, r, nil
}

func applyDefaults(c *Config) {
	s := &c.SIP
	if s.Listen == "" {
		s.Listen = DefaultListen
	}
	if s.Transports == nil {
		s.Transports = append([]string(nil), DefaultTransports...)
	}
	if s.DigestAlgorithms == nil {
		s.DigestAlgorithms = append([]string(nil), DefaultDigestAlgorithms...)
	}
	if s.Realm == "" {
		s.Realm = DefaultRealm
	}
	if s.UserAgent == "" {
		s.UserAgent = DefaultUserAgent
	}
	setDuration(&s.TCPIdleTimeout, DefaultTCPIdleTimeout)
	setDuration(&s.QualifyInterval, DefaultQualifyInterval)
	setInt(&s.TCPMaxPerSource, DefaultTCPMaxPerSource)
	setInt(&s.MinExpires, DefaultMinExpires)
	setInt(&s.MaxExpires, DefaultMaxExpires)
	setDuration(&c.RTP.Timeout, DefaultRTPTimeout)
	setDuration(&c.RTP.HoldTimeout, DefaultHoldTimeout)
	setDuration(&c.ACD.BusyBackoff, DefaultBusyBackoff)
	setInt(&c.ACD.MaxNoAnswer, DefaultMaxNoAnswer)
	if c.RTP.Address == "" {
		// Media follows signalling: serving the LAN is a one-line change of sip.listen.
		if ap, err := netip.ParseAddrPort(s.Listen); err == nil {
			c.RTP.Address = ap.Addr().String()
		}
	}
	if c.RTP.Advertise == "" && s.Advertise != "" {
		// Behind 1:1 NAT media is reached at the same public IP as signalling.
		if ap, err := ParseAdvertise(s.Advertise); err == nil {
			c.RTP.Advertise = ap.Addr().String()
		}
	}
	if c.RTP.PortMin == 0 {
		c.RTP.PortMin = DefaultPortMin
	}
	if c.RTP.PortMax == 0 {
		c.RTP.PortMax = DefaultPortMax
	}
	if c.Storage.Database == "" {
		c.Storage.Database = DefaultDatabase
	}
	if c.Storage.Recordings == "" {
		c.Storage.Recordings = DefaultRecordings
	}
	for i := range c.Agents {
		if c.Agents[i].Name == "" {
			c.Agents[i].Name = c.Agents[i].ID
		}
	}
	for _, tree := range c.IVRs {
		for _, n := range tree.Nodes {
			if n.Type != NodeMenu {
				continue
			}
			if n.Timeout.Duration == 0 {
				n.Timeout.Duration = DefaultMenuTimeout
			}
			if n.Tries == 0 {
				n.Tries = DefaultMenuTries
			}
		}
	}
	for _, q := range c.Queues {
		if q.RingTimeout.Duration == 0 {
			q.RingTimeout.Duration = DefaultRingTimeout
		}
		if q.MusicOnHold == "" {
			q.MusicOnHold = DefaultMusicOnHold
		}
		if q.Strategy == "" {
			q.Strategy = StrategyLongestIdle
		}
		setDuration(&q.Retry, DefaultRetry)
	}
}

// setDuration and setInt fill in a default for a setting left out (zero).
func setDuration(d *Duration, def time.Duration) {
	if d.Duration == 0 {
		d.Duration = def
	}
}

func setInt(n *int, def int) {
	if *n == 0 {
		*n = def
	}
}
