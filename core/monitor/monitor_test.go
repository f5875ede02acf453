package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/edgepipe/edgepipe/core/agent"
	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/internal/testbroker"
	_ "github.com/edgepipe/edgepipe/plugins/inputs/synthetic"
	_ "github.com/edgepipe/edgepipe/plugins/outputs/mqtt"
	_ "github.com/edgepipe/edgepipe/plugins/processors/template"
)

func startGateway(t *testing.T, url, password string) *Server {
	t.Helper()
	return startGatewayWith(t, url, password, `[[inputs.synthetic]]
points = 5
interval = "20ms"
`)
}

// startGatewayWith runs a gateway with the given inputs and processors
// (TOML) and an MQTT output "cloud" to url, and serves its monitor.
func startGatewayWith(t *testing.T, url, password, pipeline string) *Server {
	t.Helper()
	doc := fmt.Sprintf(`[agent]
device_id = "GW-MON"
data_dir = %q
%s
[[outputs.mqtt]]
alias = "cloud"
servers = [%q]
username = "gw"
password = %q
max_reconnect_interval = "200ms"
buffer = "memory"
`, t.TempDir(), pipeline, url, password)
	cfg, err := config.Parse("mon.toml", []byte(doc), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	a := agent.New(cfg, agent.Options{})
	if err := a.Open(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	a.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		a.Stop(ctx)
	})
	s, err := Start("127.0.0.1:0", a, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitHealthz polls /healthz until it answers code.
func waitHealthz(t *testing.T, s *Server, code int) agent.Health {
	t.Helper()
	return waitHealthzUntil(t, s, code, func(agent.Health) bool { return true })
}

// waitHealthzUntil polls /healthz until it answers code with a body that
// satisfies cond: a status code alone can come before the detail a test
// is after (a 503 for "connecting" before the broker's refusal arrives).
func waitHealthzUntil(t *testing.T, s *Server, code int, cond func(agent.Health) bool) agent.Health {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, body := get(t, "http://"+s.Addr()+"/healthz")
		if c == code {
			var h agent.Health
			if err := json.Unmarshal([]byte(body), &h); err != nil {
				t.Fatalf("healthz body %q: %v", body, err)
			}
			if cond(h) {
				return h
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz answers %d, want %d and the expected detail: %s", c, code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHealthzNamesTheRefusedLogin(t *testing.T) {
	b := testbroker.StartMochi(t, testbroker.MochiOptions{Username: "gw", Password: "right"})
	s := startGateway(t, b.URL(), "wrong-secret-123")
	cloud := func(h agent.Health) *agent.PluginHealth {
		for i := range h.Plugins {
			if h.Plugins[i].ID == "cloud" {
				return &h.Plugins[i]
			}
		}
		return nil
	}
	refused := func(out *agent.PluginHealth) bool {
		r := strings.ToLower(out.Reason)
		return strings.Contains(r, "not authorized") || strings.Contains(r, "bad user name or password")
	}
	// Wait for the refusal and a filling queue, not for the first 503: the
	// output answers "connecting" before the CONNACK arrives.
	h := waitHealthzUntil(t, s, http.StatusServiceUnavailable, func(h agent.Health) bool {
		out := cloud(h)
		return out != nil && refused(out) && out.QueueDepth != nil && *out.QueueDepth > 0
	})
	out := cloud(h)
	if out == nil || out.OK || !refused(out) {
		t.Fatalf("output health %+v", out)
	}
	if out.QueueDepth == nil || *out.QueueDepth == 0 {
		t.Fatalf("the queue of a refused output should be filling: %+v", out)
	}
	_, body := get(t, "http://"+s.Addr()+"/healthz")
	if strings.Contains(body, "wrong-secret-123") {
		t.Fatal("the password leaked into /healthz")
	}
}

func TestHealthzOKAndMetricsMove(t *testing.T) {
	b := testbroker.StartMochi(t, testbroker.MochiOptions{Username: "gw", Password: "right"})
	s := startGateway(t, b.URL(), "right")
	waitHealthz(t, s, http.StatusOK)
	value := func(fams map[string]*dto.MetricFamily, name, plugin string) float64 {
		t.Helper()
		labels := map[string]string{"plugin": plugin}
		if plugin == "" {
			labels = nil
		}
		m, ok := sample(fams, name, labels)
		if !ok {
			t.Fatalf("no %s for plugin %q", name, plugin)
		}
		return sampleValue(m)
	}
	moving := []struct{ name, plugin string }{
		{"edgepipe_points_gathered_total", "inputs.synthetic#1"},
		{"edgepipe_messages_published_total", "cloud"},
		// It counted the frame after the template had emptied it: always 0.
		{"edgepipe_points_reported_total", ""},
	}
	first := scrape(t, s)
	start := make([]float64, len(moving))
	for i, m := range moving {
		start[i] = value(first, m.name, m.plugin)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		next := scrape(t, s)
		moved := true
		var now []float64
		for i, m := range moving {
			v := value(next, m.name, m.plugin)
			now = append(now, v)
			moved = moved && v > start[i]
		}
		if moved {
			if value(next, "edgepipe_plugin_up", "cloud") != 1 {
				t.Fatal("connected output not up")
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("counters did not move: %v -> %v (%v)", start, now, moving)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
