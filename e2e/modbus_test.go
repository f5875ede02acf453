package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/internal/testbroker"
	"github.com/edgepipe/edgepipe/sim/modbussim"
)

// startSim serves a Modbus TCP slave (unit 1) in the test's process:
// holding 0 a constant 1234, holding 1 a counter +1 every 250 ms, holding 2
// a constant 5 (a writable set point in the gateway's configuration).
func startSim(t *testing.T) *modbussim.Server {
	t.Helper()
	cfg, err := modbussim.ParseConfig([]byte(`
[[units]]
id = 1
size = 16

[[units.registers]]
area = "holding"
address = 0
type = "uint16"
value = 1234

[[units.registers]]
area = "holding"
address = 1
type = "uint16"
generator = "counter"
step = 1.0
period = "250ms"

[[units.registers]]
area = "holding"
address = 2
type = "uint16"
value = 5
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

// modbusInput is the gateway's view of startSim's device "plc".
func modbusInput(url string) string {
	return fmt.Sprintf(`
[[inputs.modbus]]
url = %q
interval = "100ms"
timeout = "1s"

[[inputs.modbus.devices]]
name = "plc"
unit_id = 1

[[inputs.modbus.devices.points]]
name = "const"
area = "holding"
address = 0
type = "uint16"
unit = "bar"

[[inputs.modbus.devices.points]]
name = "level"
area = "holding"
address = 1
type = "uint16"
unit = "m"

[[inputs.modbus.devices.points]]
name = "setpoint"
area = "holding"
address = 2
type = "uint16"
access = "pubsub"
`, url)
}

// TestModbusDeadbandTemplate: Modbus simulator -> inputs.modbus ->
// deadband (report on change beyond 2) -> a custom template (one message
// per point, aliases, own payload) -> MQTT. The constant registers are
// reported once, the counter at every change of 2 or more, each payload as
// the template says.
func TestModbusDeadbandTemplate(t *testing.T) {
	needBinary(t)
	sim := startSim(t)
	b := testbroker.StartMochi(t, testbroker.MochiOptions{})
	const id = "GW-MB"
	pts := b.Subscribe(prefix + id + "/pt/#")
	dir := t.TempDir()
	addr := httpAddr(t)
	cfg := writeFile(t, dir, "gw.toml", fmt.Sprintf(`[agent]
device_id = %q
data_dir = %q
http_listen = %q
`, id, dir+"/data", addr)+modbusInput(sim.Addr())+fmt.Sprintf(`
[[processors.deadband]]
points = ["plc.*"]
report = "change"
absolute = 2

[[processors.template]]
aliases = { "plc.level" = "LVL" }

[processors.template.data]
topic = "${prefix}${device_id}/pt/${name}"
mode = "point"
payload = '{"point":"${point}","v":"${value}","q":"${quality}","unit":"${unit}","label":"${name} in ${unit}","t":"${ts}"}'

[[outputs.mqtt]]
servers = [%q]
qos = 1
buffer = "memory"
`, b.URL()))
	start := time.Now()
	g := startGateway(t, "modbus", cfg, addr)

	type payload struct {
		Point string          `json:"point"`
		V     json.RawMessage `json:"v"`
		Q     string          `json:"q"`
		Unit  string          `json:"unit"`
		Label string          `json:"label"`
		T     int64           `json:"t"`
	}
	decode := func(m testbroker.Received) payload {
		var p payload
		dec := json.NewDecoder(strings.NewReader(string(m.Payload)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("payload on %s does not follow the template: %v: %s", m.Topic, err, m.Payload)
		}
		return p
	}
	byTopic := func(msgs []testbroker.Received, name string) []payload {
		var out []payload
		for _, m := range msgs {
			if m.Topic == prefix+id+"/pt/"+name {
				out = append(out, decode(m))
			}
		}
		return out
	}
	polls0 := sim.Requests(1)
	pts.Wait(t, 30*time.Second, "six reports of the counter", func(m []testbroker.Received) bool {
		return len(byTopic(m, "LVL")) >= 6
	})
	// At least 20 more polls of the device for the constants to stay quiet.
	waitFor(t, 20*time.Second, "20 more polls", func() bool { return sim.Requests(1) >= polls0+20 })
	g.stop()
	msgs := pts.Messages()
	polls := sim.Requests(1)

	for _, m := range msgs {
		switch m.Topic {
		case prefix + id + "/pt/const", prefix + id + "/pt/setpoint", prefix + id + "/pt/LVL":
		default:
			t.Errorf("unexpected topic %q (want .../pt/<name>, level under its alias)", m.Topic)
		}
	}
	// The constants: reported once, at the first poll.
	for _, c := range []struct {
		name, point, unit string
		value             string
	}{{"const", "plc.const", "bar", "1234"}, {"setpoint", "plc.setpoint", "", "5"}} {
		got := byTopic(msgs, c.name)
		if len(got) != 1 {
			t.Fatalf("%s: reported %d times in %d requests to the device, want once", c.point, len(got), polls)
		}
		p := got[0]
		if p.Point != c.point || string(p.V) != c.value || p.Q != "good" || p.Unit != c.unit ||
			p.Label != c.name+" in "+c.unit || p.T < start.UnixMilli()-1000 || p.T > time.Now().UnixMilli() {
			t.Errorf("%s: payload %+v (v=%s)", c.point, p, p.V)
		}
	}
	// The counter: every report at least the band (2) beyond the last one,
	// and no change of the band missed (+1 every 250 ms, polled every
	// 100 ms: a report every second step, a third if a poll came late).
	lvl := byTopic(msgs, "LVL")
	var last int64 = -1
	var vals []int64
	for _, p := range lvl {
		var v int64
		if err := json.Unmarshal(p.V, &v); err != nil {
			t.Fatalf("LVL value %s is not an integer", p.V)
		}
		if p.Point != "LVL" || p.Q != "good" || p.Unit != "m" || p.Label != "LVL in m" {
			t.Errorf("LVL: payload %+v", p)
		}
		if last >= 0 && (v-last < 2 || v-last > 4) {
			t.Errorf("LVL reported %d after %d: want a step of 2 (band 2), at most 4", v, last)
		}
		last = v
		vals = append(vals, v)
	}
	t.Logf("%d requests to the device; LVL reported %v", polls, vals)
}

// TestOnceAndCheck: `once` polls the simulator once and prints the data
// message without publishing; `check` lists the points with their access;
// a file with several mistakes gets every one as FILE:LINE: message.
func TestOnceAndCheck(t *testing.T) {
	needBinary(t)
	sim := startSim(t)
	b := testbroker.StartMochi(t, testbroker.MochiOptions{})
	all := b.Subscribe("#")
	const id = "GW-ONCE"
	dir := t.TempDir()
	good := writeFile(t, dir, "gw.toml", fmt.Sprintf(`[agent]
device_id = %q
data_dir = %q
`, id, dir+"/data")+modbusInput(sim.Addr())+fmt.Sprintf(`
[[outputs.mqtt]]
servers = [%q]
`, b.URL()))

	code, stdout, stderr := runCmd(t, nil, "once", "--config", good)
	if code != 0 {
		t.Fatalf("once: exit %d\n%s%s", code, stdout, stderr)
	}
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("once: want one message (one device, one poll), got:\n%s", stdout)
	}
	topic, body, ok := strings.Cut(lines[0], "\t")
	if !ok || topic != prefix+id+"/data" {
		t.Fatalf("once: want %s<TAB>PAYLOAD, got %q", prefix+id+"/data", lines[0])
	}
	var d dataMsg
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatalf("once: payload is not JSON: %v: %s", err, body)
	}
	got := map[string]string{}
	for _, p := range d.Points {
		got[p.Name] = string(p.Value)
		if p.Q != "good" {
			t.Errorf("once: %s has quality %q", p.Name, p.Q)
		}
	}
	if d.Device != "plc" || got["const"] != "1234" || got["setpoint"] != "5" || got["level"] == "" || len(got) != 3 {
		t.Errorf("once: want plc with const 1234, level and setpoint 5, got %s", body)
	}
	if n := all.Len(); n != 0 || b.ClientConnected(id) {
		t.Errorf("once published %d messages (connected: %v); it must publish nothing", n, b.ClientConnected(id))
	}

	code, stdout, stderr = runCmd(t, nil, "check", "--config", good)
	if code != 0 {
		t.Fatalf("check: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, re := range []string{
		`(?m)^  plc\.const\s+uint16\s+pub\s+\[bar\]$`,
		`(?m)^  plc\.level\s+uint16\s+pub\s+\[m\]$`,
		`(?m)^  plc\.setpoint\s+uint16\s+pubsub\s*$`,
		`(?m)^` + regexp.QuoteMeta(prefix+id+"/data") + "\t\\{",
		`inputs\.modbus`, `outputs\.mqtt`,
	} {
		if !regexp.MustCompile(re).MatchString(stdout) {
			t.Errorf("check output lacks %s:\n%s", re, stdout)
		}
	}
	if all.Len() != 0 {
		t.Errorf("check published %d messages", all.Len())
	}

	// Several mistakes, each on a marked line, in five tables. (Within one
	// plugin table, errors come in stages: a value that does not decode
	// hides unknown keys, which hide the plugin's own checks; so each
	// table here holds mistakes of one stage.)
	doc := fmt.Sprintf(`[agent]
device_id = %q
log_level = "chatty"                 # MISTAKE log_level

[[inputs.modbus]]
url = %q

[[inputs.modbus.devices]]
name = "plc"
unit_id = 1

[[inputs.modbus.devices.points]]
name = "const"
area = "holdings"                    # MISTAKE area
address = 0
type = "uint16"

[[inputs.modbus.devices.points]]
name = "level"
area = "holding"
address = 1
type = "uint17"                      # MISTAKE type

[[inputs.synthetic]]
device = "s"
interval = "soon"                    # MISTAKE interval

[[processors.deadband]]
report = "change"
colour = "red"                       # MISTAKE colour

[[outputs.mqtt]]
servers = ["tcp://127.0.0.1:1"]
qos = 3                              # MISTAKE qos
`, id, sim.Addr())
	bad := writeFile(t, dir, "bad.toml", doc)
	code, stdout, stderr = runCmd(t, nil, "check", "--config", bad)
	if code != 1 || stdout != "" {
		t.Fatalf("check of a broken file: exit %d (want 1), stdout %q\nstderr:\n%s", code, stdout, stderr)
	}
	lineRE := regexp.MustCompile(`^` + regexp.QuoteMeta(bad) + `:(\d+): \S`)
	errLines := map[string]bool{}
	for _, l := range strings.Split(strings.TrimRight(stderr, "\n"), "\n") {
		m := lineRE.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("not FILE:LINE: message: %q", l)
			continue
		}
		errLines[m[1]] = true
	}
	for i, l := range strings.Split(doc, "\n") {
		if _, what, ok := strings.Cut(l, "# MISTAKE "); ok && !errLines[fmt.Sprint(i+1)] {
			t.Errorf("no error for the %s mistake at line %d", what, i+1)
		}
	}
	if t.Failed() {
		t.Logf("check's errors:\n%s", stderr)
	}
}
