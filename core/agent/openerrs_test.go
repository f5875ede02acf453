package agent

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/core/config"
	_ "github.com/edgepipe/edgepipe/plugins/inputs/modbus"
	_ "github.com/edgepipe/edgepipe/plugins/inputs/synthetic"
	_ "github.com/edgepipe/edgepipe/plugins/processors/alarm"
	_ "github.com/edgepipe/edgepipe/plugins/processors/deadband"
	_ "github.com/edgepipe/edgepipe/plugins/processors/template"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// An input that fails to open has no points, so every processor naming
// one of them would report it missing too: those consequences are left
// out, and the input's own error stands alone. A processor's mistake
// about a point of a device that did open is still reported.
func TestOpenLeavesOutErrorsCausedByAFailedInput(t *testing.T) {
	const failed = `
[[inputs.modbus]]
url = "tcp://127.0.0.1:5020"
  [[inputs.modbus.devices]]
  name = "plc1"
  [[inputs.modbus.devices.points]]
  name = "t"
  area = "holding"
  address = 0
  type = "float33"
  [[inputs.modbus.devices]]
  name = "plc2"
  [[inputs.modbus.devices.points]]
  name = "p"
  area = "holding"
  address = 0
`
	const rest = `
[[inputs.synthetic]]
device = "d"
points = 1

[[processors.deadband]]
points = ["plc1.*", "d.*"]

[[processors.alarm]]
[[processors.alarm.rules]]
name = "hot"
point = "plc1.t"
condition = "value > 90"
[[processors.alarm.rules]]
name = "ref"
point = "d.p0"
condition = 'points["plc2.p"] > 1'
[[processors.alarm.rules]]
name = "typo"
point = "d.p9"
condition = "value > 1"

[[processors.template]]
aliases = { "plc1.t" = "temperature", "d.p0" = "zero" }
`
	doc := fmt.Sprintf("[agent]\ndevice_id = \"GW-T\"\ndata_dir = %q\n%s%s", t.TempDir(), failed, rest)
	cfg, err := config.Parse("test.toml", []byte(doc), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	err = New(cfg, Options{DryRun: true}).Open(context.Background(), false)
	var got []string
	for _, e := range sdk.AsConfigErrors(err) {
		got = append(got, e.Path+": "+e.Msg)
	}
	want := []string{
		`inputs.modbus#1.devices[0].points[0].type: unknown type "float33"`,
		`processors.alarm#1.rules[2].point: no point "d.p9" among the inputs' points`,
	}
	if len(got) != len(want) {
		t.Fatalf("errors:\n%s", strings.Join(got, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("error %d:\n got %s\nwant %s...", i+1, got[i], w)
		}
	}
}

// The devices of a failed input are told from its table (`device`, or
// `name` in each [[devices]]); when they cannot be (another layout), the
// errors about points of devices no input has are kept, and say that the
// failed input may be why.
func TestOpenMarksErrorsAFailedInputMayCause(t *testing.T) {
	// The synthetic input's points = -1 fails its Init; its table has no
	// device key, so its device (the default) cannot be told.
	doc := fmt.Sprintf(`[agent]
device_id = "GW-T"
data_dir = %q
[[inputs.synthetic]]
points = -1
[[inputs.synthetic]]
device = "d"
points = 1
[[processors.alarm]]
[[processors.alarm.rules]]
name = "hot"
point = "sim1.p0"
condition = "value > 90"
[[processors.alarm.rules]]
name = "typo"
point = "d.p9"
condition = "value > 1"
`, t.TempDir())
	cfg, err := config.Parse("test.toml", []byte(doc), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	errs := sdk.AsConfigErrors(New(cfg, Options{DryRun: true}).Open(context.Background(), false))
	var got []string
	for _, e := range errs {
		got = append(got, e.Path+": "+e.Msg)
	}
	if len(got) != 3 || !strings.HasPrefix(got[0], "inputs.synthetic#1") ||
		!strings.HasSuffix(got[1], `no point "sim1.p0" among the inputs' points (inputs.synthetic#1, which failed to open, may define it)`) ||
		!strings.HasSuffix(got[2], `no point "d.p9" among the inputs' points`) {
		t.Fatalf("errors:\n%s", strings.Join(got, "\n"))
	}
}

// Plugins' error messages (an external plugin's too) are read for quoted
// names: no message may make that panic, and every name found takes two
// quotes of its own (the scan does not read one quote twice).
func FuzzQuoted(f *testing.F) {
	for _, s := range []string{`no point "plc1.t" among the inputs' points`, `points["a.b"]: x`, `"`, `"\"`, `"a\x"`, `"\u00zz" "ok"`, `""""`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		got := quoted(msg)
		if n := strings.Count(msg, `"`); len(got) > n/2 {
			t.Fatalf("%d names %q in %q, with %d quotes", len(got), got, msg, n)
		}
		if got := quoted(strconv.Quote(msg)); len(got) != 1 || got[0] != msg {
			t.Fatalf("quoted(%s) = %q", strconv.Quote(msg), got)
		}
	})
}
