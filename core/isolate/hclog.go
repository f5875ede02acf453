package isolate

import (
	"context"
	"io"
	"log"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// hcLogger is the hclog.Logger go-plugin logs through, writing into the
// gateway's slog logger (which already names the plugin by its alias).
//
// go-plugin logs two things through it: its own chatter about the process
// (started, exited) on the root logger, and, on a sub-logger it names after
// the executable, every line the plugin process writes to stderr, which
// the plugin's sdk.Serve makes JSON records carrying their level. The
// plugin's records keep their level, so a warning of an isolated Modbus
// input is a warning in the gateway's log as it is in-process; go-plugin's
// own chatter below warn level is demoted to debug.
type hcLogger struct {
	log  *slog.Logger
	own  bool // the plugin's own records (stderr), not go-plugin's
	name string
	args []any // implied args (With)
}

func newHCLogger(log *slog.Logger) hclog.Logger { return &hcLogger{log: log} }

func (l *hcLogger) Log(level hclog.Level, msg string, args ...any) {
	var lv slog.Level
	switch {
	case level == hclog.Off:
		return
	case l.own:
		lv = slogLevel(level)
	case level >= hclog.Warn:
		lv = slogLevel(level)
	default:
		lv = slog.LevelDebug
	}
	ctx := context.Background()
	if !l.log.Enabled(ctx, lv) {
		return
	}
	l.log.Log(ctx, lv, msg, l.attrs(args)...)
}

// attrs joins the implied and the call's key/value pairs. go-plugin adds a
// "timestamp" to each record of the plugin (the gateway stamps its own),
// and to its own records a "plugin" with the executable's path, which would
// hide the alias.
func (l *hcLogger) attrs(args []any) []any {
	out := make([]any, 0, len(l.args)+len(args))
	all := append(append([]any{}, l.args...), args...)
	for i := 0; i < len(all); i += 2 {
		k, ok := all[i].(string)
		if !ok || i+1 == len(all) {
			out = append(out, all[i:]...)
			break
		}
		switch {
		case k == "timestamp" && l.own:
			continue
		case k == "plugin" && !l.own:
			k = "executable"
		}
		out = append(out, k, all[i+1])
	}
	return out
}

func slogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug, hclog.NoLevel:
		return slog.LevelDebug
	case hclog.Info:
		return slog.LevelInfo
	case hclog.Warn:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func (l *hcLogger) Trace(msg string, args ...any) { l.Log(hclog.Trace, msg, args...) }
func (l *hcLogger) Debug(msg string, args ...any) { l.Log(hclog.Debug, msg, args...) }
func (l *hcLogger) Info(msg string, args ...any)  { l.Log(hclog.Info, msg, args...) }
func (l *hcLogger) Warn(msg string, args ...any)  { l.Log(hclog.Warn, msg, args...) }
func (l *hcLogger) Error(msg string, args ...any) { l.Log(hclog.Error, msg, args...) }

func (l *hcLogger) enabled(level hclog.Level) bool {
	return l.log.Enabled(context.Background(), slogLevel(level))
}
func (l *hcLogger) IsTrace() bool { return l.enabled(hclog.Trace) }
func (l *hcLogger) IsDebug() bool { return l.enabled(hclog.Debug) }
func (l *hcLogger) IsInfo() bool  { return l.enabled(hclog.Info) }
func (l *hcLogger) IsWarn() bool  { return l.enabled(hclog.Warn) }
func (l *hcLogger) IsError() bool { return l.enabled(hclog.Error) }

func (l *hcLogger) ImpliedArgs() []any { return l.args }

func (l *hcLogger) With(args ...any) hclog.Logger {
	c := *l
	c.args = append(append([]any{}, l.args...), args...)
	return &c
}

func (l *hcLogger) Name() string { return l.name }

// Named is how go-plugin gets the logger for the plugin's stderr: what
// comes through a named logger is the plugin's own.
func (l *hcLogger) Named(name string) hclog.Logger {
	c := *l
	c.own, c.name = true, name
	return &c
}

func (l *hcLogger) ResetNamed(name string) hclog.Logger { return l.Named(name) }

// SetLevel is ignored: the gateway's slog handler owns the level.
func (l *hcLogger) SetLevel(hclog.Level) {}

// GetLevel is the most verbose level the gateway logs; go-plugin skips
// parsing the plugin's records below it.
func (l *hcLogger) GetLevel() hclog.Level {
	for _, lv := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn} {
		if l.enabled(lv) {
			return lv
		}
	}
	return hclog.Error
}

func (l *hcLogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(l.StandardWriter(opts), "", 0)
}

// StandardWriter logs each write as one record at info level (go-plugin
// does not use it; the interface demands it).
func (l *hcLogger) StandardWriter(*hclog.StandardLoggerOptions) io.Writer { return lineWriter{l} }

type lineWriter struct{ l *hcLogger }

func (w lineWriter) Write(p []byte) (int, error) {
	w.l.Info(strings.TrimRight(string(p), "\r\n"))
	return len(p), nil
}

var _ hclog.Logger = (*hcLogger)(nil)
