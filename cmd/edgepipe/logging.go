package main

import (
	"io"
	"log/slog"

	"github.com/edgepipe/edgepipe/core/config"
)

// gatewayLogger is the logger of a pipeline command: [agent] log_format
// ("text" or "json", one object per line for a log collector) at
// log_level. The level is a LevelVar so that a reload changes it in place
// (applyLogLevel) without touching the pipeline.
func gatewayLogger(a config.Agent, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	applyLogLevel(level, a)
	opts := &slog.HandlerOptions{Level: level}
	if a.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), level
	}
	return slog.New(slog.NewTextHandler(w, opts)), level
}

// applyLogLevel sets level from a validated [agent] log_level.
func applyLogLevel(level *slog.LevelVar, a config.Agent) {
	var l slog.Level
	_ = l.UnmarshalText([]byte(a.LogLevel))
	level.Set(l)
}
