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

// TestToInteger64: the range of every width is checked in integer
// arithmetic, so nothing beyond a 64-bit type wraps into it and the edges
// themselves are taken exactly.
func TestToInteger64(t *testing.T) {
	one := Scaling{Scale: 1}
	const bad = uint64(0xBAD)
	for _, tc := range []struct {
		v      sdk.Value
		bits   int
		signed bool
		s      Scaling
		want   uint64 // bad: refused
	}{
		{sdk.Uint(math.MaxUint64), 64, false, one, math.MaxUint64},
		{sdk.Uint(math.MaxInt64), 64, true, one, math.MaxInt64},
		{sdk.Uint(math.MaxInt64 + 1), 64, true, one, bad},
		{sdk.Int(math.MinInt64), 64, true, one, 1 << 63},
		{sdk.Int(math.MinInt64), 64, false, one, bad},
		{sdk.Int(-1), 64, false, one, bad},
		{sdk.Int(math.MaxInt64), 64, false, one, math.MaxInt64},
		{sdk.Uint(9007199254740993), 64, false, one, 9007199254740993},
		{sdk.Int(-9007199254740993), 64, true, one, uint64(1<<64 - 9007199254740993)},
		{sdk.Int(1 << 31), 32, true, one, bad},
		{sdk.Int(-1 << 31), 32, true, one, uint64(1<<64 - 1<<31)},
		{sdk.Uint(1 << 32), 32, false, one, bad},
		{sdk.Uint(1<<32 - 1), 32, false, one, 1<<32 - 1},
		{sdk.Int(-32769), 16, true, one, bad},
		{sdk.Uint(65536), 16, false, one, bad},
		// Unscaled floats: integral and in range, converted exactly.
		{sdk.Float(1 << 64), 64, false, one, bad},
		{sdk.Float(1 << 63), 64, true, one, bad},
		{sdk.Float(1 << 63), 64, false, one, 1 << 63},
		{sdk.Float(-(1 << 63)), 64, true, one, 1 << 63},
		{sdk.Float(math.Nextafter(-(1 << 63), math.Inf(-1))), 64, true, one, bad},
		{sdk.Float(math.Nextafter(1<<64, 0)), 64, false, one, 1<<64 - 2048},
		{sdk.Float(-1e300), 64, true, one, bad},
		{sdk.Float(1e300), 64, false, one, bad},
		{sdk.Float(math.Copysign(0, -1)), 64, false, one, 0},
		// Scaled: the device value rounded, its range exact.
		{sdk.Float(1.8446744073709552e18), 64, false, Scaling{Scale: 0.1}, bad},
		{sdk.Float(9.2e17), 64, true, Scaling{Scale: 0.1}, 9200000000000000000},
		{sdk.Float(-9.3e17), 64, true, Scaling{Scale: 0.1}, bad},
		{sdk.Float(100), 64, false, Scaling{Scale: 1, Offset: 101}, bad},
		// Widths outside 1..64 are refused rather than shifted.
		{sdk.Uint(1), 0, false, one, bad},
		{sdk.Uint(1), 65, false, one, bad},
	} {
		got, err := ToInteger(tc.v, tc.bits, tc.signed, "t", tc.s)
		if tc.want == bad {
			if err == nil {
				t.Errorf("%#v as %d bits (signed %v): accepted as %d", tc.v, tc.bits, tc.signed, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%#v as %d bits (signed %v): %d %v, want %d", tc.v, tc.bits, tc.signed, got, err, tc.want)
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
