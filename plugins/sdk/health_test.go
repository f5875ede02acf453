package sdk_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// reporter is an input whose health is whatever the test set.
type reporter struct{ h sdk.Health }

func (r *reporter) Init(context.Context, *sdk.InitRequest) (*sdk.InitResponse, error) {
	return &sdk.InitResponse{}, nil
}
func (r *reporter) Close(context.Context) error                { return nil }
func (r *reporter) Gather(context.Context) (*sdk.Frame, error) { return &sdk.Frame{}, nil }
func (r *reporter) Health(context.Context) (sdk.Health, error) { return r.h, nil }

// TestDeviceHealthCrossesTheWire: an isolated input's per-device state
// reaches the core as the plugin reported it, to the millisecond, and a
// device never read keeps its zero times.
func TestDeviceHealthCrossesTheWire(t *testing.T) {
	good := time.UnixMilli(1_700_000_000_123)
	bad := time.UnixMilli(1_700_000_005_456)
	want := sdk.Health{OK: true, Counters: map[string]uint64{"requests": 7}, Devices: []sdk.DeviceHealth{
		{Name: "pump", Up: true, LastGood: good, ReadErrors: 0},
		{Name: "valve", Up: false, LastError: "request timed out", LastErrorAt: bad, LastGood: good, ReadErrors: 3},
		{Name: "never", Up: false},
	}}
	sdktest.Run(t, func() sdk.Plugin { return &reporter{h: want} }, func(t *testing.T, p sdk.Plugin) {
		sdktest.Init(t, p, "")
		if !sdk.CapsOf(p).Health {
			t.Fatal("reporter's health capability lost")
		}
		got, err := p.(sdk.HealthReporter).Health(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Devices) != len(want.Devices) {
			t.Fatalf("devices: got %+v", got.Devices)
		}
		for i, w := range want.Devices {
			g := got.Devices[i]
			if g.Name != w.Name || g.Up != w.Up || g.LastError != w.LastError || g.ReadErrors != w.ReadErrors ||
				!g.LastGood.Equal(w.LastGood) || !g.LastErrorAt.Equal(w.LastErrorAt) || g.LastGood.IsZero() != w.LastGood.IsZero() {
				t.Errorf("device %d: got %+v want %+v", i, g, w)
			}
		}
		if !reflect.DeepEqual(got.Counters, want.Counters) || got.OK != want.OK {
			t.Errorf("health: got %+v", got)
		}
	})
}
