package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/internal/testbroker"
	"github.com/edgepipe/edgepipe/sim/modbussim"
)

// writeSim is a Modbus slave (unit 1) with a uint64 at holding 10, an
// int64 at holding 20 and a uint16 set point at holding 2, for the write
// tests.
func writeSim(t testing.TB) *modbussim.Server {
	t.Helper()
	cfg, err := modbussim.ParseConfig([]byte(`
[[units]]
id = 1
size = 32
[[units.registers]]
area = "holding"
address = 2
type = "uint16"
value = 5
[[units.registers]]
area = "holding"
address = 10
type = "uint64"
value = 1
[[units.registers]]
area = "holding"
address = 20
type = "int64"
value = -1
`))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := modbussim.Start(ctx, "tcp://127.0.0.1:0", cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		cancel()
	})
	return s
}

// writeGateway is the configuration for writeSim: the three points
// pubsub, polled once an hour (so that every later report is a read-back),
// behind a deadband of 10.
func writeGateway(id, dir, httpListen, simAddr, brokerURL string) string {
	return fmt.Sprintf(`[agent]
device_id = %q
data_dir = %q
http_listen = %q

[[inputs.modbus]]
url = %q
interval = "1h"
timeout = "1s"

[[inputs.modbus.devices]]
name = "plc"
unit_id = 1

[[inputs.modbus.devices.points]]
name = "sp"
area = "holding"
address = 2
type = "uint16"
access = "pubsub"

[[inputs.modbus.devices.points]]
name = "u64"
area = "holding"
address = 10
type = "uint64"
access = "pubsub"

[[inputs.modbus.devices.points]]
name = "i64"
area = "holding"
address = 20
type = "int64"
access = "pubsub"

[[processors.deadband]]
points = ["plc.*"]
absolute = 10.0

[[outputs.mqtt]]
servers = [%q]
qos = 1
buffer = "memory"
`, id, dir+"/data", httpListen, simAddr, brokerURL)
}

// regs64 reads a 64-bit value (ABCD) from the simulator's holding registers.
func regs64(t *testing.T, s *modbussim.Server, addr int) uint64 {
	t.Helper()
	r, err := s.Read(1, modbussim.Holding, addr, 4)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(r[0])<<48 | uint64(r[1])<<32 | uint64(r[2])<<16 | uint64(r[3])
}

type writeReply struct {
	ID      string `json:"id"`
	Results map[string]struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	} `json:"results"`
}

// TestWrite64BitEdgesExact: the 64-bit writes of issue 10 against a Modbus
// device, through the real binary and broker. Those out of range are
// refused with the registers untouched; those that fit are written
// exactly, and read back and reported exactly, through a deadband of 10
// (as is a change of 2 of the set point, which the band alone would hide).
func TestWrite64BitEdgesExact(t *testing.T) {
	needBinary(t)
	sim := writeSim(t)
	b := newBroker(t)
	const id = "GW-WR"
	replies := b.Collect(t, prefix+id+"/data/write/reply")
	data := b.Collect(t, prefix+id+"/data")
	dir := t.TempDir()
	addr := httpAddr(t)
	g := startGateway(t, "write", writeFile(t, dir, "gw.toml", writeGateway(id, dir, addr, sim.Addr(), b.URL())), addr)
	defer g.stop()

	// reported is the last reported text of a point, from the JSON as sent.
	reported := func(point string) []string {
		var out []string
		for _, m := range data.Messages() {
			var d dataMsg
			if json.Unmarshal(m.Payload, &d) != nil {
				continue
			}
			for _, p := range d.Points {
				if p.Name == point {
					out = append(out, string(p.Value))
				}
			}
		}
		return out
	}
	waitFor(t, 30*time.Second, "the first poll", func() bool { return len(reported("i64")) == 1 })
	g.waitHealth(30*time.Second, "the output connected", func(code int, h health) bool { return code == 200 })

	n := 0
	write := func(point, value string) (bool, string) {
		n++
		rid := fmt.Sprintf("w-%d", n)
		payload := fmt.Sprintf(`{"id":%q,"points":{%q:%s}}`, rid, "plc."+point, value)
		// The gateway subscribes after connecting: a write published before
		// that is lost, so it is sent again (the same value: idempotent)
		// while no reply came for a few seconds.
		var r writeReply
		var sent time.Time
		waitFor(t, 60*time.Second, "the reply to "+rid, func() bool {
			for _, m := range replies.Messages() {
				if json.Unmarshal(m.Payload, &r) == nil && r.ID == rid {
					return true
				}
			}
			if time.Since(sent) > 3*time.Second {
				testbroker.PublishOnce(t, b.URL(), testbroker.ClientOptions{}, prefix+id+"/data/write", []byte(payload), false)
				sent = time.Now()
			}
			return false
		})
		res := r.Results["plc."+point]
		return res.OK, res.Error
	}

	u0, i0 := regs64(t, sim, 10), regs64(t, sim, 20)
	for _, c := range []struct{ point, value string }{
		{"u64", "18446744073709551616"},
		{"u64", "1.8446744073709552e19"},
		{"i64", "-9223372036854775809"},
	} {
		ok, msg := write(c.point, c.value)
		if ok || !strings.Contains(msg, "does not fit") {
			t.Errorf("%s = %s: ok=%v %q, want refused as out of range", c.point, c.value, ok, msg)
		}
		if u, i := regs64(t, sim, 10), regs64(t, sim, 20); u != u0 || i != i0 {
			t.Fatalf("%s = %s: the registers changed: u64 %d -> %d, i64 %d -> %d",
				c.point, c.value, u0, u, int64(i0), int64(i))
		}
	}
	for _, c := range []struct {
		point, value string
		regs         uint64
		text         string // reported value, as JSON text
	}{
		{"i64", "9007199254740993.0", 9007199254740993, "9007199254740993"},
		{"u64", "18446744073709551615", 18446744073709551615, "18446744073709551615"},
		{"i64", "-9.223372036854775808e18", 1 << 63, "-9223372036854775808"},
		{"sp", "7", 0, "7"},
	} {
		if ok, msg := write(c.point, c.value); !ok {
			t.Fatalf("%s = %s: refused (%s), want written exactly", c.point, c.value, msg)
		}
		if c.point != "sp" {
			addr := map[string]int{"u64": 10, "i64": 20}[c.point]
			if got := regs64(t, sim, addr); got != c.regs {
				t.Errorf("%s = %s: registers hold %d, want %d", c.point, c.value, got, c.regs)
			}
		}
		waitFor(t, 30*time.Second, fmt.Sprintf("the read-back of %s = %s", c.point, c.text), func() bool {
			v := reported(c.point)
			return len(v) > 0 && v[len(v)-1] == c.text
		})
	}
	if r, err := sim.Read(1, modbussim.Holding, 2, 1); err != nil || r[0] != 7 {
		t.Errorf("set point holds %v (%v), want 7", r, err)
	}
}
