package mqtt_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/core/queue"
	"github.com/edgepipe/edgepipe/internal/testbroker"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// Throughput to a local mosquitto, batches through Publish as the core
// sends them. Run with
//
//	go test -run '^$' -bench . ./plugins/outputs/mqtt
//
// Figures are in README.md.

func benchPayload() []byte {
	return []byte(`{"ts":1732600000000,"device":"plc1","points":[{"name":"temperature","value":21.5,"q":"good","ts":1732600000000}]}`)
}

func benchOutput(b *testing.B, url string, qos int) *sdkOutput {
	o := start(b, fmt.Sprintf("servers = [%q]\nqos = %d\nclient_id = \"GW-BENCH-%d\"\n", url, qos, qos))
	waitHealth(b, o, 10*time.Second, "connected", connected)
	return &sdkOutput{o}
}

type sdkOutput struct{ sdk.Output }

func BenchmarkPublishMosquitto(b *testing.B) {
	b.Run("stock", func(b *testing.B) { benchPublish(b, testbroker.MosquittoOptions{}) })
	b.Run("nodelay", func(b *testing.B) { benchPublish(b, testbroker.MosquittoOptions{TCPNoDelay: true}) })
}

func benchPublish(b *testing.B, mo testbroker.MosquittoOptions) {
	m := testbroker.StartMosquitto(b, mo)
	for _, qos := range []int{0, 1} {
		for _, batch := range []int{256, 1000} {
			b.Run(fmt.Sprintf("qos%d/batch%d", qos, batch), func(b *testing.B) {
				o := benchOutput(b, m.URL(), qos)
				msgs := make([]sdk.Message, batch)
				for i := range msgs {
					msgs[i] = sdk.Message{Topic: base + "/data", Payload: benchPayload(), QoS: 1}
				}
				ctx := context.Background()
				for b.Loop() {
					if err := o.Publish(ctx, msgs); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "msgs/s")
			})
		}
	}
}

// BenchmarkReplayAfterOutage drains a 50,000-message backlog from the disk
// queue to mosquitto at QoS 1, the way the core's output worker does
// (Peek 256, Publish, Ack), once the server is back.
func BenchmarkReplayAfterOutage(b *testing.B) {
	const backlog, per = 50_000, 256
	m := testbroker.StartMosquitto(b, testbroker.MosquittoOptions{})
	o := benchOutput(b, m.URL(), 1)
	chunk := make([]sdk.Message, 1000)
	for i := range chunk {
		chunk[i] = sdk.Message{Topic: base + "/data", Payload: benchPayload(), QoS: 1}
	}
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		q, err := queue.OpenDisk(b.TempDir(), 0)
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < backlog/len(chunk); i++ {
			q.Push(chunk)
		}
		b.StartTimer()
		for q.Stats().Depth > 0 {
			msgs, err := q.Peek(per)
			if err != nil {
				b.Fatal(err)
			}
			if err := o.Publish(ctx, msgs); err != nil {
				b.Fatal(err)
			}
			q.Ack(len(msgs))
		}
		b.StopTimer()
		q.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*backlog)/b.Elapsed().Seconds(), "msgs/s")
}
