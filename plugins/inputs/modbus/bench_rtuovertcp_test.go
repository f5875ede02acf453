package modbus_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
	"github.com/edgepipe/edgepipe/sim/modbussim"
)

// BenchmarkRead125 times one read of 125 holding registers (one request,
// one Gather) from the same peer over Modbus TCP and over RTU over TCP,
// with baud_rate left at its default (9600): a TCP stream has no line
// whose silences delimit frames, so the two framings should cost the
// same, give or take the CRC. The peers are the simulator and pymodbus
// (when installed).
func BenchmarkRead125(b *testing.B) {
	for _, peer := range []string{"sim", "pymodbus"} {
		for _, rtu := range []bool{false, true} {
			name := peer + "/tcp"
			if rtu {
				name = peer + "/rtuovertcp"
			}
			b.Run(name, func(b *testing.B) {
				var url string
				if peer == "sim" {
					listen := "tcp://127.0.0.1:0"
					if rtu {
						listen = "rtuovertcp://127.0.0.1:0"
					}
					url = startSim(b, listen, &modbussim.Config{Units: []modbussim.UnitConfig{{ID: 1}}}).Addr()
				} else {
					url = startPymodbus(b, rtu)
				}
				var conf strings.Builder
				fmt.Fprintf(&conf, "url = %q\ninterval = \"1ms\"\ntimeout = \"2s\"\n[[devices]]\nname = \"d\"\n", url)
				for a := range 125 {
					fmt.Fprintf(&conf, "[[devices.points]]\nname = \"r%d\"\narea = \"holding\"\naddress = %d\n", a, a)
				}
				p := factory()
				b.Cleanup(func() { _ = p.Close(context.Background()) })
				if _, err := p.Init(context.Background(), sdktest.Request(conf.String())); err != nil {
					b.Fatal(err)
				}
				in := p.(sdk.Input)
				// A read-back request makes the device due at every call.
				ctx := sdk.WithReadBack(context.Background(), []string{"d"})
				for b.Loop() {
					f, err := in.Gather(ctx)
					if err != nil || f.NumPoints() != 125 || f.Batches[0].Points[124].Quality != sdk.QualityGood {
						b.Fatalf("poll: %v %+v", err, f)
					}
				}
			})
		}
	}
}
