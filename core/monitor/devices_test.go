package monitor

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/edgepipe/edgepipe/core/agent"
	"github.com/edgepipe/edgepipe/internal/testbroker"
	_ "github.com/edgepipe/edgepipe/plugins/inputs/modbus"
	"github.com/edgepipe/edgepipe/sim/modbussim"
)

// scrape reads /metrics and parses it as Prometheus does.
func scrape(t *testing.T, s *Server) map[string]*dto.MetricFamily {
	t.Helper()
	_, body := get(t, "http://"+s.Addr()+"/metrics")
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("metrics do not parse: %v\n%s", err, body)
	}
	return fams
}

// sample finds the sample of family name whose labels include all of want.
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) (*dto.Metric, bool) {
	f := fams[name]
	if f == nil {
		return nil, false
	}
	for _, m := range f.Metric {
		n := 0
		for _, l := range m.Label {
			if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
				n++
			}
		}
		if n == len(want) {
			return m, true
		}
	}
	return nil, false
}

func sampleValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return m.GetUntyped().GetValue()
}

// TestDeadSlaveShowsButHealthzStays200: on one Modbus connection, a slave
// that does not answer is listed down in /healthz's devices and is 0 in
// edgepipe_device_up, the one that answers is up and 1, and /healthz
// answers 200 all along: one dead PLC is not a reason to restart the
// gateway.
func TestDeadSlaveShowsButHealthzStays200(t *testing.T) {
	s := startTwoSlaves(t, "")

	device := func(h agent.Health, name string) *agent.DeviceHealth {
		for i := range h.Devices {
			if h.Devices[i].Plugin == "plc" && h.Devices[i].Device == name {
				return &h.Devices[i]
			}
		}
		return nil
	}
	h := waitHealthzUntil(t, s, http.StatusOK, func(h agent.Health) bool {
		live, dead := device(h, "live"), device(h, "dead")
		return live != nil && dead != nil && live.Up && !live.LastGood.IsZero() && !dead.Up && dead.ReadErrors > 0
	})
	if !h.OK {
		t.Fatalf("/healthz answered 200 with ok false: %+v", h)
	}
	live, dead := device(h, "live"), device(h, "dead")
	if dead.LastError == "" || dead.LastErrorAt.IsZero() || !dead.LastGood.IsZero() {
		t.Errorf("dead slave: want its last error and no good read, got %+v", dead)
	}
	if live.ReadErrors != 0 || live.LastError != "" {
		t.Errorf("live slave: want no errors, got %+v", live)
	}

	deadline := time.Now().Add(30 * time.Second)
	for {
		fams := scrape(t, s)
		up := func(dev string) (float64, bool) {
			m, ok := sample(fams, "edgepipe_device_up", map[string]string{"plugin": "plc", "device": dev})
			if !ok {
				return 0, false
			}
			return sampleValue(m), true
		}
		errs, okErrs := sample(fams, "edgepipe_device_read_errors_total", map[string]string{"plugin": "plc", "device": "dead"})
		liveUp, ok1 := up("live")
		deadUp, ok2 := up("dead")
		if ok1 && ok2 && okErrs && liveUp == 1 && deadUp == 0 && sampleValue(errs) > 0 {
			if m, ok := sample(fams, "edgepipe_device_read_errors_total", map[string]string{"plugin": "plc", "device": "live"}); !ok || sampleValue(m) != 0 {
				t.Errorf("live slave's read errors: %v", m)
			}
			if m, ok := sample(fams, "edgepipe_device_last_good_read_timestamp_seconds", map[string]string{"plugin": "plc", "device": "live"}); !ok || sampleValue(m) < float64(time.Now().Add(-time.Hour).Unix()) {
				t.Errorf("live slave's last good read time: %v", m)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("device metrics: live up %v (%v), dead up %v (%v), dead errors %v", liveUp, ok1, deadUp, ok2, errs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// And /healthz is still 200 after the scrape, with the slave down.
	if code, body := get(t, "http://"+s.Addr()+"/healthz"); code != http.StatusOK || !strings.Contains(body, `"devices"`) {
		t.Fatalf("/healthz %d: %s", code, body)
	}
}

// TestUnreachablePLCShowsButHealthzStays200: a PLC that refuses the
// connection (switched off) makes its input unwell and its device down,
// and /healthz still answers 200.
func TestUnreachablePLCShowsButHealthzStays200(t *testing.T) {
	b := testbroker.StartMochi(t, testbroker.MochiOptions{Username: "gw", Password: "right"})
	port := testbroker.FreePort(t) // nothing listens there
	s := startGatewayWith(t, b.URL(), "right", fmt.Sprintf(`[[inputs.modbus]]
alias = "plc"
url = "tcp://127.0.0.1:%d"
interval = "50ms"
timeout = "1s"
max_backoff = "200ms"
[[inputs.modbus.devices]]
name = "press"
unit_id = 1
[[inputs.modbus.devices.points]]
name = "v"
area = "holding"
address = 0
type = "int16"
`, port))
	h := waitHealthzUntil(t, s, http.StatusOK, func(h agent.Health) bool {
		for _, p := range h.Plugins {
			if p.ID == "plc" && !p.OK && strings.Contains(p.Reason, "cannot connect") {
				return len(h.Devices) == 1 && !h.Devices[0].Up && h.Devices[0].ReadErrors > 0
			}
		}
		return false
	})
	if !h.OK || !strings.Contains(h.Devices[0].LastError, "connection") {
		t.Fatalf("/healthz: %+v", h)
	}
}

// startTwoSlaves runs a gateway with one Modbus connection to the
// simulator and two slaves on it: "live" (unit 1, answering) and "dead"
// (unit 7, not on the line: the simulator answers as a TCP gateway does
// for a slave that is not there), then more, an MQTT output on mochi.
func startTwoSlaves(t *testing.T, more string) *Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sim, err := modbussim.Start(ctx, "tcp://127.0.0.1:0", &modbussim.Config{Units: []modbussim.UnitConfig{{
		ID: 1, Registers: []modbussim.RegisterConfig{{Area: "holding", Address: 0, Type: "int16", Value: int64(42)}}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	b := testbroker.StartMochi(t, testbroker.MochiOptions{Username: "gw", Password: "right"})
	return startGatewayWith(t, b.URL(), "right", fmt.Sprintf(`[[inputs.modbus]]
alias = "plc"
url = %q
interval = "50ms"
timeout = "1s"
retries = 0
max_backoff = "200ms"
[[inputs.modbus.devices]]
name = "live"
unit_id = 1
[[inputs.modbus.devices.points]]
name = "v"
area = "holding"
address = 0
type = "int16"
[[inputs.modbus.devices]]
name = "dead"
unit_id = 7
[[inputs.modbus.devices.points]]
name = "v"
area = "holding"
address = 0
type = "int16"
`, sim.Addr())+more)
}
