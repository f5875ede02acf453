package modbus_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
	"github.com/edgepipe/edgepipe/sim/modbussim"
)

func deviceHealth(t *testing.T, p sdk.Plugin) map[string]sdk.DeviceHealth {
	t.Helper()
	h, err := p.(sdk.HealthReporter).Health(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]sdk.DeviceHealth{}
	for _, d := range h.Devices {
		out[d.Name] = d
	}
	return out
}

// TestDeviceHealth: each slave of one connection reports its own state
// through Health, in process and over gRPC: not up before its first
// read, up with a good read time once read, down with its error and a
// count of failed reads when it stops answering (the other staying up),
// and up again when it is back, its last error kept. A slave that answers
// with an exception is there: up, with the error counted.
func TestDeviceHealth(t *testing.T) {
	for _, listen := range []string{"rtu://pty", "tcp://127.0.0.1:0"} {
		t.Run(strings.Split(listen, ":")[0], func(t *testing.T) {
			unit := func(id uint8) modbussim.UnitConfig {
				return modbussim.UnitConfig{ID: id, Size: 10, Registers: []modbussim.RegisterConfig{
					{Area: "holding", Address: 0, Type: "int16", Value: int64(id)}}}
			}
			s := startSim(t, listen, &modbussim.Config{Units: []modbussim.UnitConfig{unit(1), unit(2), unit(3)}})
			conf := fmt.Sprintf(`url = %q
baud_rate = 115200
interval = "50ms"
timeout = "300ms"
retries = 0
max_backoff = "100ms"
[[devices]]
name = "live"
unit_id = 1
[[devices.points]]
name = "v"
area = "holding"
address = 0
type = "int16"
[[devices]]
name = "flaky"
unit_id = 2
[[devices.points]]
name = "v"
area = "holding"
address = 0
type = "int16"
[[devices]]
name = "refuses"
unit_id = 3
[[devices.points]]
name = "beyond"
area = "holding"
address = 20
type = "int16"
`, s.Addr())
			sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
				sdktest.Init(t, p, conf)
				before := deviceHealth(t, p)
				if len(before) != 3 {
					t.Fatalf("want 3 devices before the first read, got %+v", before)
				}
				for name, d := range before {
					if d.Up || !d.LastGood.IsZero() || d.ReadErrors != 0 {
						t.Errorf("%s before its first read: %+v", name, d)
					}
				}
				// gatherUntil polls on the interval, as the core does, until
				// cond holds for the devices' health.
				gatherUntil := func(what string, cond func(map[string]sdk.DeviceHealth) bool) map[string]sdk.DeviceHealth {
					t.Helper()
					deadline := time.Now().Add(20 * time.Second)
					for {
						gather(t, p)
						h := deviceHealth(t, p)
						if cond(h) {
							return h
						}
						if time.Now().After(deadline) {
							t.Fatalf("%s: %+v", what, h)
						}
						time.Sleep(50 * time.Millisecond)
					}
				}
				// (On a loaded machine a late answer over RTU may add a
				// read error to any slave: errors are not asserted absent.)
				h := gatherUntil("every slave up", func(h map[string]sdk.DeviceHealth) bool {
					return h["live"].Up && h["flaky"].Up && h["refuses"].Up && h["refuses"].ReadErrors > 0
				})
				for _, name := range []string{"live", "flaky"} {
					if d := h[name]; d.LastGood.IsZero() {
						t.Errorf("%s after a good read: %+v", name, d)
					}
				}
				if d := h["refuses"]; !d.Up || d.ReadErrors == 0 || !strings.Contains(d.LastError, "illegal data address") || !d.LastGood.IsZero() {
					t.Errorf("a slave answering with an exception is up, with its errors counted: %+v", d)
				}

				s.SetOffline(2, true)
				h = gatherUntil("flaky down", func(h map[string]sdk.DeviceHealth) bool { return !h["flaky"].Up })
				if d := h["flaky"]; d.ReadErrors == 0 || d.LastError == "" || d.LastErrorAt.IsZero() || d.LastGood.IsZero() {
					t.Errorf("a slave that stopped answering: %+v", d)
				}
				if d := h["live"]; !d.Up {
					t.Errorf("the other slave must stay up: %+v", d)
				}
				wentDown := h["flaky"]

				s.SetOffline(2, false)
				h = gatherUntil("flaky up again", func(h map[string]sdk.DeviceHealth) bool { return h["flaky"].Up })
				// The error stays (a loaded machine may add a late answer's
				// error since, never remove one).
				if d := h["flaky"]; d.LastError == "" || d.LastErrorAt.Before(wentDown.LastErrorAt) || d.ReadErrors < wentDown.ReadErrors ||
					d.LastGood.Before(wentDown.LastErrorAt) {
					t.Errorf("back: want the last error kept and a newer good read, got %+v (down: %+v)", d, wentDown)
				}
			})
		})
	}
}
