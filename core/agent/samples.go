package agent

import (
	"context"
	"time"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// Samples runs the processors on a synthetic frame so that check can show
// a rendered message of every template that is used: one batch per device
// with a value (SampleValue) for each reported point, and the alarm events
// and pictures given, which the caller builds from the rules and cameras
// actually configured (none configured: no alarm or picture sample, rather
// than a made-up one that suggests otherwise). Events without a time get
// the frame's.
func (a *Agent) Samples(ctx context.Context, alarms []sdk.Alarm, pictures []sdk.Picture) ([]sdk.Message, error) {
	now := time.Now().UnixMilli()
	f := &sdk.Frame{}
	for _, s := range a.registry.Schemas() {
		if !s.Access.Publishes() {
			continue
		}
		if len(f.Batches) == 0 || f.Batches[len(f.Batches)-1].Device != s.Device {
			f.Batches = append(f.Batches, sdk.Batch{Device: s.Device, TS: now})
		}
		b := &f.Batches[len(f.Batches)-1]
		b.Points = append(b.Points, sdk.Point{Name: s.Name, Value: SampleValue(s.Kind), TS: now})
	}
	for _, al := range alarms {
		if al.TS == 0 {
			al.TS = now
		}
		f.Alarms = append(f.Alarms, al)
	}
	for _, p := range pictures {
		if p.TS == 0 {
			p.TS = now
		}
		f.Pictures = append(f.Pictures, p)
	}
	msgs, _, err := a.process(ctx, f, 0)
	return msgs, err
}

// SampleValue is the value a sample frame carries for a point of kind k.
func SampleValue(k sdk.Kind) sdk.Value {
	switch k {
	case sdk.KindBool:
		return sdk.Bool(true)
	case sdk.KindInt:
		return sdk.Int(-7)
	case sdk.KindUint:
		return sdk.Uint(42)
	case sdk.KindString:
		return sdk.String("text")
	}
	return sdk.Float(21.5)
}
