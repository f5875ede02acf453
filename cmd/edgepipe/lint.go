package main

import (
	"context"
	"fmt"

	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/plugins/processors/alarm"
	"github.com/edgepipe/edgepipe/plugins/processors/deadband"
	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/tomlscan"
)

// lint returns what check prints as warnings for a configuration that
// works but likely not as meant: every built-in plugin's own findings
// (sdk.Registration.Lint, e.g. overlapping Modbus registers) and, across
// the processor chain, a deadband placed before an alarm rule with a delay.
func lint(cfg *config.Config, points []sdk.PointSchema) sdk.ConfigErrors {
	var ws sdk.ConfigErrors
	for _, p := range cfg.Plugins() {
		r, ok := sdk.Lookup(p.FullName())
		if p.External() || !ok || r.Lint == nil {
			continue
		}
		for _, w := range r.Lint(initRequest(cfg, p, points)) {
			w.Warning = true
			ws = append(ws, placed(p, w))
		}
	}
	return append(ws, deadbandBeforeDelayedAlarm(cfg, points)...)
}

func initRequest(cfg *config.Config, p *config.Plugin, points []sdk.PointSchema) *sdk.InitRequest {
	return &sdk.InitRequest{Config: p.Text, File: p.File, Line: p.Line, Name: p.FullName(), Alias: p.ID,
		Agent:  sdk.AgentInfo{DeviceID: cfg.Agent.DeviceID, TopicPrefix: cfg.Agent.TopicPrefix, DataDir: cfg.Agent.DataDir},
		Points: points, State: sdk.NewMemState(nil)}
}

// placed names the plugin in a finding's path, as the core does for the
// errors of Init.
func placed(p *config.Plugin, e sdk.ConfigError) sdk.ConfigError {
	if e.File == "" {
		e.File, e.Line = p.File, p.Line
	}
	if e.Path == "" {
		e.Path = p.ID
	} else {
		e.Path = p.ID + "." + e.Path
	}
	return e
}

// deadbandBeforeDelayedAlarm warns about an alarm rule with a delay whose
// point a deadband earlier in the chain filters. The deadband passes on a
// reading only when it changed enough (or at its period), and the alarm
// decides on the readings it sees: with the value steady above the
// threshold it sees the first one, starts the delay, and never another,
// so the alarm is not raised (core/agent TestDeadbandBeforeDelayedAlarmStopsIt).
func deadbandBeforeDelayedAlarm(cfg *config.Config, points []sdk.PointSchema) sdk.ConfigErrors {
	type seen struct {
		p *config.Plugin
		d *deadband.Deadband
	}
	var deadbands []seen
	var ws sdk.ConfigErrors
	for _, p := range cfg.Processors {
		switch p.FullName() {
		case "processors.deadband":
			d := deadband.New()
			if _, err := d.Init(context.Background(), initRequest(cfg, p, points)); err == nil {
				deadbands = append(deadbands, seen{p, d})
			}
		case "processors.alarm":
			var ac alarm.Config
			if _, err := sdk.DecodeConfig(initRequest(cfg, p, points), &ac); err != nil {
				continue
			}
			ix := tomlscan.Scan(p.Text)
			for i, r := range ac.Rules {
				if r.Delay <= 0 {
					continue
				}
				for _, db := range deadbands {
					if !db.d.Holds(r.Point) {
						continue
					}
					key := fmt.Sprintf("rules[%d].delay", i)
					ws = append(ws, sdk.ConfigError{File: p.File, Line: p.Line + ix.Line(key) - 1, Path: p.ID + "." + key, Warning: true,
						Msg: fmt.Sprintf("rule %q waits %s for its condition, but %s (line %d) before it passes on only the readings of %s that changed (or are due at its period): "+
							"a value that stays beyond the threshold is seen once and the alarm never raises; put [[processors.alarm]] before [[processors.deadband]]",
							r.Name, r.Delay.D(), db.p.ID, db.p.Line, r.Point)})
				}
			}
		}
	}
	return ws
}
