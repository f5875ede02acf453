package main

import (
	"strings"
	"testing"
)

// An input with a mistake fails to open and lends no points: check prints
// its error alone, not the alarm rule, deadband pattern and points[...]
// that name its points as missing too. A mistake of the rules about a
// device that did open is still printed.
func TestCheckFailedInputErrorStandsAlone(t *testing.T) {
	path := writeConfig(t, `[agent]
device_id = "GW-1"
data_dir = "`+t.TempDir()+`"

[[inputs.modbus]]
url = "tcp://127.0.0.1:5020"
  [[inputs.modbus.devices]]
  name = "plc1"
  [[inputs.modbus.devices.points]]
  name = "temperature"
  area = "holding"
  address = 0
  type = "float33"

[[inputs.synthetic]]
device = "boiler"
points = 1

[[processors.deadband]]
points = ["plc1.*"]

[[processors.alarm]]
[[processors.alarm.rules]]
name = "hot"
point = "plc1.temperature"
condition = "value > 90"
delay = "5s"
[[processors.alarm.rules]]
name = "dry"
point = "boiler.p0"
condition = 'points["plc1.temperature"] > 1'
[[processors.alarm.rules]]
name = "typo"
point = "boiler.p1"
condition = "value > 1"
`)
	code, stdout, stderr := run(t, "check", "--config", path)
	if code != 1 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	want := []string{
		path + `:13: inputs.modbus#1.devices[0].points[0].type: unknown type "float33"`,
		path + `:34: processors.alarm#1.rules[2].point: no point "boiler.p1" among the inputs' points`,
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) != len(want) {
		t.Fatalf("stderr:\n%s", stderr)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d:\n got %s\nwant %s...", i+1, lines[i], w)
		}
	}
}
