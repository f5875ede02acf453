package mqtt_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/internal/testbroker"
	"github.com/edgepipe/edgepipe/plugins/outputs/mqtt"
	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// BenchmarkPublishIsolated is one Publish of a 64 KB message at QoS 1 to
// mosquitto (another process: its allocations are not counted) with the
// output over the plugin connection, as an isolated outputs.mqtt runs in
// the bench: what both ends of the connection and paho allocate per
// call. "released" is the output as it is; "fresh" hides its
// sdk.FrameReleaser, as any output that does not opt in.
func BenchmarkPublishIsolated(b *testing.B) {
	m := testbroker.StartMosquitto(b, testbroker.MosquittoOptions{})
	for i, c := range []struct {
		name string
		hide bool
	}{{"released", false}, {"fresh", true}} {
		b.Run(c.name, func(b *testing.B) {
			o := mqtt.New()
			var impl sdk.Plugin = o
			if c.hide {
				impl = struct{ sdk.Output }{o}
			}
			cl := sdktest.Connect(b, impl)
			sdktest.Init(b, cl, fmt.Sprintf("servers = [%q]\nclient_id = \"GW-ISO-%d\"\n", m.URL(), i))
			b.Cleanup(func() { _ = cl.Close(context.Background()) })
			waitHealth(b, o, 10*time.Second, "connected", connected)
			var msgs [2][]sdk.Message
			for j := range msgs {
				p := make([]byte, 64<<10)
				for k := range p {
					p[k] = byte('a' + (j+k)%26)
				}
				msgs[j] = []sdk.Message{{Topic: base + "/data", Payload: p, QoS: 1}}
			}
			b.ReportAllocs()
			j := 0
			for b.Loop() {
				if err := cl.Publish(context.Background(), msgs[j%2]); err != nil {
					b.Fatal(err)
				}
				j++
			}
		})
	}
}
