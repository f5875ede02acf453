package main

import (
	"context"

	"github.com/BurntSushi/toml"

	"github.com/edgepipe/edgepipe/core/agent"
	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/core/lint"
	"github.com/edgepipe/edgepipe/plugins/processors/alarm"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// sampleEvents builds the alarm events and pictures of check's sample
// messages from what is configured: one raised event per alarm rule (its
// own name, level and message) and one picture per camera. Without alarm
// rules or cameras there is no such sample: a made-up "sample_rule" or
// "sample_camera" message would suggest the gateway sends them.
func sampleEvents(cfg *config.Config, points []sdk.PointSchema) ([]sdk.Alarm, []sdk.Picture) {
	kinds := map[string]sdk.Kind{}
	for _, s := range points {
		kinds[s.FullName()] = s.Kind
	}
	value := func(point string) sdk.Value { return agent.SampleValue(kinds[point]) }
	var alarms []sdk.Alarm
	for _, p := range cfg.Processors {
		if p.FullName() != "processors.alarm" {
			continue
		}
		al := alarm.New()
		if _, err := al.Init(context.Background(), lint.InitRequest(cfg, p, points)); err == nil {
			alarms = append(alarms, al.SampleEvents(0, value)...)
			_ = al.Close(context.Background())
		}
	}
	var pictures []sdk.Picture
	for _, p := range cfg.Inputs {
		if p.FullName() != "inputs.camera" {
			continue
		}
		var c struct {
			Device string `toml:"device"`
		}
		if _, err := toml.Decode(string(p.Text()), &c); err == nil && c.Device != "" {
			// The smallest JPEG: start and end of image.
			pictures = append(pictures, sdk.Picture{Device: c.Device, Format: "jpeg", Data: []byte{0xFF, 0xD8, 0xFF, 0xD9}})
		}
	}
	return alarms, pictures
}
