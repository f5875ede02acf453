// Package synthetic is an input that makes up its points: a pipeline can be
// tried, tested and benchmarked without any device. Writable points keep
// what the server writes, so the write path can be exercised end to end.
package synthetic

import (
	"context"
	_ "embed"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

//go:embed sample.conf
var sampleConf string

func init() {
	sdk.Register(sdk.Registration{Kind: sdk.KindInput, Name: "synthetic",
		Description:  "generated points (sine, counter, random) for trials and benchmarks",
		SampleConfig: sampleConf, Factory: func() sdk.Plugin { return &Synthetic{} }})
}

// Synthetic generates points.
type Synthetic struct {
	Device   string       `toml:"device"`
	Points   int          `toml:"points"`
	Interval sdk.Duration `toml:"interval"`
	Pattern  string       `toml:"pattern"`
	Type     string       `toml:"type"`
	Access   sdk.Access   `toml:"access"`

	kind    sdk.Kind
	names   []string
	mu      sync.Mutex
	written map[string]sdk.Value
	polls   int64
	now     func() time.Time
}

func (s *Synthetic) Init(_ context.Context, req *sdk.InitRequest) (*sdk.InitResponse, error) {
	s.Device, s.Points, s.Pattern, s.Type = "sim1", 10, "sine", "float"
	s.Interval = sdk.Duration(time.Second)
	src, err := sdk.DecodeConfig(req, s)
	if err != nil {
		return nil, err
	}
	var errs sdk.ConfigErrors
	if s.Device == "" {
		errs = append(errs, src.Errorf("device", "must not be empty"))
	}
	if s.Points < 0 || s.Points > 1_000_000 {
		errs = append(errs, src.Errorf("points", "want 0 to 1000000, got %d", s.Points))
	}
	switch s.Pattern {
	case "sine", "counter", "random", "constant":
	default:
		errs = append(errs, src.Errorf("pattern", "want sine, counter, random or constant, got %q", s.Pattern))
	}
	kinds := map[string]sdk.Kind{"float": sdk.KindFloat, "int": sdk.KindInt, "bool": sdk.KindBool, "string": sdk.KindString}
	k, ok := kinds[s.Type]
	if !ok {
		errs = append(errs, src.Errorf("type", "want float, int, bool or string, got %q", s.Type))
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	s.kind, s.now = k, time.Now
	s.written = map[string]sdk.Value{}
	s.names = make([]string, s.Points)
	schemas := make([]sdk.PointSchema, s.Points)
	for i := range s.names {
		s.names[i] = "p" + strconv.Itoa(i)
		schemas[i] = sdk.PointSchema{Device: s.Device, Name: s.names[i], Type: s.Type, Kind: k, Access: s.Access}
	}
	return &sdk.InitResponse{Points: schemas, Interval: s.Interval.D()}, nil
}

func (s *Synthetic) Close(context.Context) error { return nil }

func (s *Synthetic) Gather(context.Context) (*sdk.Frame, error) {
	if !s.Access.Publishes() {
		return &sdk.Frame{}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.polls++
	ts := s.now().UnixMilli()
	b := sdk.Batch{Device: s.Device, TS: ts, Points: make([]sdk.Point, len(s.names))}
	for i, name := range s.names {
		v, ok := s.written[name]
		if !ok {
			v = s.value(i)
		}
		b.Points[i] = sdk.Point{Name: name, Value: v, TS: ts}
	}
	return &sdk.Frame{Batches: []sdk.Batch{b}}, nil
}

// value is point i's value at the current poll.
func (s *Synthetic) value(i int) sdk.Value {
	var x float64
	switch s.Pattern {
	case "sine":
		x = 50 + 50*math.Sin(float64(s.polls)/10+float64(i))
	case "counter":
		x = float64(s.polls + int64(i))
	case "random":
		x = rand.Float64() * 100
	case "constant":
		x = float64(i)
	}
	switch s.kind {
	case sdk.KindInt:
		return sdk.Int(int64(x))
	case sdk.KindBool:
		return sdk.Bool(int64(x)%2 == 1)
	case sdk.KindString:
		return sdk.String(fmt.Sprintf("v%d", int64(x)))
	}
	return sdk.Float(math.Round(x*100) / 100)
}

// Write keeps the written value for later polls.
func (s *Synthetic) Write(_ context.Context, reqs []sdk.WriteRequest) ([]sdk.WriteResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]sdk.WriteResult, len(reqs))
	for i, r := range reqs {
		switch {
		case r.Device != s.Device:
			out[i].Error = "unknown device " + r.Device
		case r.Value.Kind() != s.kind:
			out[i].Error = fmt.Sprintf("want a %s value, got %s", s.kind, r.Value.Kind())
		default:
			s.written[r.Name] = r.Value
		}
	}
	return out, nil
}

var (
	_ sdk.Input  = (*Synthetic)(nil)
	_ sdk.Writer = (*Synthetic)(nil)
)
