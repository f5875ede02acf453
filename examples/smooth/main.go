// Command edgepipe-smooth is an example third-party edgepipe processor: it
// smooths noisy analogue readings (a flow meter, a level sensor) with an
// exponential moving average before they are reported, so that a deadband
// or an alarm after it reacts to the trend and not to the noise. It is
// written only against edgepipe's plugin SDK and built as its own Go
// module, as any vendor's plugin would be.
//
// Wire it in with
//
//	[[processors.external]]
//	command = "/opt/edgepipe/plugins/edgepipe-smooth"
//	sha256 = "..."              # optional: sha256sum of the binary
//	[processors.external.config]
//	points = ["plc1.flow", "plc1.level"]
//	alpha = 0.3                 # weight of the newest reading, 0 < alpha <= 1
package main

import (
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// Smooth is the processor. Its exported fields are its configuration.
type Smooth struct {
	Points []string `toml:"points"`
	Alpha  float64  `toml:"alpha"`

	// avg is the running average of each smoothed point, by device and
	// point name; a point not yet read has none.
	avg map[string]map[string]*average
	// skipped counts readings passed through unsmoothed (bad quality, or
	// not a number), reported as a health counter.
	skipped atomic.Uint64
}

type average struct {
	v    float64
	seen bool
}

var (
	_ sdk.Processor      = (*Smooth)(nil)
	_ sdk.HealthReporter = (*Smooth)(nil)
)

// Init decodes and checks the configuration against the point registry,
// which a processor receives in req.Points: every mistake comes back to
// the user as FILE:LINE: message, at `edgepipe check`.
func (s *Smooth) Init(_ context.Context, req *sdk.InitRequest) (*sdk.InitResponse, error) {
	s.Alpha = 0.3
	src, err := sdk.DecodeConfig(req, s)
	if err != nil {
		return nil, err
	}
	var errs sdk.ConfigErrors
	if !(s.Alpha > 0 && s.Alpha <= 1) {
		errs = append(errs, src.Errorf("alpha", "%v: want 0 < alpha <= 1 (1 smooths nothing)", s.Alpha))
	}
	if len(s.Points) == 0 {
		errs = append(errs, src.Errorf("points", "is empty: name the \"device.point\"s to smooth"))
	}
	registry := map[string]sdk.PointSchema{}
	for _, p := range req.Points {
		registry[p.FullName()] = p
	}
	s.avg = map[string]map[string]*average{}
	for _, name := range s.Points {
		p, ok := registry[name]
		switch {
		case !ok:
			errs = append(errs, src.Errorf("points", "no point %q among the inputs' points", name))
		case p.Kind != sdk.KindFloat:
			// An average of an integer register is a float: the point would
			// change type under the template and the server.
			errs = append(errs, src.Errorf("points", "%q is a %s point; only float points can be smoothed", name, p.Type))
		default:
			if s.avg[p.Device] == nil {
				s.avg[p.Device] = map[string]*average{}
			}
			s.avg[p.Device][p.Name] = &average{}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	slog.Debug("smooth: ready", "points", len(s.Points), "alpha", s.Alpha)
	return &sdk.InitResponse{}, nil
}

// Process replaces the value of each configured point with its running
// average. The first reading is its own average; a bad reading passes as
// it is and does not disturb the average.
func (s *Smooth) Process(_ context.Context, f *sdk.Frame) (*sdk.Frame, error) {
	if f == nil {
		return nil, nil
	}
	for bi := range f.Batches {
		b := &f.Batches[bi]
		dev := s.avg[b.Device]
		if dev == nil {
			continue
		}
		for pi := range b.Points {
			p := &b.Points[pi]
			a := dev[p.Name]
			if a == nil {
				continue
			}
			v, ok := p.Value.AsFloat()
			if p.Quality == sdk.QualityBad || !ok || p.Value.Kind() != sdk.KindFloat {
				s.skipped.Add(1)
				continue
			}
			if !a.seen {
				a.v, a.seen = v, true
			} else {
				a.v += s.Alpha * (v - a.v)
			}
			p.Value = sdk.Float(a.v)
		}
	}
	return f, nil
}

// Health exposes the skipped readings on the gateway's /metrics.
func (s *Smooth) Health(context.Context) (sdk.Health, error) {
	return sdk.Health{OK: true, Counters: map[string]uint64{"readings_skipped": s.skipped.Load()}}, nil
}

// Close has nothing to release.
func (s *Smooth) Close(context.Context) error { return nil }

func main() {
	sdk.Serve(func() sdk.Plugin { return &Smooth{} })
}
