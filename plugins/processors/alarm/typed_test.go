package alarm

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// typedRegistry has the integer points of a real PLC: a uint16 status word,
// an int16 level, 64-bit counters.
var typedRegistry = []sdk.PointSchema{
	{Device: "plc1", Name: "status", Type: "uint16", Kind: sdk.KindUint},
	{Device: "plc1", Name: "level", Type: "int16", Kind: sdk.KindInt},
	{Device: "plc1", Name: "count", Type: "int64", Kind: sdk.KindInt},
	{Device: "plc1", Name: "total", Type: "uint64", Kind: sdk.KindUint},
	{Device: "plc1", Name: "temperature", Type: "float32", Kind: sdk.KindFloat},
	{Device: "plc1", Name: "running", Type: "bool", Kind: sdk.KindBool},
}

func typedRequest(conf string) *sdk.InitRequest {
	req := sdktest.Request(conf)
	req.Points = typedRegistry
	return req
}

func ruleConf(name, point, cond string) string {
	return "\n[[rules]]\nname = \"" + name + "\"\npoint = \"" + point + "\"\ncondition = '" + cond + "'\n"
}

// An expression sees an integer point as an integer: modulo, the bit
// functions of expr-lang and bit() work on status words, and 64-bit values
// are exact (9007199254740993 is odd, which a float64 cannot tell).
func TestIntegerPointsAreIntegersInExpressions(t *testing.T) {
	conf := ruleConf("phase", "plc1.status", "value % 40 >= 20") +
		ruleConf("door_open", "plc1.status", "bitand(value, 8) != 0") +
		ruleConf("fault", "plc1.status", "bit(value, 15)") +
		ruleConf("low_byte", "plc1.status", "bitand(value, 0xFF) == 0x12 && bitshr(value, 8) == 0x80") +
		ruleConf("odd", "plc1.count", "value % 2 == 1") +
		ruleConf("below", "plc1.level", "value < -100 && value * 2 < points[\"plc1.status\"]") +
		ruleConf("mixed", "plc1.level", "value > 2.5 && value - prev == 0")
	sdktest.Run(t, factory(newClock()), func(t *testing.T, p sdk.Plugin) {
		if _, err := p.Init(context.Background(), typedRequest(conf)); err != nil {
			t.Fatalf("Init: %v", err)
		}
		for i, s := range []step{
			st("", r(0, "plc1.status", U(0)), r(0, "plc1.count", I(2)), r(0, "plc1.level", I(0))),
			st("phase:raised door_open:raised", r(1, "plc1.status", U(25|8))),                    // 33: 33 % 40 = 33, bit 3 set
			st("door_open:cleared fault:raised low_byte:raised", r(2, "plc1.status", U(0x8012))), // 32786 % 40 = 26: phase stays
			st("odd:raised", r(3, "plc1.count", I(9007199254740993))),
			st("odd:cleared", r(4, "plc1.count", I(9007199254740992))),
			st("below:raised", r(5, "plc1.level", I(-32768))),
			st("below:cleared mixed:raised", r(6, "plc1.level", I(3)), r(6, "plc1.level", I(3))),
		} {
			if got := events(process(t, p, frameOf(s.rs...))); got != s.want {
				t.Fatalf("step %d %v: events %q, want %q", i, s.rs, got, s.want)
			}
		}
	})
}

// A uint64 above the int64 range compares as a float64; integer operations
// on it fail and are counted, leaving the alarm as it was.
func TestUint64BeyondInt64(t *testing.T) {
	a := factory(newClock())()
	if _, err := a.Init(context.Background(), typedRequest(ruleConf("big", "plc1.total", "value > 100")+ruleConf("even", "plc1.total", "value % 2 == 0"))); err != nil {
		t.Fatal(err)
	}
	if got := events(process(t, a, frameOf(r(0, "plc1.total", U(4))))); got != "even:raised" {
		t.Fatalf("events %q", got)
	}
	if got := events(process(t, a, frameOf(r(1, "plc1.total", U(math.MaxUint64))))); got != "big:raised" {
		t.Fatalf("events %q", got)
	}
	h, _ := a.(*Alarm).Health(context.Background())
	if h.Counters["evaluation_errors"] != 1 {
		t.Fatalf("counters %v", h.Counters)
	}
}

// Rules are type-checked against the point's own type at Init.
func TestRulesCheckedAgainstThePointType(t *testing.T) {
	conf := ruleConf("a", "plc1.temperature", "value % 40 >= 20") +
		ruleConf("b", "plc1.running", "bitand(value, 1) == 1") +
		ruleConf("c", "plc1.status", "value && true") +
		ruleConf("d", "plc1.status", `points["plc1.temperature"] % 2 == 0`) +
		ruleConf("e", "plc1.temperature", "bit(value, 3)") +
		ruleConf("f", "plc1.status", `bitand(points["plc1.level"], 4) != 0 && value > 1.5`)
	_, err := New().Init(context.Background(), typedRequest(conf))
	if err == nil {
		t.Fatal("every rule accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		"test.toml:5: rules[0].condition: does not compile: invalid operation: % (mismatched types float64 and int)",
		"test.toml:10: rules[1].condition: does not compile:",
		"test.toml:15: rules[2].condition: does not compile:",
		"test.toml:20: rules[3].condition: does not compile: invalid operation: % (mismatched types float64 and int)",
		"test.toml:25: rules[4].condition: does not compile:",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "rules[5]") {
		t.Errorf("a valid rule refused:\n%s", msg)
	}
}
