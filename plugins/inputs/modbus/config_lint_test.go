package modbus

import (
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// Overlapping registers within a device are warned about, once per pair,
// at the later point's address; bits or bytes of a word and other devices
// are not.
func TestLintWarnsOverlappingRegisters(t *testing.T) {
	req := sdktest.Request(`url = "tcp://127.0.0.1:502"
[[devices]]
name = "plc1"
[[devices.points]]
name = "temp"
area = "holding"
address = 4
type = "float32"
[[devices.points]]
name = "pressure"
area = "holding"
address = 5
[[devices.points]]
name = "status"
area = "holding"
address = 10
[[devices.points]]
name = "alarm_bit"
area = "holding"
address = 10
type = "bool"
bit = 3
[[devices.points]]
name = "same_in_input"
area = "input"
address = 4
[[devices.points]]
name = "run"
area = "coil"
address = 0
[[devices.points]]
name = "run2"
area = "coil"
address = 0
[[devices.points]]
name = "mode"
area = "holding"
address = 20
type = "int8"
byte = "high"
[[devices.points]]
name = "speed"
area = "holding"
address = 20
type = "uint8"
byte = "low"
[[devices.points]]
name = "word20"
area = "holding"
address = 20
[[devices.points]]
name = "mode_again"
area = "holding"
address = 20
type = "uint8"
byte = "HIGH"
[[devices]]
name = "plc2"
unit_id = 2
[[devices.points]]
name = "temp"
area = "holding"
address = 4
`)
	var got []string
	for _, w := range lint(req) {
		got = append(got, w.Error())
	}
	want := []string{
		`test.toml:12: warning: devices[0].points[1].address: point "pressure" (holding 5) overlaps point "temp" (holding 4-5) of device "plc1": the same registers read twice, or a wrong address`,
		`test.toml:34: warning: devices[0].points[6].address: point "run2" (coil 0) overlaps point "run" (coil 0) of device "plc1": the same registers read twice, or a wrong address`,
		`test.toml:54: warning: devices[0].points[10].address: point "mode_again" (holding 20 high byte) overlaps point "mode" (holding 20 high byte) of device "plc1": the same registers read twice, or a wrong address`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if w := lint(sdktest.Request("url = 5\n")); w != nil {
		t.Fatalf("a refused table gets warnings: %v", w)
	}
}
