package agent

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/internal/testbroker"
	_ "github.com/edgepipe/edgepipe/plugins/outputs/mqtt"
)

// deadBrokerConfig polls a synthetic counter every 10 ms into an MQTT
// output whose server is not there (a free port nothing listens on).
func deadBrokerConfig(t testing.TB, dir string, port int, keepalive string) *config.Config {
	return counterToBrokerConfig(t, "GW-DOWN", dir, fmt.Sprintf("tcp://127.0.0.1:%d", port), keepalive)
}

// counterToBrokerConfig polls a synthetic counter every 10 ms into an MQTT
// output "up" on server at QoS 1 with a disk buffer, reconnecting every
// 200 ms at most; keepalive "" leaves the output's default.
func counterToBrokerConfig(t testing.TB, deviceID, dir, server, keepalive string) *config.Config {
	t.Helper()
	if keepalive != "" {
		keepalive = fmt.Sprintf("keepalive = %q\n", keepalive)
	}
	doc := fmt.Sprintf(`[agent]
device_id = %q
data_dir = %q
[[inputs.synthetic]]
device = "d"
points = 1
pattern = "counter"
interval = "10ms"
[[outputs.mqtt]]
alias = "up"
servers = [%q]
qos = 1
%sconnect_timeout = "1s"
max_reconnect_interval = "200ms"
buffer = "disk"
`, deviceID, dir, server, keepalive)
	cfg, err := config.Parse(deviceID+".toml", []byte(doc), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A SIGHUP while the broker is down used to stop polling for the output's
// 2 s stop grace per reload: the reload waited for a publish that was only
// waiting for the broker, then cut it short. Now an output the reload keeps
// goes on waiting for its broker through the reload (its publish is not cut
// short, so the reload did not wait for it), and one the reload replaces is
// let go at once, since a broker that is not there acknowledges nothing.
func TestReloadNeverWaitsForAnOutputWaitingForItsBroker(t *testing.T) {
	dir := t.TempDir()
	port := testbroker.FreePort(t)
	cfg := deadBrokerConfig(t, dir, port, "30s")
	a := New(cfg, Options{})
	ctx := context.Background()
	if err := a.Open(ctx, true); err != nil {
		t.Fatal(err)
	}
	a.Start()
	defer a.Stop(ctx)
	out := a.outputByID(cfg.Outputs[0].ID)
	// The output's worker holds a batch and waits in Publish for the broker.
	waitFor(t, "messages queued for the dead broker", func() bool { return out.q.Stats().Depth >= 5 })

	for i := range 3 {
		polled := a.stats.gathered.Load()
		if err := a.Reload(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		// The publish in flight before the reload was not cut short (the
		// broker is down: a publish ends only by its 30 s budget or being
		// cancelled), so the reload did not wait for the output.
		if n := out.in.errors.Load(); n != 0 {
			t.Fatalf("reload %d: the output's publish waiting for the broker was cut short (%d failed publishes)", i+1, n)
		}
		waitFor(t, "polling after the reload", func() bool { return a.stats.gathered.Load() >= polled+5 })
	}

	// A reload that replaces the output (new settings) keeps its queue and
	// lets the old one go without waiting out the grace.
	depth := out.q.Stats().Depth
	changed := deadBrokerConfig(t, dir, port, "20s")
	if err := a.Reload(ctx, changed); err != nil {
		t.Fatal(err)
	}
	out2 := a.outputByID(changed.Outputs[0].ID)
	if out2.q.Stats().Depth < depth {
		t.Fatalf("queue depth %d after replacing the output, was %d: the queue must carry over", out2.q.Stats().Depth, depth)
	}
	polled := a.stats.gathered.Load()
	waitFor(t, "polling after the replacing reload", func() bool { return a.stats.gathered.Load() >= polled+5 })
}

// BenchmarkReloadWithBrokerDown: how long one reload (SIGHUP, unchanged
// configuration) pauses polling while the output waits for a broker that
// is not there. It used to be the 2 s stop grace.
func BenchmarkReloadWithBrokerDown(b *testing.B) {
	dir := b.TempDir()
	port := testbroker.FreePort(b)
	cfg := deadBrokerConfig(b, dir, port, "30s")
	a := New(cfg, Options{})
	ctx := context.Background()
	if err := a.Open(ctx, true); err != nil {
		b.Fatal(err)
	}
	a.Start()
	defer a.Stop(ctx)
	out := a.outputByID(cfg.Outputs[0].ID)
	for out.q.Stats().Depth < 5 {
		time.Sleep(5 * time.Millisecond)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := a.Apply(ctx, cfg); err != nil {
			b.Fatal(err)
		}
	}
}
