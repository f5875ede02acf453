package modbus_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
	"github.com/edgepipe/edgepipe/sim/modbussim"
)

// TestReadBackGather: a device that is not due is read at once when the
// core asks for its read-back (sdk.WithReadBack), in process and over
// gRPC (the GatherRequest carries the devices); the others keep their
// schedule.
func TestReadBackGather(t *testing.T) {
	s := startSim(t, "tcp://127.0.0.1:0", &modbussim.Config{Units: []modbussim.UnitConfig{{ID: 1, Size: 8}, {ID: 2, Size: 8}}})
	conf := fmt.Sprintf(`url = %q
interval = "1h"
[[devices]]
name = "a"
unit_id = 1
[[devices.points]]
name = "x"
area = "holding"
address = 0
type = "uint16"
access = "pubsub"
[[devices]]
name = "b"
unit_id = 2
[[devices.points]]
name = "y"
area = "holding"
address = 0
type = "uint16"
`, s.Addr())
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		sdktest.Init(t, p, conf)
		in := p.(sdk.Input)
		devices := func(ctx context.Context) []string {
			f, err := in.Gather(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, b := range f.Batches {
				out = append(out, b.Device)
			}
			return out
		}
		if got := devices(context.Background()); len(got) != 2 {
			t.Fatalf("first poll read %v, want both devices", got)
		}
		if got := devices(context.Background()); len(got) != 0 {
			t.Fatalf("second poll read %v, want none (interval 1h)", got)
		}
		if got := devices(sdk.WithReadBack(context.Background(), []string{"a"})); len(got) != 1 || got[0] != "a" {
			t.Fatalf("read-back of a read %v, want [a]", got)
		}
	})
}
