package numcodec

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

func TestReorderIsItsOwnInverse(t *testing.T) {
	src := []byte{0xA, 0xB, 0xC, 0xD, 0xE, 0xF, 0x1, 0x2}
	want := map[ByteOrder][]byte{
		ABCD: {0xA, 0xB, 0xC, 0xD, 0xE, 0xF, 0x1, 0x2},
		CDAB: {0x1, 0x2, 0xE, 0xF, 0xC, 0xD, 0xA, 0xB},
		BADC: {0xB, 0xA, 0xD, 0xC, 0xF, 0xE, 0x2, 0x1},
		DCBA: {0x2, 0x1, 0xF, 0xE, 0xD, 0xC, 0xB, 0xA},
	}
	for o, w := range want {
		got, back := make([]byte, len(src)), make([]byte, len(src))
		Reorder(got, src, o)
		Reorder(back, got, o)
		if !bytes.Equal(got, w) || !bytes.Equal(back, src) {
			t.Errorf("%s: % x, back % x", o, got, back)
		}
		if p, ok := ParseByteOrder(strings.ToLower(o.String())); !ok || p != o {
			t.Errorf("parse %s", o)
		}
	}
}

func TestToInteger(t *testing.T) {
	tenth := Scaling{Scale: 0.1}
	for _, tc := range []struct {
		v      sdk.Value
		bits   int
		signed bool
		s      Scaling
		want   uint64
		err    string
	}{
		{sdk.Int(-1), 16, true, Scaling{Scale: 1}, math.MaxUint64, ""},
		{sdk.Int(32768), 16, true, Scaling{Scale: 1}, 0, "out of the t range"},
		{sdk.Uint(math.MaxUint64), 64, false, Scaling{Scale: 1}, math.MaxUint64, ""},
		{sdk.Uint(1 << 63), 64, true, Scaling{Scale: 1}, 0, "out of the t range"},
		{sdk.Float(1.5), 16, false, Scaling{Scale: 1}, 0, "not an integer"},
		{sdk.Float(75.5), 16, false, tenth, 755, ""},
		{sdk.Float(7000), 16, false, tenth, 0, "gives device value 70000"},
		{sdk.Float(math.NaN()), 16, false, Scaling{Scale: 1}, 0, "cannot be stored"},
		{sdk.String("x"), 16, false, Scaling{Scale: 1}, 0, "want a number"},
		{sdk.Bool(true), 8, false, Scaling{Scale: 1}, 1, ""},
	} {
		got, err := ToInteger(tc.v, tc.bits, tc.signed, "t", tc.s)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%#v: %v, want %q", tc.v, err, tc.err)
			}
		} else if err != nil || got != tc.want {
			t.Errorf("%#v: %d %v, want %d", tc.v, got, err, tc.want)
		}
	}
}

func TestWiden32(t *testing.T) {
	if got := Widen32(22.1); got != 22.1 {
		t.Fatalf("Widen32(22.1) = %v", got)
	}
	if !math.IsNaN(Widen32(float32(math.NaN()))) {
		t.Fatal("NaN lost")
	}
}
