package numcodec

import (
	"math"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// half computes a half's value from its bits by the IEEE 754 formula, not
// with the library the code uses.
func half(bits uint16) float64 {
	sign := 1.0
	if bits&0x8000 != 0 {
		sign = -1
	}
	e, m := int(bits>>10&0x1F), float64(bits&0x3FF)
	switch e {
	case 0:
		return sign * m * math.Ldexp(1, -24)
	case 31:
		if m == 0 {
			return sign * math.Inf(1)
		}
		return math.NaN()
	}
	return sign * (1 + m/1024) * math.Ldexp(1, e-15)
}

// TestFloat16EveryHalf: every finite half decodes to its value's shortest
// form, and that form (and the exact value) encodes back to the same bits.
func TestFloat16EveryHalf(t *testing.T) {
	for b := 0; b < 1<<16; b++ {
		bits := uint16(b)
		exact := half(bits)
		if math.IsNaN(exact) {
			if !math.IsNaN(Widen16(bits)) {
				t.Fatalf("%#04x: NaN decoded as %v", bits, Widen16(bits))
			}
			continue
		}
		w := Widen16(bits)
		if math.IsInf(exact, 0) {
			if w != exact {
				t.Fatalf("%#04x: %v decoded as %v", bits, exact, w)
			}
			continue
		}
		for _, f := range []float64{exact, w} {
			got, err := ToFloat16(f, true)
			if err != nil || got != bits && !(exact == 0 && got&0x7FFF == 0) {
				t.Fatalf("%#04x (%v): %v encodes as %#04x, %v", bits, exact, f, got, err)
			}
		}
		if len(strings.TrimLeft(strings.ReplaceAll(strings.Split(formatG(w), "e")[0], ".", ""), "-0")) > 5 {
			t.Fatalf("%#04x: %v is not the shortest form", bits, w)
		}
	}
}

func formatG(f float64) string { return strings.TrimSpace(strings.ToLower(sdk.Float(f).String())) }

// TestFloat16Rounding: halfway between two halves rounds to the even one,
// anything past halfway to the nearer, in one rounding from float64.
func TestFloat16Rounding(t *testing.T) {
	for b := uint16(0); b < 0x7BFF; b++ {
		lo, hi := half(b), half(b+1)
		mid := (lo + hi) / 2
		even := b
		if b&1 == 1 {
			even = b + 1
		}
		if got := nearestFloat16(mid); got != even {
			t.Fatalf("midpoint of %#04x and %#04x rounds to %#04x", b, b+1, got)
		}
		if got := nearestFloat16(math.Nextafter(mid, hi)); got != b+1 {
			t.Fatalf("just above the midpoint of %#04x, %#04x: %#04x", b, b+1, got)
		}
		if got := nearestFloat16(-math.Nextafter(mid, lo)); got != b|0x8000 {
			t.Fatalf("just below minus the midpoint of %#04x, %#04x: %#04x", b, b+1, got)
		}
	}
	// Through float32 first, 1 + 2^-11 + 2^-40 would become the tie
	// 1 + 2^-11 and round down to 1.
	if got := nearestFloat16(1 + math.Ldexp(1, -11) + math.Ldexp(1, -40)); got != 0x3C01 {
		t.Errorf("double rounding: %#04x", got)
	}
}

func TestToFloat16(t *testing.T) {
	for _, c := range []struct {
		f     float64
		exact bool
		want  uint16
		err   string
	}{
		{0.1, true, 0x2E66, ""},
		{-2, true, 0xC000, ""},
		{65504, true, 0x7BFF, ""},
		{65500, true, 0, "would be written as 65504"}, // integers are exact
		{65519, false, 0x7BFF, ""},
		{2049, true, 0, "would be written as 2048"},
		{0.5, true, 0x3800, ""},
		{65520, false, 0, "out of the float16 range"},
		{-1e6, false, 0, "out of the float16 range"},
		{0.1001, true, 0x2E68, ""}, // 0.10009765625
		{0.10005, true, 0, "would be written as 0.10004"},
		{6e-8, true, 0x0001, ""},
		{1e-9, true, 0, "would be written as 0"},
		{1e-9, false, 0x0000, ""},
		{math.Inf(-1), true, 0xFC00, ""},
	} {
		got, err := ToFloat16(c.f, c.exact)
		if c.err == "" && (err != nil || got != c.want) || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("ToFloat16(%v, %v) = %#04x, %v; want %#04x %q", c.f, c.exact, got, err, c.want, c.err)
		}
	}
	if w := Widen16(0x2E66); w != 0.1 {
		t.Errorf("0x2E66 decodes as %v", w)
	}
}

func TestBCD(t *testing.T) {
	if n, err := FromBCD(0x1234, 4); err != nil || n != 1234 {
		t.Errorf("0x1234: %d %v", n, err)
	}
	if n, err := FromBCD(0x99999999, 8); err != nil || n != 99999999 {
		t.Errorf("0x99999999: %d %v", n, err)
	}
	if _, err := FromBCD(0x12A4, 4); err == nil || !strings.Contains(err.Error(), "not BCD") {
		t.Errorf("0x12A4: %v", err)
	}
	one := Scaling{Scale: 1}
	for _, c := range []struct {
		v      sdk.Value
		digits int
		s      Scaling
		want   uint64
		err    string
	}{
		{sdk.Uint(1234), 4, one, 0x1234, ""},
		{sdk.Int(9999), 4, one, 0x9999, ""},
		{sdk.Float(12345678), 8, one, 0x12345678, ""},
		{sdk.Uint(0), 4, one, 0, ""},
		{sdk.Uint(10000), 4, one, 0, "out of the bcd16 range (0 to 9999)"},
		{sdk.Int(-1), 4, one, 0, "out of the bcd16 range"},
		{sdk.Float(1.5), 4, one, 0, "not an integer"},
		{sdk.Float(12.34), 4, Scaling{Scale: 0.01}, 0x1234, ""},
	} {
		got, err := ToBCD(c.v, c.digits, map[int]string{4: "bcd16", 8: "bcd32"}[c.digits], c.s)
		if c.err == "" && (err != nil || got != c.want) || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("ToBCD(%v, %d) = %#x, %v; want %#x %q", c.v, c.digits, got, err, c.want, c.err)
		}
	}
}
