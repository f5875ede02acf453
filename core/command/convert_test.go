package command

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

func fp(x float64) *float64 { return &x }

func schema(typ string) sdk.PointSchema {
	k := map[string]sdk.Kind{"bool": sdk.KindBool, "int8": sdk.KindInt, "int16": sdk.KindInt, "int32": sdk.KindInt,
		"int64": sdk.KindInt, "uint8": sdk.KindUint, "uint16": sdk.KindUint, "uint32": sdk.KindUint, "uint64": sdk.KindUint,
		"float32": sdk.KindFloat, "float64": sdk.KindFloat, "string": sdk.KindString}[typ]
	return sdk.PointSchema{Type: typ, Kind: k}
}

func TestConvert(t *testing.T) {
	i16 := schema("int16")
	u16 := schema("uint16")
	fl := sdk.PointSchema{Type: "float32", Kind: sdk.KindFloat, Min: fp(0), Max: fp(120)}
	bl := schema("bool")
	st := schema("string")
	for _, tc := range []struct {
		raw  string
		s    sdk.PointSchema
		want sdk.Value
		err  string
	}{
		{"-32768", i16, sdk.Int(-32768), ""},
		{"32768", i16, sdk.Value{}, "does not fit int16"},
		{"1.5", i16, sdk.Value{}, "does not fit int16"},
		{"2.0", i16, sdk.Int(2), ""},
		{"-1", u16, sdk.Value{}, "does not fit uint16"},
		{"65535", u16, sdk.Uint(65535), ""},
		{"75.5", fl, sdk.Float(75.5), ""},
		{"121", fl, sdk.Value{}, "above the maximum 120"},
		{"-0.1", fl, sdk.Value{}, "below the minimum 0"},
		{`"75"`, fl, sdk.Value{}, "want a number"},
		{"1e999", fl, sdk.Value{}, "out of range"},
		{"true", bl, sdk.Bool(true), ""},
		{"0", bl, sdk.Bool(false), ""},
		{"2", bl, sdk.Value{}, "want true, false, 0 or 1"},
		{`"abc"`, st, sdk.String("abc"), ""},
		{"null", st, sdk.Value{}, "want a string, got null"},
		{"18446744073709551615", schema("uint64"), sdk.Uint(18446744073709551615), ""},
	} {
		got, err := Convert(json.RawMessage(tc.raw), tc.s)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s as %s: err %v, want %q", tc.raw, tc.s.Type, err, tc.err)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("%s as %s: %#v %v, want %#v", tc.raw, tc.s.Type, got, err, tc.want)
		}
	}
}

// TestConvertExact: the writes of issue 10 that were written with ok
// though out of range or rounded, and the edges of every type. A value is
// accepted only when the type holds it exactly.
func TestConvertExact(t *testing.T) {
	for _, tc := range []struct {
		raw, typ string
		want     sdk.Value // invalid: refused
	}{
		// The four cases of issue 10.
		{"18446744073709551616", "uint64", sdk.Value{}},
		{"1.8446744073709552e19", "uint64", sdk.Value{}},
		{"-9223372036854775809", "int64", sdk.Value{}},
		{"9007199254740993.0", "int64", sdk.Int(9007199254740993)},
		{"9007199254740993", "int64", sdk.Int(9007199254740993)},
		{"9.007199254740993e15", "int64", sdk.Int(9007199254740993)},
		// 64-bit edges.
		{"18446744073709551615", "uint64", sdk.Uint(math.MaxUint64)},
		{"18446744073709551615.000", "uint64", sdk.Uint(math.MaxUint64)},
		{"1.8446744073709551615e19", "uint64", sdk.Uint(math.MaxUint64)},
		{"1.8446744073709551615e+19", "uint64", sdk.Uint(math.MaxUint64)},
		{"184467440737095516150e-1", "uint64", sdk.Uint(math.MaxUint64)},
		{"18446744073709551615.5", "uint64", sdk.Value{}},
		{"-0", "uint64", sdk.Uint(0)},
		{"-0.0e5", "uint64", sdk.Uint(0)},
		{"-1", "uint64", sdk.Value{}},
		{"9223372036854775807", "int64", sdk.Int(math.MaxInt64)},
		{"9223372036854775808", "int64", sdk.Value{}},
		{"-9223372036854775808", "int64", sdk.Int(math.MinInt64)},
		{"-9.223372036854775808E18", "int64", sdk.Int(math.MinInt64)},
		{"9.2233720368547758075e18", "int64", sdk.Value{}},
		{"1e19", "int64", sdk.Value{}},
		{"1e19", "uint64", sdk.Uint(1e19)},
		{"1e20", "uint64", sdk.Value{}},
		{"1e1000000000000000000000", "uint64", sdk.Value{}},
		{"1e-1000000000000000000000", "uint64", sdk.Value{}},
		{"0e1000000000000000000000", "int64", sdk.Int(0)},
		{"00012", "int64", sdk.Value{}}, // not JSON
		// Narrow types.
		{"127", "int8", sdk.Int(127)},
		{"128", "int8", sdk.Value{}},
		{"255", "uint8", sdk.Uint(255)},
		{"256", "uint8", sdk.Value{}},
		{"-32769", "int16", sdk.Value{}},
		{"32767", "int16", sdk.Int(32767)},
		{"65536", "uint16", sdk.Value{}},
		{"4294967295", "uint32", sdk.Uint(math.MaxUint32)},
		{"4294967296", "uint32", sdk.Value{}},
		{"-2147483648", "int32", sdk.Int(math.MinInt32)},
		{"-2147483649", "int32", sdk.Value{}},
		{"2.147483647e9", "int32", sdk.Int(math.MaxInt32)},
		{"true", "int16", sdk.Int(1)},
		{"false", "uint64", sdk.Uint(0)},
		// Floats: what the type represents, nothing rounded.
		{"9007199254740993", "float64", sdk.Value{}},
		{"9007199254740992", "float64", sdk.Float(9007199254740992)},
		{"0.1", "float64", sdk.Float(0.1)},
		{"0.1000000000000000055511151231257827021181583404541015625", "float64", sdk.Float(0.1)},
		{"0.10000000000000001", "float64", sdk.Value{}},
		{"1152921504606846976", "float64", sdk.Float(1 << 60)},
		{"1.7976931348623157e308", "float64", sdk.Float(math.MaxFloat64)},
		{"1.7976931348623159e308", "float64", sdk.Value{}},
		{"1e-400", "float64", sdk.Value{}},
		{"5e-324", "float64", sdk.Float(5e-324)},
		{"-0", "float64", sdk.Float(math.Copysign(0, -1))},
		{"75.1", "float32", sdk.Float(float64(float32(75.1)))},
		{"16777216", "float32", sdk.Float(16777216)},
		{"16777217", "float32", sdk.Value{}},
		{"3.4028235e38", "float32", sdk.Float(math.MaxFloat32)},
		{"3.4028236e38", "float32", sdk.Value{}},
		{"1e39", "float32", sdk.Value{}},
		{"1e-46", "float32", sdk.Value{}},
		{"22.001081466674805", "float32", sdk.Float(float64(float32(22.001081)))},
		{"1e309", "float64", sdk.Value{}},
		// Bools take exactly 0 or 1.
		{"1.0", "bool", sdk.Bool(true)},
		{"1e0", "bool", sdk.Bool(true)},
		{"-0", "bool", sdk.Bool(false)},
		{"1.0000000000000000001", "bool", sdk.Value{}},
		{"-1", "bool", sdk.Value{}},
		// Strings are strings.
		{"1", "string", sdk.Value{}},
		{`"1"`, "string", sdk.String("1")},
	} {
		got, err := Convert(json.RawMessage(tc.raw), schema(tc.typ))
		if !tc.want.IsValid() {
			if err == nil {
				t.Errorf("%s as %s: accepted as %#v, want refused", tc.raw, tc.typ, got)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("%s as %s: %#v %v, want %#v", tc.raw, tc.typ, got, err, tc.want)
		}
	}
}

// TestConvertBoundsExact: min and max are compared with the number as
// written, not with its float64 rounding.
func TestConvertBoundsExact(t *testing.T) {
	s := schema("int64")
	s.Max = fp(9007199254740992)
	s.Min = fp(-9007199254740992)
	for raw, ok := range map[string]bool{"9007199254740992": true, "9007199254740993": false,
		"-9007199254740993": false, "-9007199254740992.0": true} {
		if _, err := Convert(json.RawMessage(raw), s); (err == nil) != ok {
			t.Errorf("%s within ±2^53: err %v, want ok=%v", raw, err, ok)
		}
	}
	u := schema("uint64")
	u.Max = fp(math.Inf(1))
	if _, err := Convert(json.RawMessage("18446744073709551615"), u); err != nil {
		t.Errorf("max +Inf: %v", err)
	}
	f := schema("float64")
	f.Max = fp(0.1)
	if _, err := Convert(json.RawMessage("0.1"), f); err != nil {
		t.Errorf("0.1 with max 0.1: %v", err)
	}
}

// TestConvertErrorsClipped: an error quotes at most 64 characters of the
// rejected value (SPEC 5), whatever its size or kind.
func TestConvertErrorsClipped(t *testing.T) {
	long := strings.Repeat("9", 1<<17) // twice the default max_command_size
	for _, tc := range []struct{ raw, typ string }{
		{long, "uint64"}, {long, "float64"}, {"0." + long, "int16"}, {"-" + long, "bool"},
		{`"` + strings.Repeat(`é\"\\\n`, 1<<15) + `"`, "float32"}, // a valid JSON string with escapes
		{`"` + strings.Repeat("x", 1<<17) + `"`, "int32"},
	} {
		_, err := Convert(json.RawMessage(tc.raw), schema(tc.typ))
		if err == nil {
			t.Fatalf("%.20s... as %s accepted", tc.raw, tc.typ)
		}
		// The message around the value is short; the value at most 64.
		if n := utf8.RuneCountInString(err.Error()); n > 64+80 || !strings.Contains(err.Error(), "...") {
			t.Errorf("%.20s... as %s: error of %d characters, want the value clipped: %.200s", tc.raw, tc.typ, n, err)
		}
	}
	if got := quoteClip(strings.Repeat("é\"", 100)); utf8.RuneCountInString(got) > 64 || !strings.HasSuffix(got, `..."`) {
		t.Errorf("quoteClip: %s", got)
	}
	if got := quoteClip("a\"b"); got != `"a\"b"` {
		t.Errorf("quoteClip short: %s", got)
	}
}

func TestParseDecimal(t *testing.T) {
	for s, want := range map[string]decimal{
		"0": {}, "-0.000": {neg: true}, "120": {digits: "12", exp: 1}, "0.0120": {digits: "12", exp: -3},
		"1.5e3": {digits: "15", exp: 2}, "-7E-2": {neg: true, digits: "7", exp: -2},
	} {
		if got, ok := parseDecimal(s); !ok || got != want {
			t.Errorf("%s: %+v %v, want %+v", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "-", ".", "1e", "1e+", "1x", "e5", "--1"} {
		if _, ok := parseDecimal(s); ok {
			t.Errorf("%q parsed", s)
		}
	}
}
