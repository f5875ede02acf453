package command

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

func fp(x float64) *float64 { return &x }

func TestConvert(t *testing.T) {
	i16 := sdk.PointSchema{Type: "int16", Kind: sdk.KindInt}
	u16 := sdk.PointSchema{Type: "uint16", Kind: sdk.KindUint}
	fl := sdk.PointSchema{Type: "float32", Kind: sdk.KindFloat, Min: fp(0), Max: fp(120)}
	bl := sdk.PointSchema{Type: "bool", Kind: sdk.KindBool}
	st := sdk.PointSchema{Type: "string", Kind: sdk.KindString}
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
		{"18446744073709551615", sdk.PointSchema{Type: "uint64", Kind: sdk.KindUint}, sdk.Uint(18446744073709551615), ""},
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
