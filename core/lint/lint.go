// Package lint finds what `edgepipe check` reports as warnings: a
// configuration that works but likely not as meant. Every built-in
// plugin's own findings (sdk.Registration.Lint, e.g. overlapping Modbus
// registers) and the findings across the processor chain live here, so
// that check, SIGHUP, the console and remote configuration all warn alike
// (core/reload takes it as its Options.Lint).
package lint

import (
	"context"
	"fmt"

	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/plugins/processors/alarm"
	"github.com/edgepipe/edgepipe/plugins/processors/deadband"
	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/tomlscan"
)

// Config returns the warnings for cfg, whose inputs offer points: every
// built-in plugin's own findings and, across the processor chain, a
// deadband placed before an alarm rule with a delay. Each is marked
// Warning and placed in its plugin's table.
func Config(cfg *config.Config, points []sdk.PointSchema) sdk.ConfigErrors {
	var ws sdk.ConfigErrors
	for _, p := range cfg.Plugins() {
		r, ok := sdk.Lookup(p.FullName())
		if p.External() || !ok || r.Lint == nil {
			continue
		}
		for _, w := range r.Lint(InitRequest(cfg, p, points)) {
			w.Warning = true
			ws = append(ws, placed(p, w))
		}
	}
	return append(ws, deadbandBeforeDelayedAlarm(cfg, points)...)
}

// InitRequest is the request a plugin of cfg is initialised with when it
// is examined outside a running agent (lint, check's sample messages).
func InitRequest(cfg *config.Config, p *config.Plugin, points []sdk.PointSchema) *sdk.InitRequest {
	return &sdk.InitRequest{Config: p.Text(), File: p.File, Line: p.Line, Name: p.FullName(), Alias: p.ID,
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
// reading only when it changed enough (or at its period); with the value
// steady beyond the threshold the alarm sees the first one, starts the
// delay, and raises with the first frame that reaches it once the delay
// has passed (core/agent TestDeadbandBeforeDelayedAlarmRaisesIt). A
// processor is only called with frames, and the deadband drops a frame
// it empties: the raise waits for a reading of some point to pass it,
// which may be long after the delay, or never on a plant at rest. With the
// alarm first it comes at the first poll after the delay.
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
			if _, err := d.Init(context.Background(), InitRequest(cfg, p, points)); err == nil {
				deadbands = append(deadbands, seen{p, d})
			}
		case "processors.alarm":
			var ac alarm.Config
			if _, err := sdk.DecodeConfig(InitRequest(cfg, p, points), &ac); err != nil {
				continue
			}
			ix := tomlscan.Scan(p.Text())
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
						Msg: fmt.Sprintf("rule %q waits %s for its condition, but %s (line %d) before it holds back the readings of %s that did not change (or are not due at its period): "+
							"the alarm is then raised with the next frame that passes the deadband after the delay, late if no point changes (never while none does); "+
							"put [[processors.alarm]] before [[processors.deadband]] to raise at the first poll after the delay",
							r.Name, r.Delay.D(), db.p.ID, db.p.Line, r.Point)})
				}
			}
		}
	}
	return ws
}
