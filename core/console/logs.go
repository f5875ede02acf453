package console

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// LogRecord is one log record the console keeps.
type LogRecord struct {
	Time  time.Time         `json:"ts"`
	Level string            `json:"level"`
	Msg   string            `json:"msg"`
	Attrs map[string]string `json:"attrs,omitempty"`
}

// LogRing keeps the last records of the gateway's log for the console
// (GET /api/v1/logs): a fixed-size ring, so that a chatty plugin costs
// memory once. It sees what the gateway's handler lets through (the same
// level), and holds nothing the log does not (secrets never enter the log).
type LogRing struct {
	mu   sync.Mutex
	recs []LogRecord
	next int
	size int
}

// NewLogRing keeps up to size records.
func NewLogRing(size int) *LogRing { return &LogRing{size: max(size, 1)} }

// Handler wraps the gateway's handler: every record it handles is also
// kept in the ring.
func (r *LogRing) Handler(next slog.Handler) slog.Handler { return &ringHandler{ring: r, next: next} }

func (r *LogRing) add(rec LogRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.recs) < r.size {
		r.recs = append(r.recs, rec)
	} else {
		r.recs[r.next] = rec
	}
	r.next = (r.next + 1) % r.size
}

// Records returns up to limit of the latest records at or above level,
// oldest first.
func (r *LogRing) Records(level slog.Level, limit int) []LogRecord {
	r.mu.Lock()
	all := make([]LogRecord, 0, len(r.recs))
	if len(r.recs) < r.size {
		all = append(all, r.recs...)
	} else {
		all = append(append(all, r.recs[r.next:]...), r.recs[:r.next]...)
	}
	r.mu.Unlock()
	out := all[:0]
	for _, rec := range all {
		var l slog.Level
		if l.UnmarshalText([]byte(rec.Level)) == nil && l >= level {
			out = append(out, rec)
		}
	}
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out
}

type ringHandler struct {
	ring  *LogRing
	next  slog.Handler
	attrs []slog.Attr // from WithAttrs, keys already prefixed with their groups
	group string      // "a.b." prefix of keys added later
}

func (h *ringHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *ringHandler) Handle(ctx context.Context, rec slog.Record) error {
	kept := LogRecord{Time: rec.Time, Level: rec.Level.String(), Msg: rec.Message}
	if len(h.attrs) > 0 || rec.NumAttrs() > 0 {
		kept.Attrs = make(map[string]string, len(h.attrs)+rec.NumAttrs())
		for _, a := range h.attrs {
			addAttr(kept.Attrs, "", a)
		}
		rec.Attrs(func(a slog.Attr) bool {
			addAttr(kept.Attrs, h.group, a)
			return true
		})
	}
	h.ring.add(kept)
	return h.next.Handle(ctx, rec)
}

func addAttr(m map[string]string, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range v.Group() {
			addAttr(m, p, g)
		}
		return
	}
	if a.Key == "" {
		return
	}
	m[prefix+a.Key] = v.String()
}

func (h *ringHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := *h
	n.next = h.next.WithAttrs(attrs)
	n.attrs = append([]slog.Attr(nil), h.attrs...)
	for _, a := range attrs {
		if h.group != "" {
			a.Key = h.group + a.Key
		}
		n.attrs = append(n.attrs, a)
	}
	return &n
}

func (h *ringHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := *h
	n.next = h.next.WithGroup(name)
	n.group = h.group + strings.TrimSuffix(name, ".") + "."
	return &n
}
