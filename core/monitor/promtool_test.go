package monitor

import (
	"bytes"
	"net/http"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	_ "github.com/edgepipe/edgepipe/plugins/processors/deadband"
)

// everyMetric runs a gateway that has something to say for every metric:
// a Modbus connection with a live and a dead slave, a deadband holding
// back a steady reading, the template, an MQTT output. It returns the
// monitor once a scrape shows the device metrics and a held-back reading.
func everyMetric(t *testing.T) *Server {
	t.Helper()
	s := startTwoSlaves(t, `[[processors.deadband]]
alias = "db"
points = ["live.v"]
[[processors.template]]
`)
	waitHealthz(t, s, http.StatusOK)
	deadline := time.Now().Add(30 * time.Second)
	for {
		fams := scrape(t, s)
		_, up := sample(fams, "edgepipe_device_up", map[string]string{"device": "dead"})
		held, ok := sample(fams, "edgepipe_points_held_back_total", map[string]string{"plugin": "db"})
		if up && ok && sampleValue(held) > 0 {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics incomplete after 30s: device_up %v, held back %v", up, held)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMetricsPassPromlint: /metrics follows Prometheus's naming rules, as
// `promtool check metrics` checks them (the same linter, from
// client_golang): counters end in _total, no name says its own type
// (edgepipe_plugin_counter_total did), every metric has its help.
func TestMetricsPassPromlint(t *testing.T) {
	s := everyMetric(t)
	_, body := get(t, "http://"+s.Addr()+"/metrics")
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

// TestMetricsPassPromtool runs Prometheus's own `promtool check metrics`
// on a scrape (Debian's prometheus package has it; .ci/run installs it).
func TestMetricsPassPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (apt-get install prometheus)")
	}
	s := everyMetric(t)
	_, body := get(t, "http://"+s.Addr()+"/metrics")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out.String())
	}
}

// TestBuildInfoAndCounters: edgepipe_build_info names the version and
// commit the binary was stamped with and its Go version; the per-plugin
// counters of points are there with their plugin label.
func TestBuildInfoAndCounters(t *testing.T) {
	SetBuildInfo("1.2.3", "abc1234")
	t.Cleanup(func() { SetBuildInfo("", "") })
	s := everyMetric(t)
	fams := scrape(t, s)
	m, ok := sample(fams, "edgepipe_build_info", map[string]string{"version": "1.2.3", "commit": "abc1234", "go": runtime.Version()})
	if !ok || sampleValue(m) != 1 {
		t.Fatalf("edgepipe_build_info: %v", fams["edgepipe_build_info"])
	}
	if m, ok := sample(fams, "edgepipe_points_bad_quality_total", map[string]string{"plugin": "plc"}); !ok || sampleValue(m) == 0 {
		t.Errorf("the dead slave's bad points are not counted: %v", m)
	}
	if m, ok := sample(fams, "edgepipe_points_reported_total", nil); !ok || sampleValue(m) == 0 {
		t.Errorf("points reported: %v", m)
	}
	if m, ok := sample(fams, "edgepipe_plugin_events_total", map[string]string{"plugin": "plc", "event": "requests"}); !ok || sampleValue(m) == 0 {
		t.Errorf("a plugin's own counters: %v", m)
	}
}
