package alarm

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// tomlQuote writes s as a TOML basic string: TOML has no \x escape, so
// control characters are written as \uXXXX.
func tomlQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// fuzzValue builds any point value, including the ones no device sends.
func fuzzValue(kind uint8, bits uint64, s string) sdk.Value {
	return sdk.FromBits(sdk.Kind(kind%7), bits, s) // 6: beyond the kinds, an empty value
}

// checkSequence fails when events of one rule do not alternate as they
// must: raised, (acked,) cleared, raised ...
func checkSequence(t *testing.T, raised map[string]bool, f *sdk.Frame) {
	t.Helper()
	for _, a := range f.Alarms {
		switch a.State {
		case StateRaised:
			if raised[a.Rule] {
				t.Fatalf("%s raised twice", a.Rule)
			}
			raised[a.Rule] = true
		case StateCleared:
			if !raised[a.Rule] {
				t.Fatalf("%s cleared while not raised", a.Rule)
			}
			raised[a.Rule] = false
		default:
			t.Fatalf("unexpected event %+v", a)
		}
	}
}

// FuzzEvaluate feeds arbitrary values, kinds and qualities (a device, or a
// plugin of another author, may send anything) to rules that do
// arithmetic, string and cross-point work: the plugin must never panic,
// and events must stay consistent.
func FuzzEvaluate(f *testing.F) {
	f.Add(uint8(4), math.Float64bits(95), "", uint8(0), uint8(1), uint64(1), "run", uint8(0), int16(100))
	f.Add(uint8(4), math.Float64bits(math.NaN()), "x", uint8(1), uint8(5), uint64(0), "fault", uint8(2), int16(-5))
	f.Add(uint8(5), uint64(0), "\xff\x00", uint8(2), uint8(2), uint64(math.MaxUint64), "", uint8(0), int16(0))
	f.Add(uint8(2), uint64(1<<63), "", uint8(0), uint8(3), uint64(7), "estop", uint8(0), int16(32767))
	conf := `
[[rules]]
name = "hot"
point = "plc1.temperature"
condition = "value > 90 && value / (prev - value + 1) != 3"
clear = "value < 85"
delay = "1s"
message = "${rule} ${value} ${point} ${level} ${state}"
[[rules]]
name = "mode"
point = "plc1.mode"
condition = "upper(value) in ['FAULT', 'ESTOP'] || len(value) > 4 && value[0:4] == 'err:'"
[[rules]]
name = "cross"
point = "plc2.any"
condition = 'value == true || value > points["plc1.temperature"] || points["plc1.mode"] == value'
[[rules]]
name = "count"
point = "plc1.counter"
condition = "int(value) % 7 == 0 && quality == 'good'"
`
	f.Fuzz(func(t *testing.T, k1 uint8, b1 uint64, s1 string, q1 uint8, k2 uint8, b2 uint64, s2 string, q2 uint8, dt int16) {
		a := New()
		a.log = slog.New(slog.DiscardHandler)
		if _, err := a.Init(context.Background(), request(conf)); err != nil {
			t.Fatal(err)
		}
		raised := map[string]bool{}
		ts := int64(t0)
		for i := range 4 {
			v1, v2 := fuzzValue(k1, b1, s1), fuzzValue(k2, b2, s2)
			if i%2 == 1 {
				v1, v2 = v2, v1
			}
			fr := &sdk.Frame{Batches: []sdk.Batch{
				{Device: "plc1", TS: ts, Points: []sdk.Point{
					{Name: "temperature", Value: v1, Quality: sdk.Quality(q1 % 4), TS: ts},
					{Name: "mode", Value: v2, Quality: sdk.Quality(q2 % 4), TS: ts},
					{Name: "counter", Value: v2, Quality: sdk.Quality(q1 % 4)},
				}},
				{Device: "plc2", Points: []sdk.Point{{Name: "any", Value: v1, Quality: sdk.Quality(q2 % 4), TS: ts}}},
			}}
			out, err := a.Process(context.Background(), fr)
			if err != nil {
				t.Fatal(err)
			}
			checkSequence(t, raised, out)
			for _, al := range out.Alarms {
				if !utf8.ValidString(al.Message) && utf8.ValidString(s1) && utf8.ValidString(s2) {
					t.Fatalf("message %q", al.Message)
				}
			}
			ts += int64(dt) * 10
		}
	})
}

// FuzzConfig compiles arbitrary expressions as a rule's condition and
// clear and, when they are accepted, evaluates them on a few values: a
// configuration may be rejected, but loading and running it never panics.
func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		"value > 90", `points["plc1.pressure"] > value`, "value - prev > 10", `quality == "bad"`,
		"1 / 0 == 1", "int(value) % 0 == 1", "len(repeat('x', 1000000)) > 0", "all(1..100000, # > 0)",
		`points[value] > 1`, "points", "value?.x ?? true", "let x = value; x > 1", "now() > now()",
		`sum(map(1..1000, # * value)) > 0`, "toJSON(value) == '1'", `value matches "("`, "((((", "",
		`fromJSON("[1,") == 1`, "max(value, prev) > 1e308 * 10", `date(value) > now()`,
	} {
		f.Add(s, "value < 85", uint8(4))
	}
	f.Fuzz(func(t *testing.T, cond, clr string, kind uint8) {
		point := []string{"plc1.temperature", "plc1.counter", "plc1.running", "plc1.mode", "plc2.any"}[kind%5]
		conf := fmt.Sprintf("[[rules]]\nname = \"r\"\npoint = %q\ncondition = %s\nclear = %s\n", point, tomlQuote(cond), tomlQuote(clr))
		a := New()
		a.log = slog.New(slog.DiscardHandler)
		if _, err := a.Init(context.Background(), request(conf)); err != nil {
			if len(sdk.AsConfigErrors(err)) == 0 {
				t.Fatalf("an error that is not a config error: %v", err)
			}
			return
		}
		dev, name, _ := strings.Cut(point, ".")
		raised := map[string]bool{}
		for i, v := range []sdk.Value{sdk.Float(95), sdk.Float(math.Inf(-1)), sdk.Int(-1), sdk.Bool(true), sdk.String("fault"), {}, sdk.Float(math.NaN())} {
			fr := &sdk.Frame{Batches: []sdk.Batch{
				{Device: "plc1", TS: int64(t0 + i), Points: []sdk.Point{{Name: "pressure", Value: sdk.Float(float64(i))}}},
				{Device: dev, TS: int64(t0 + i), Points: []sdk.Point{{Name: name, Value: v}}},
			}}
			out, err := a.Process(context.Background(), fr)
			if err != nil {
				t.Fatal(err)
			}
			checkSequence(t, raised, out)
		}
	})
}
