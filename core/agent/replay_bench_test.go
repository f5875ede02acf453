package agent

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/internal/testbroker"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// BenchmarkReplayAfterOutage: 50,000 messages (110-byte JSON, QoS 1) wait
// in an output's disk queue, as after a broker outage; the output worker
// of the core (batches, budget, partial acknowledgement) then delivers them
// with outputs.mqtt to a local mosquitto. The time runs from Start until
// the queue is empty, i.e. until the server confirmed the last message.
//
//	go test -run '^$' -bench ReplayAfterOutage -count 3 ./core/agent/
func BenchmarkReplayAfterOutage(b *testing.B) {
	const backlog = 50_000
	m := testbroker.StartMosquitto(b, testbroker.MosquittoOptions{})
	payload := []byte(`{"ts":1732600000000,"device":"plc1","points":[{"name":"temperature","value":21.5,"q":"good","ts":1732600000000}]}`)
	chunk := make([]sdk.Message, 1000)
	for i := range chunk {
		chunk[i] = sdk.Message{Topic: "Topic/flexem/fbox/GW-BENCH/data", Payload: payload, QoS: 1}
	}
	for b.Loop() {
		b.StopTimer()
		doc := fmt.Sprintf(`[agent]
device_id = "GW-BENCH"
data_dir = %q
log_level = "warn"
[[inputs.testburst]]
every = "1h"
[[outputs.mqtt]]
servers = [%q]
buffer = "disk"
`, b.TempDir(), m.URL())
		cfg, err := config.Parse("bench.toml", []byte(doc), os.LookupEnv)
		if err != nil {
			b.Fatal(err)
		}
		a := New(cfg, Options{})
		if err := a.Open(context.Background(), true); err != nil {
			b.Fatal(err)
		}
		q := a.outputs[0].q
		for range backlog / len(chunk) {
			if err := q.Push(chunk); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		a.Start()
		deadline := time.Now().Add(2 * time.Minute)
		for q.Stats().Depth > 0 {
			if time.Now().After(deadline) {
				b.Fatalf("%d messages still queued after 2 minutes", q.Stats().Depth)
			}
			time.Sleep(time.Millisecond)
		}
		b.StopTimer()
		a.Stop(context.Background())
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*backlog)/b.Elapsed().Seconds(), "msgs/s")
}
