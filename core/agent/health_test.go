package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// crashy is an input that exits its process at the first poll that finds
// its marker file, and fails Init while the file is there: an isolated
// copy stays down (restarted, failing, restarted again) until the file
// goes.
type crashy struct {
	Marker string `toml:"marker"`
}

func (c *crashy) Init(_ context.Context, req *sdk.InitRequest) (*sdk.InitResponse, error) {
	if _, err := sdk.DecodeConfig(req, c); err != nil {
		return nil, err
	}
	if _, err := os.Stat(c.Marker); err == nil {
		return nil, fmt.Errorf("marker %s is there", c.Marker)
	}
	return &sdk.InitResponse{Interval: 20 * time.Millisecond}, nil
}
func (*crashy) Close(context.Context) error { return nil }
func (c *crashy) Gather(context.Context) (*sdk.Frame, error) {
	if _, err := os.Stat(c.Marker); err == nil {
		os.Exit(3)
	}
	return &sdk.Frame{Batches: []sdk.Batch{{Device: "c", Points: []sdk.Point{{Name: "p", Value: sdk.Int(1)}}}}}, nil
}

// Health says the input is unwell, with its device down: what a dead PLC
// looks like.
func (c *crashy) Health(context.Context) (sdk.Health, error) {
	return sdk.Health{OK: false, Reason: "cannot connect to the PLC", Devices: []sdk.DeviceHealth{{Name: "c", Up: false, LastError: "timeout"}}}, nil
}

func init() {
	sdk.Register(sdk.Registration{Kind: sdk.KindInput, Name: "testcrashy", Factory: func() sdk.Plugin { return &crashy{} }})
}

// TestHealthFailsForAProcessNotForADevice: an input that reports its
// device dead leaves the gateway OK (shown, not failing), in process and
// isolated; the gateway is unwell only while the input's process is
// down, and well again once it is back.
func TestHealthFailsForAProcessNotForADevice(t *testing.T) {
	for _, isolated := range []bool{false, true} {
		t.Run(fmt.Sprintf("isolated=%v", isolated), func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "crash")
			doc := fmt.Sprintf("[agent]\ndevice_id = \"GW-T\"\ndata_dir = %q\n[[inputs.testcrashy]]\nalias = \"plc\"\nmarker = %q\n", t.TempDir(), marker)
			cfg, err := config.Parse("test.toml", []byte(doc), os.LookupEnv)
			if err != nil {
				t.Fatal(err)
			}
			a := New(cfg, Options{DryRun: true, Isolation: func(*config.Plugin) bool { return isolated }})
			if err := a.Open(context.Background(), false); err != nil {
				t.Fatal(err)
			}
			a.Start()
			defer a.Stop(context.Background())

			h := a.Health(context.Background())
			if !h.OK || len(h.Plugins) == 0 || h.Plugins[0].OK || len(h.Devices) != 1 || h.Devices[0].Up ||
				h.Devices[0].Plugin != "plc" || h.Devices[0].Device != "c" {
				t.Fatalf("a dead device must be shown and not fail the gateway: %+v", h)
			}
			if !isolated {
				return
			}
			if err := os.WriteFile(marker, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the gateway unwell while the input's process is down", func() bool {
				h := a.Health(context.Background())
				return !h.OK && strings.Contains(h.Plugins[0].Reason, "restarting")
			})
			if err := os.Remove(marker); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the gateway well again with the process back", func() bool { return a.Health(context.Background()).OK })
		})
	}
}
