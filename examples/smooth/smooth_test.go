package main

import (
	"context"
	"math"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// registry is the point registry the gateway hands a processor at Init:
// every input's points.
var registry = []sdk.PointSchema{
	{Device: "plc1", Name: "flow", Type: "float32", Kind: sdk.KindFloat},
	{Device: "plc1", Name: "level", Type: "float32", Kind: sdk.KindFloat},
	{Device: "plc1", Name: "status", Type: "uint16", Kind: sdk.KindUint},
}

func request(conf string) *sdk.InitRequest {
	req := sdktest.Request(conf)
	req.Points = registry
	return req
}

func frame(flow, level sdk.Value, q sdk.Quality) *sdk.Frame {
	return &sdk.Frame{Batches: []sdk.Batch{{Device: "plc1", TS: 1, Points: []sdk.Point{
		{Name: "flow", Value: flow, Quality: q},
		{Name: "level", Value: level},
		{Name: "status", Value: sdk.Uint(7)},
	}}}}
}

// check runs readings of plc1.flow through p and compares what comes out.
func check(t *testing.T, p sdk.Plugin) {
	t.Helper()
	if _, err := p.Init(context.Background(), request(`points = ["plc1.flow"]`+"\nalpha = 0.5\n")); err != nil {
		t.Fatalf("Init: %v", err)
	}
	for i, c := range []struct {
		in   float64
		q    sdk.Quality
		want float64
	}{{10, sdk.QualityGood, 10}, {20, sdk.QualityGood, 15}, {99, sdk.QualityBad, 99}, {15, sdk.QualityGood, 15}, {0, sdk.QualityGood, 7.5}} {
		out, err := p.(sdk.Processor).Process(context.Background(), frame(sdk.Float(c.in), sdk.Float(c.in), c.q))
		if err != nil {
			t.Fatalf("reading %d: %v", i, err)
		}
		pts := out.Batches[0].Points
		if got := pts[0].Value.FloatValue(); math.Abs(got-c.want) > 1e-9 {
			t.Fatalf("reading %d (%v): flow %v, want %v", i, c.in, got, c.want)
		}
		if pts[1].Value.FloatValue() != c.in || pts[2].Value.UintValue() != 7 {
			t.Fatalf("reading %d: a point not configured was changed: %+v", i, pts)
		}
	}
	h, err := p.(sdk.HealthReporter).Health(context.Background())
	if err != nil || h.Counters["readings_skipped"] != 1 {
		t.Fatalf("health %+v %v", h, err)
	}
}

// In the test's process and through the SDK's gRPC adapters.
func TestSmooth(t *testing.T) {
	sdktest.Run(t, func() sdk.Plugin { return &Smooth{} }, func(t *testing.T, p sdk.Plugin) { check(t, p) })
}

func TestConfigErrors(t *testing.T) {
	_, err := (&Smooth{}).Init(context.Background(), request(`points = ["plc1.flow", "plc9.x", "plc1.status"]
alpha = 1.5
colour = "red"
`))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		`test.toml:3: colour: unknown key`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("missing %q in\n%v", want, err)
		}
	}
	_, err = (&Smooth{}).Init(context.Background(), request(`points = ["plc1.flow", "plc9.x", "plc1.status"]
alpha = 1.5
`))
	for _, want := range []string{
		`test.toml:2: alpha: 1.5: want 0 < alpha <= 1`,
		`test.toml:1: points: no point "plc9.x" among the inputs' points`,
		`test.toml:1: points: "plc1.status" is a uint16 point; only float points can be smoothed`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("missing %q in\n%v", want, err)
		}
	}
}

// The built binary, run over go-plugin as the gateway runs it: it answers
// the handshake, says it is a processor, and smooths across the process
// boundary.
func TestBinaryOverGoPlugin(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin binary")
	}
	bin := filepath.Join(t.TempDir(), "edgepipe-smooth")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	p := sdktest.Exec(t, bin)
	check(t, p)
	if kinds, known := sdk.KindsOf(p); !known || len(kinds) != 1 || kinds[0] != sdk.KindProcessor {
		t.Fatalf("the binary says it serves %v (known %v), want processors", kinds, known)
	}
}
