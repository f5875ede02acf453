package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/internal/testbroker"
	"github.com/edgepipe/edgepipe/sim/modbussim"
)

// TestDeadSlaveKeepsHealthz200: the real binary, its Modbus input in its
// own process, two slaves on one connection. When one stops answering,
// /healthz keeps answering 200 and lists it down under "devices",
// /metrics has edgepipe_device_up 0 for it and 1 for the other; when it
// answers again it is up again. /metrics names the build.
func TestDeadSlaveKeepsHealthz200(t *testing.T) {
	needBinary(t)
	unit := func(id uint8) modbussim.UnitConfig {
		return modbussim.UnitConfig{ID: id, Registers: []modbussim.RegisterConfig{{Area: "holding", Address: 0, Type: "uint16", Value: int64(id)}}}
	}
	ctx, cancel := context.WithCancel(context.Background())
	sim, err := modbussim.Start(ctx, "tcp://127.0.0.1:0", &modbussim.Config{Units: []modbussim.UnitConfig{unit(1), unit(2)}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close(); cancel() })
	b := testbroker.StartMochi(t, testbroker.MochiOptions{})
	dir := t.TempDir()
	addr := httpAddr(t)
	point := "[[inputs.modbus.devices.points]]\nname = \"v\"\narea = \"holding\"\naddress = 0\ntype = \"uint16\"\n"
	cfg := writeFile(t, dir, "gw.toml", fmt.Sprintf(`[agent]
device_id = "GW-DEV"
data_dir = %q
http_listen = %q

[[inputs.modbus]]
alias = "line1"
isolated = true
url = %q
interval = "100ms"
timeout = "1s"
retries = 0
max_backoff = "400ms"
[[inputs.modbus.devices]]
name = "press"
unit_id = 1
%s
[[inputs.modbus.devices]]
name = "oven"
unit_id = 2
%s
[[outputs.mqtt]]
servers = [%q]
buffer = "memory"
`, dir+"/data", addr, sim.Addr(), point, point, b.URL()))
	g := startGateway(t, "devices", cfg, addr)

	type device struct {
		Plugin    string `json:"plugin"`
		Device    string `json:"device"`
		Up        bool   `json:"up"`
		LastError string `json:"last_error"`
		LastGood  string `json:"last_good"`
	}
	devices := func(raw string) map[string]device {
		var body struct {
			Devices []device `json:"devices"`
		}
		if err := json.Unmarshal([]byte(raw), &body); err != nil {
			t.Fatalf("/healthz: %v: %s", err, raw)
		}
		out := map[string]device{}
		for _, d := range body.Devices {
			if d.Plugin == "line1" {
				out[d.Device] = d
			}
		}
		return out
	}
	deviceUp := func(metrics, dev string) string {
		re := regexp.MustCompile(`(?m)^edgepipe_device_up\{device="` + dev + `",plugin="line1"\} (\S+)$`)
		if m := re.FindStringSubmatch(metrics); m != nil {
			return m[1]
		}
		return ""
	}
	connected := false // /healthz answered 200 once: from then on it must stay 200
	wait := func(what string, pressUp, ovenUp bool) {
		t.Helper()
		waitFor(t, 30*time.Second, what, func() bool {
			g.requireRunning()
			code, h, raw := g.healthz()
			switch {
			case !connected && code != 200:
				return false // starting: not listening, or the output still connecting
			case code != 200 || !h.OK:
				t.Fatalf("%s: /healthz %d once the output was connected: %s", what, code, raw)
			}
			connected = true
			d := devices(raw)
			return d["press"].Up == pressUp && d["oven"].Up == ovenUp && d["press"].LastGood != ""
		})
		want := map[bool]string{true: "1", false: "0"}
		waitFor(t, 10*time.Second, what+" in /metrics", func() bool {
			m := g.get("/metrics")
			return deviceUp(m, "press") == want[pressUp] && deviceUp(m, "oven") == want[ovenUp]
		})
	}
	wait("both slaves up", true, true)
	sim.SetOffline(2, true)
	wait("the oven down, /healthz 200", true, false)
	if d := devices(g.get("/healthz"))["oven"]; d.LastError == "" {
		t.Errorf("the dead slave's error is not shown: %+v", d)
	}
	// The console's devices (GET /api/v1/devices, the devices page) show
	// the same state, with the input's error for the dead slave.
	waitFor(t, 10*time.Second, "the console's devices: the oven down with its error, the press up", func() bool {
		var body struct {
			Devices []struct {
				Name      string `json:"name"`
				Up        *bool  `json:"up"`
				LastError string `json:"last_error"`
			} `json:"devices"`
		}
		if err := json.Unmarshal([]byte(g.get("/api/v1/devices")), &body); err != nil {
			return false
		}
		var oven, press bool
		for _, d := range body.Devices {
			switch {
			case d.Name == "oven" && d.Up != nil && !*d.Up && d.LastError != "":
				oven = true
			case d.Name == "press" && d.Up != nil && *d.Up:
				press = true
			}
		}
		return oven && press
	})
	if m := g.get("/metrics"); !regexp.MustCompile(`(?m)^edgepipe_build_info\{commit="[^"]+",go="go[^"]+",version="[^"]+"\} 1$`).MatchString(m) {
		t.Errorf("no edgepipe_build_info in /metrics")
	}
	sim.SetOffline(2, false)
	wait("the oven back", true, true)
	g.stop()
}
