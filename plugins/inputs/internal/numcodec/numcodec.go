// Package numcodec holds what the inputs that read binary device values
// (Modbus registers, serial frames) share: the SPEC's byte orders, the
// float32 widening, half floats, packed BCD, and the checked conversion of
// a written value back to a device integer. One implementation, so that both inputs agree to the
// bit on what "CDAB" or "out of range" means.
package numcodec

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/x448/float16"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// ByteOrder names how the bytes A B C D (A most significant) of a value
// lie on the wire, two bytes per register (SPEC section 3).
type ByteOrder uint8

const (
	ABCD ByteOrder = iota // big-endian
	CDAB                  // registers reversed, each big-endian
	BADC                  // big-endian registers, bytes of each swapped
	DCBA                  // little-endian
)

var orderNames = [...]string{"ABCD", "CDAB", "BADC", "DCBA"}

func (o ByteOrder) String() string {
	if int(o) < len(orderNames) {
		return orderNames[o]
	}
	return "order(" + strconv.Itoa(int(o)) + ")"
}

// ParseByteOrder reads "ABCD", "cdab", ...
func ParseByteOrder(s string) (ByteOrder, bool) {
	for i, n := range orderNames {
		if strings.EqualFold(s, n) {
			return ByteOrder(i), true
		}
	}
	return 0, false
}

// Reorder copies src to dst converting between the wire layout and
// big-endian. Each order is its own inverse, so the same call decodes and
// encodes. len(dst) == len(src); an odd last byte stays in place.
func Reorder(dst, src []byte, o ByteOrder) {
	n := len(src)
	switch o {
	case DCBA:
		for i := range n {
			dst[i] = src[n-1-i]
		}
	case BADC:
		copy(dst, src)
		for i := 0; i+1 < n; i += 2 {
			dst[i], dst[i+1] = src[i+1], src[i]
		}
	case CDAB:
		copy(dst, src)
		for i := 0; i+1 < n; i += 2 {
			dst[i], dst[i+1] = src[n-2-i], src[n-1-i]
		}
	default:
		copy(dst, src)
	}
}

// Widen32 turns a float32 into the float64 with the same shortest decimal
// form: a device's 22.001081 is reported as 22.001081, not as the
// 22.001081466674805 a plain conversion exposes.
func Widen32(f float32) float64 {
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) || f == 0 {
		return float64(f)
	}
	var buf [32]byte
	d, err := strconv.ParseFloat(string(strconv.AppendFloat(buf[:0], float64(f), 'g', -1, 32)), 64)
	if err != nil {
		return float64(f)
	}
	return d
}

// ToBool accepts a bool, or a number that is exactly 0 or 1.
func ToBool(v sdk.Value) (bool, error) {
	if v.Kind() == sdk.KindBool {
		return v.BoolValue(), nil
	}
	if f, ok := v.AsFloat(); ok && (f == 0 || f == 1) {
		return f == 1, nil
	}
	return false, fmt.Errorf("want true, false, 0 or 1, got %s", v.String())
}

// Scaling is a point's reported = device * Scale + Offset.
type Scaling struct {
	Scale, Offset float64
}

// Scaled reports whether the point reports a scaled float.
func (s Scaling) Scaled() bool { return s.Scale != 1 || s.Offset != 0 }

// Raw undoes the scaling: the device value of a reported value.
func (s Scaling) Raw(f float64) float64 {
	if !s.Scaled() {
		return f
	}
	return (f - s.Offset) / s.Scale
}

// ToInteger gives the two's complement bits of the device value of v for
// an integer type of the given width, 1 to 64 bits (typ names it in
// errors), refusing fractions and values out of the type's range.
//
// Unscaled integers are taken exactly and checked against the range in
// integer arithmetic, never through a float64, so a uint64 beyond 2^53
// keeps its low bits and 2^64 or -2^63-1 can never wrap into range. An
// unscaled float must be integral and is converted exactly.
//
// A scaled point (scale != 1 or offset != 0) reports a float, and its
// device value is (v - offset) / scale in float64, rounded to the nearest
// integer (halves away from zero): exact while the device value is within
// ±2^53, the nearest float64 beyond. The range check is exact either way.
func ToInteger(v sdk.Value, bits int, signed bool, typ string, s Scaling) (uint64, error) {
	if bits < 1 || bits > 64 {
		return 0, fmt.Errorf("type %s: no integer of %d bits", typ, bits)
	}
	// The range [lo, hi] as integers: lo as int64 (0 unsigned), hi as uint64.
	var lo int64
	hi := uint64(math.MaxUint64) >> (64 - bits)
	if signed {
		lo, hi = -1<<(bits-1), hi>>1
	}
	return toRange(v, lo, hi, signed, typ, s)
}

// toRange is ToInteger for the range lo..hi (lo <= 0 <= hi; lo = 0 for an
// unsigned type).
func toRange(v sdk.Value, lo int64, hi uint64, signed bool, typ string, s Scaling) (uint64, error) {
	outOfRange := func(x any) error {
		if signed {
			return fmt.Errorf("%v is out of the %s range (%d to %d)", x, typ, lo, hi)
		}
		return fmt.Errorf("%v is out of the %s range (0 to %d)", x, typ, hi)
	}
	scaled := s.Scaled()
	if !scaled {
		switch v.Kind() {
		case sdk.KindInt:
			i := v.IntValue()
			if i < lo || i >= 0 && uint64(i) > hi {
				return 0, outOfRange(i)
			}
			return uint64(i), nil
		case sdk.KindUint:
			u := v.UintValue()
			if u > hi {
				return 0, outOfRange(u)
			}
			return u, nil
		case sdk.KindBool:
			if v.BoolValue() {
				return 1, nil
			}
			return 0, nil
		}
	}
	f, ok := v.AsFloat()
	if !ok {
		return 0, fmt.Errorf("want a number, got %s", v.Kind())
	}
	raw := s.Raw(f)
	if math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 0, fmt.Errorf("%g cannot be stored in a %s", raw, typ)
	}
	r := math.Round(raw)
	if !scaled && r != raw {
		return 0, fmt.Errorf("%g is not an integer (type %s)", f, typ)
	}
	bad := func() error {
		if scaled {
			return fmt.Errorf("%g gives device value %g, %w", f, r, outOfRange("it"))
		}
		return outOfRange(strconv.FormatFloat(f, 'g', -1, 64))
	}
	// r is integral; -2^63 and 2^64 are exact float64s, so the conversions
	// below are exact and the comparisons are integer comparisons.
	if r < 0 {
		if r < -(1 << 63) {
			return 0, bad()
		}
		i := int64(r)
		if i < lo {
			return 0, bad()
		}
		return uint64(i), nil
	}
	if r >= 1<<64 {
		return 0, bad()
	}
	u := uint64(r)
	if u > hi {
		return 0, bad()
	}
	return u, nil
}

// CheckScaling validates a point's scale, offset, min and max as both
// inputs accept them, reporting problems through bad(key, format, args),
// and returns the scale to use (1 when none or a bad one was given).
// numeric is false for bool and string points, typ names the type.
func CheckScaling(scale *float64, offset float64, min, max *float64, numeric bool, typ string,
	bad func(key, format string, args ...any)) float64 {
	s := 1.0
	if scale != nil {
		s = *scale
		if s == 0 || math.IsNaN(s) || math.IsInf(s, 0) {
			bad("scale", "%g: want a finite number other than 0", s)
			s = 1
		}
	}
	if (s != 1 || offset != 0) && !numeric {
		bad("scale", "scale and offset apply to numbers, not %s", typ)
	}
	if (min != nil || max != nil) && !numeric {
		bad("min", "min and max apply to numbers, not %s", typ)
	}
	if min != nil && max != nil && *min > *max {
		bad("min", "min %g is above max %g", *min, *max)
	}
	return s
}

// Float16 is an IEEE 754 half-precision value (binary16) as its bits:
// 1 sign, 5 exponent and 10 fraction bits, largest finite 65504.
//
// Decoding widens to float64 with the shortest decimal form that reads
// back as the same half (0x2E66 is reported as 0.1, not 0.0999755859375),
// as Widen32 does for float32; integers are reported exactly. Encoding rounds to the nearest half, ties to
// even, in one step from float64 (going through float32 first could round
// twice).

// maxFloat16 is the largest finite half.
const maxFloat16 = 65504

// Widen16 turns the bits of a half into the float64 with its shortest
// decimal form.
func Widen16(bits uint16) float64 {
	f := float64(float16.Frombits(bits).Float32())
	// An integer is reported as it is: from 2048 on every half is one, and
	// its shortest form would lose digits (65504 is 6.55e4).
	if math.IsNaN(f) || math.IsInf(f, 0) || f == math.Trunc(f) {
		return f
	}
	// A half needs at most 5 significant digits to be told apart.
	for p := 1; p <= 5; p++ {
		d, err := strconv.ParseFloat(strconv.FormatFloat(f, 'g', p, 64), 64)
		if err == nil && nearestFloat16(d) == bits {
			return d
		}
	}
	return f
}

// nearestFloat16 rounds f to the nearest half, ties to even: ±Inf beyond
// the largest finite half's rounding range, NaN kept as a quiet NaN.
func nearestFloat16(f float64) uint16 {
	if math.IsNaN(f) || math.IsInf(f, 0) || f == 0 {
		return float16.Fromfloat32(float32(f)).Bits()
	}
	// The spacing of halves at f's magnitude: 2^(e-10) for a normal half
	// of exponent e, 2^-24 below the normal range. Dividing by a power of
	// two is exact, so the rounding below is the only one.
	_, exp := math.Frexp(f) // |f| = frac * 2^exp, frac in [0.5, 1)
	e := max(exp-1, -14)
	quantum := math.Ldexp(1, e-10)
	r := math.RoundToEven(f/quantum) * quantum
	if math.Abs(r) > maxFloat16 {
		return float16.Inf(int(math.Copysign(1, f))).Bits()
	}
	// r is a half exactly, so converting through float32 is exact.
	return float16.Fromfloat32(float32(r)).Bits()
}

// ToFloat16 gives the half bits for the device value f. A value beyond
// the half range is refused; so is, when exact is set (an unscaled point:
// the value written is the value the server asked for), a value that is
// neither a half nor the shortest decimal form of one (0.1 is taken as
// 0x2E66, 0.1001 is refused). NaN and infinities are kept.
func ToFloat16(f float64, exact bool) (uint16, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nearestFloat16(f), nil
	}
	h := nearestFloat16(f)
	if float16.Frombits(h).IsInf(0) {
		return 0, fmt.Errorf("%g is out of the float16 range (±%d)", f, maxFloat16)
	}
	if exact {
		back := float64(float16.Frombits(h).Float32())
		if back != f && Widen16(h) != f {
			return 0, fmt.Errorf("%g does not fit float16: it would be written as %g", f, Widen16(h))
		}
	}
	return h, nil
}

// BCD is packed binary-coded decimal: one decimal digit per 4 bits, the
// most significant digit first (0x1234 is 1234).

// FromBCD decodes the low 4*digits bits of bits, refusing a nibble above 9
// (a value that is not BCD, not one to report as a number).
func FromBCD(bits uint64, digits int) (uint64, error) {
	var n uint64
	for i := digits - 1; i >= 0; i-- {
		d := bits >> (4 * i) & 0xF
		if d > 9 {
			return 0, fmt.Errorf("%#0*x is not BCD: digit %d is %#x", digits+2, bits, digits-i, d)
		}
		n = n*10 + d
	}
	return n, nil
}

// ToBCD gives the packed BCD of the device value of v for digits digits
// (4 for one register, 8 for two), refusing what ToInteger refuses and
// values beyond 10^digits - 1. typ names the type in errors.
func ToBCD(v sdk.Value, digits int, typ string, s Scaling) (uint64, error) {
	hi := uint64(1)
	for range digits {
		hi *= 10
	}
	n, err := toRange(v, 0, hi-1, false, typ, s)
	if err != nil {
		return 0, err
	}
	var bits uint64
	for i := 0; n > 0; i++ {
		bits |= (n % 10) << (4 * i)
		n /= 10
	}
	return bits, nil
}
