package sip

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Logs never carry a SIP message. sipgo logs whole messages when it cannot
// parse them ("data"), and parse errors quote the offending header line, so
// an Authorization header (user, nonce, digest response: crackable offline)
// would reach the log. Everything sipgo logs goes through redactingHandler,
// which keeps the first line of any text and cuts credentials out of it.

// maxLoggedLine caps what is kept of one line of outside text.
const maxLoggedLine = 160

// credentialMarkers start the part of a line that is never logged: an
// Authorization or Proxy-Authorization header, or a digest credential value
// seen without its header name (a stream that lost its framing).
var credentialMarkers = []string{"authorization", "digest "}

// firstLine is what may be logged of text that came off the network: its
// first line, shortened, with any credential cut off.
func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	cut := len(s)
	lower := strings.ToLower(s)
	for _, m := range credentialMarkers {
		if i := strings.Index(lower, m); i >= 0 && i+len(m) < cut {
			cut = i + len(m)
		}
	}
	if cut < len(s) {
		return s[:cut] + "[redacted]"
	}
	if len(s) > maxLoggedLine {
		return s[:maxLoggedLine] + "..."
	}
	return s
}

// redactingHandler passes records on with every text value reduced by
// firstLine: the message, strings, errors, byte slices and anything printed
// with %+v.
type redactingHandler struct{ next slog.Handler }

func newRedactingHandler(next slog.Handler) slog.Handler {
	return redactingHandler{next: next}
}

func (h redactingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h redactingHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, firstLine(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h redactingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	safe := make([]slog.Attr, len(as))
	for i, a := range as {
		safe[i] = redactAttr(a)
	}
	return redactingHandler{next: h.next.WithAttrs(safe)}
}

func (h redactingHandler) WithGroup(name string) slog.Handler {
	return redactingHandler{next: h.next.WithGroup(name)}
}

func redactAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, firstLine(v.String()))
	case slog.KindGroup:
		g := v.Group()
		safe := make([]any, len(g))
		for i, ga := range g {
			safe[i] = redactAttr(ga)
		}
		return slog.Group(a.Key, safe...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, firstLine(x.Error()))
		case []byte:
			return slog.String(a.Key, firstLine(string(x)))
		default:
			return slog.String(a.Key, firstLine(fmt.Sprintf("%+v", x)))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// sipgo also logs through its package default logger, where no option
// reaches (connection reference counting, transports we construct). It is
// set once, before anything can log, to a redacting logger that follows the
// newest Server's logger (the daemon has one) or slog's default before any.
func init() {
	sip.SetDefaultLogger(slog.New(newRedactingHandler(followHandler{})))
}

var newestServerHandler atomic.Pointer[slog.Handler]

// sipgoLogger is the logger sipgo gets from s: redacting, and the one its
// package default follows from now on.
func (s *Server) sipgoLogger() *slog.Logger {
	h := s.opts.Logger.With("part", "sipgo").Handler()
	newestServerHandler.Store(&h)
	return slog.New(newRedactingHandler(h))
}

// followHandler hands records to the newest Server's handler.
type followHandler struct {
	ops []func(slog.Handler) slog.Handler // WithAttrs/WithGroup, replayed in order
}

func (f followHandler) target() slog.Handler {
	h := slog.Default().Handler()
	if p := newestServerHandler.Load(); p != nil {
		h = *p
	}
	for _, op := range f.ops {
		h = op(h)
	}
	return h
}

func (f followHandler) Enabled(ctx context.Context, l slog.Level) bool {
	if p := newestServerHandler.Load(); p != nil {
		return (*p).Enabled(ctx, l)
	}
	return slog.Default().Handler().Enabled(ctx, l)
}

func (f followHandler) Handle(ctx context.Context, r slog.Record) error {
	return f.target().Handle(ctx, r)
}

func (f followHandler) with(op func(slog.Handler) slog.Handler) followHandler {
	return followHandler{ops: append(f.ops[:len(f.ops):len(f.ops)], op)}
}

func (f followHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return f.with(func(h slog.Handler) slog.Handler { return h.WithAttrs(as) })
}

func (f followHandler) WithGroup(name string) slog.Handler {
	return f.with(func(h slog.Handler) slog.Handler { return h.WithGroup(name) })
}

// logLimiter lets burst records through per interval and counts the rest,
// so a flood from the network cannot flood the log.
type logLimiter struct {
	every time.Duration
	burst int

	mu         sync.Mutex
	window     time.Time // start of the current interval
	logged     int       // in this interval
	suppressed int       // since the last record logged
}

// allow reports whether to log now and how many records were held back
// since the last one logged.
func (l *logLimiter) allow() (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now := time.Now(); now.Sub(l.window) >= l.every {
		l.window, l.logged = now, 0
	}
	if l.logged >= l.burst {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.logged, l.suppressed = l.logged+1, 0
	return true, n
}
