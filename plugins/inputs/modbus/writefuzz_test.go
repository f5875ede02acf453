package modbus

import (
	"encoding/json"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/core/command"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// The write path from the server's JSON to the registers: command.Convert
// (the core's check) then the point's codec (this input's encoding),
// checked against math/big arithmetic.

var (
	bigOne = big.NewInt(1)
	pow2   = func(n uint) *big.Int { return new(big.Int).Lsh(bigOne, n) }
)

// typeRange is the inclusive range of an integer type, from first
// principles (not from the code under test).
func typeRange(t dataType) (lo, hi *big.Int) {
	bits := uint(16 * t.regs())
	switch t {
	case tBCD16:
		return new(big.Int), big.NewInt(9999)
	case tBCD32:
		return new(big.Int), big.NewInt(99999999)
	case tInt8, tUint8:
		bits = 8
	}
	switch t {
	case tInt8, tInt16, tInt32, tInt64:
		return new(big.Int).Neg(pow2(bits - 1)), new(big.Int).Sub(pow2(bits-1), bigOne)
	}
	return new(big.Int), new(big.Int).Sub(pow2(bits), bigOne)
}

// edges are the values a write of type t is most likely to get wrong.
func edges(t dataType) []*big.Int {
	out := []*big.Int{new(big.Int), big.NewInt(1), big.NewInt(-1), pow2(24), pow2(53), new(big.Int).Neg(pow2(53))}
	if t.kind() == sdk.KindInt || t.kind() == sdk.KindUint {
		lo, hi := typeRange(t)
		out = append(out, lo, hi)
	}
	for _, n := range []uint{7, 8, 15, 16, 31, 32, 63, 64} {
		out = append(out, pow2(n), new(big.Int).Neg(pow2(n)))
	}
	return out
}

// number writes n × 10^-shift as JSON in one of several forms: plain,
// with a zero fraction, with a fraction, in exponent notation.
func number(n *big.Int, shift uint8, form uint8, frac uint8) string {
	s := n.String()
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	sign := ""
	if neg {
		sign = "-"
	}
	switch form % 5 {
	case 0:
		return sign + s
	case 1:
		return sign + s + "." + strings.Repeat("0", int(frac%4)+1)
	case 2: // a fraction that is not zero
		return sign + s + "." + strings.Repeat("0", int(frac%20)) + "1"
	case 3: // d.ddd e+k, exact
		if len(s) == 1 {
			return sign + s + "e0"
		}
		return sign + s[:1] + "." + s[1:] + "e" + strconv.Itoa(len(s)-1)
	}
	// shifted: s × 10^-shift written as digits e-shift
	return sign + s + "e-" + strconv.Itoa(int(shift%25))
}

// ratOf parses a JSON number exactly, when its exponent is small enough
// for big.Rat to expand.
func ratOf(s string) (*big.Rat, bool) {
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		if e, err := strconv.Atoi(s[i+1:]); err != nil || e > 1000 || e < -1000 {
			return nil, false
		}
	}
	return new(big.Rat).SetString(s)
}

// halfValue is the value of the half with the given bits (sign clear,
// finite), by the IEEE 754 formula.
func halfValue(bits uint16) *big.Rat {
	e, m := int64(bits>>10&0x1F), int64(bits&0x3FF)
	if e == 0 {
		return new(big.Rat).SetFrac(big.NewInt(m), pow2(24))
	}
	v := new(big.Rat).SetFrac(big.NewInt(1024+m), pow2(10))
	if e >= 15 {
		return v.Mul(v, new(big.Rat).SetInt(pow2(uint(e-15))))
	}
	return v.Quo(v, new(big.Rat).SetInt(pow2(uint(15-e))))
}

// nearestHalf rounds |r| to the nearest finite half (ties to even bits) by
// search over every half, or reports that it overflows (65520 and up).
func nearestHalf(r *big.Rat) (uint16, bool) {
	a := new(big.Rat).Abs(r)
	if a.Cmp(big.NewRat(65520, 1)) >= 0 {
		return 0, false
	}
	// Halves 0..0x7BFF grow with their bits: the last one <= a.
	lo := uint16(sort.Search(0x7C00, func(i int) bool { return halfValue(uint16(i)).Cmp(a) > 0 }) - 1)
	if lo == 0x7BFF {
		return lo, true
	}
	below := new(big.Rat).Sub(a, halfValue(lo))
	above := new(big.Rat).Sub(halfValue(lo+1), a)
	switch below.Cmp(above) {
	case -1:
		return lo, true
	case 1:
		return lo + 1, true
	}
	if lo&1 == 0 {
		return lo, true
	}
	return lo + 1, true
}

// halfShown is what a half reads back as: an integer exactly, otherwise
// the shortest decimal (at most 5 digits) that rounds to it.
func halfShown(bits uint16) *big.Rat {
	v := halfValue(bits)
	if v.IsInt() {
		return v
	}
	f, _ := v.Float64()
	for p := 1; p <= 5; p++ {
		d, _ := new(big.Rat).SetString(strconv.FormatFloat(f, 'g', p, 64))
		if h, ok := nearestHalf(d); ok && h == bits {
			return d
		}
	}
	return v
}

// float16Oracle: a float16 write of the float64 f (what Convert makes of
// the text) is accepted when f is a half or how one reads back.
func float16Oracle(f float64) (uint16, bool) {
	r := new(big.Rat).SetFloat64(f)
	h, ok := nearestHalf(r)
	if !ok {
		return 0, false
	}
	a := new(big.Rat).Abs(r)
	shown, _ := halfShown(h).Float64()
	return h, a.Cmp(halfValue(h)) == 0 || math.Abs(f) == shown
}

// oracle says whether a write of text to type t must be accepted, from
// big arithmetic alone.
func oracle(t dataType, text string, r *big.Rat, min, max *float64) bool {
	if min != nil && r.Cmp(new(big.Rat).SetFloat64(*min)) < 0 || max != nil && r.Cmp(new(big.Rat).SetFloat64(*max)) > 0 {
		if t != tBool && t != tString {
			return false
		}
	}
	switch t {
	case tString:
		return false
	case tBool:
		return r.Sign() == 0 || r.Cmp(big.NewRat(1, 1)) == 0
	case tFloat32, tFloat64, tFloat16:
		bits := 64
		if t == tFloat32 {
			bits = 32
		}
		f, _ := strconv.ParseFloat(jsonTrim(text), bits)
		if math.IsInf(f, 0) {
			return false
		}
		ok := new(big.Rat).SetFloat64(f).Cmp(r) == 0
		for _, b := range []int{bits, 64} {
			short, _ := new(big.Rat).SetString(strconv.FormatFloat(f, 'g', -1, b))
			ok = ok || short.Cmp(r) == 0
		}
		if t == tFloat16 && ok {
			_, ok = float16Oracle(f)
		}
		return ok
	}
	if !r.IsInt() {
		return false
	}
	lo, hi := typeRange(t)
	return r.Num().Cmp(lo) >= 0 && r.Num().Cmp(hi) <= 0
}

// FuzzWritePath: random JSON numbers at the edges of every type go through
// Convert and the codec. A value is accepted iff math/big says the type
// holds it exactly, in range and within min/max; an accepted value's
// registers decode back to exactly the requested value.
func FuzzWritePath(f *testing.F) {
	f.Add(uint8(tUint64), uint8(13), int64(1), uint8(0), uint8(0), uint8(0), uint8(0), "")
	f.Add(uint8(tInt64), uint8(6), int64(-1), uint8(0), uint8(3), uint8(0), uint8(1), "")
	f.Add(uint8(tInt64), uint8(4), int64(1), uint8(0), uint8(1), uint8(0), uint8(2), "")
	f.Add(uint8(tFloat32), uint8(3), int64(1), uint8(0), uint8(0), uint8(0), uint8(3), "")
	f.Add(uint8(tFloat64), uint8(4), int64(1), uint8(3), uint8(4), uint8(0), uint8(0), "")
	f.Add(uint8(tBool), uint8(1), int64(0), uint8(0), uint8(1), uint8(0), uint8(0), "")
	f.Add(uint8(tInt16), uint8(0), int64(0), uint8(0), uint8(0), uint8(1), uint8(0), "1.8446744073709552e19")
	f.Add(uint8(tFloat32), uint8(0), int64(0), uint8(0), uint8(0), uint8(5), uint8(0), "16777217")
	f.Add(uint8(tString), uint8(0), int64(0), uint8(0), uint8(0), uint8(0), uint8(0), `"abc"`)
	f.Add(uint8(tFloat16), uint8(0), int64(0), uint8(0), uint8(0), uint8(0), uint8(1), "0.1")
	f.Add(uint8(tFloat16), uint8(0), int64(0), uint8(0), uint8(0), uint8(0), uint8(0), "65504")
	f.Add(uint8(tFloat16), uint8(0), int64(0), uint8(0), uint8(0), uint8(0), uint8(0), "65520")
	f.Add(uint8(tFloat16), uint8(0), int64(0), uint8(0), uint8(0), uint8(0), uint8(0), "6e-8")
	f.Add(uint8(tInt8), uint8(7), int64(-1), uint8(0), uint8(0), uint8(0), uint8(4), "")
	f.Add(uint8(tUint8), uint8(8), int64(0), uint8(0), uint8(0), uint8(0), uint8(0), "")
	f.Add(uint8(tBCD16), uint8(0), int64(9999), uint8(0), uint8(0), uint8(0), uint8(2), "")
	f.Add(uint8(tBCD32), uint8(0), int64(0), uint8(0), uint8(0), uint8(0), uint8(1), "99999999")
	f.Fuzz(func(t *testing.T, typ, edge uint8, delta int64, shift, form, bounds, order uint8, text string) {
		dt := dataType(typ % uint8(len(typeNames)))
		if text == "" {
			es := edges(dt)
			n := new(big.Int).Add(es[int(edge)%len(es)], big.NewInt(delta%1000))
			text = number(n, shift, form, bounds)
		}
		var min, max *float64
		switch bounds % 4 {
		case 1:
			lo, hi := -1e4, 1e4
			min, max = &lo, &hi
		case 2:
			hi := 9007199254740992.0
			max = &hi
		case 3:
			lo := 0.5
			min = &lo
		}
		c := codec{area: areaHolding, typ: dt, order: byteOrder(order % 4), bit: -1, length: 4, scale: 1, lowByte: order&4 != 0}
		s := sdk.PointSchema{Device: "d", Name: "p", Type: dt.String(), Kind: c.kind(), Access: sdk.AccessPubSub, Min: min, Max: max}
		v, err := command.Convert(json.RawMessage(text), s)

		var r *big.Rat
		isNum := false
		if len(text) < 400 {
			// A JSON number token (json.Number alone would take "0" too).
			if tr := jsonTrim(text); tr != "" && (tr[0] == '-' || tr[0] >= '0' && tr[0] <= '9') && json.Valid([]byte(text)) {
				r, isNum = ratOf(tr)
			}
		}
		if !isNum {
			// Not a short number: only the kinds are checked.
			if err == nil && v.Kind() != c.kind() {
				t.Fatalf("%.80s: converted to %v for a %v point", text, v.Kind(), c.kind())
			}
			return
		}
		want := oracle(dt, text, r, min, max)
		// Convert checks the types the core knows; the input's own
		// (float16, BCD) are checked by the codec: for those the whole
		// path is judged, for the others Convert alone must be right.
		var wire []byte
		own := dt == tFloat16 || dt == tBCD16 || dt == tBCD32
		if err == nil {
			wire, err = encode(&c, v)
			if err != nil && !own {
				t.Fatalf("%s as %s: accepted by Convert, refused by the codec: %v", text, dt, err)
			}
		}
		if (err == nil) != want {
			t.Fatalf("%s as %s (min %v max %v): accepted=%v (%v), math/big says %v", text, dt, ptr(min), ptr(max), err == nil, err, want)
		}
		if err != nil {
			return
		}
		if dt.byteSized() && wire[1-c.byteIndex()] != otherByte[1-c.byteIndex()] {
			t.Fatalf("%s as %s: the register's other byte changed: % x", text, dt, wire)
		}
		back, err := c.decodeRegisters(wire)
		if err != nil {
			t.Fatalf("%s as %s: registers % x do not decode: %v", text, dt, wire, err)
		}
		switch dt {
		case tBool:
			if back.BoolValue() != (r.Sign() != 0) {
				t.Fatalf("%s as bool: read back %v", text, back)
			}
		case tFloat32:
			want, _ := strconv.ParseFloat(jsonTrim(text), 32)
			if math.Float32bits(float32(back.FloatValue())) != math.Float32bits(float32(want)) {
				t.Fatalf("%s as float32: read back %v, want %v", text, back, want)
			}
		case tFloat64:
			want, _ := strconv.ParseFloat(jsonTrim(text), 64)
			if math.Float64bits(back.FloatValue()) != math.Float64bits(want) {
				t.Fatalf("%s as float64: read back %v, want %v", text, back, want)
			}
		case tFloat16:
			f, _ := strconv.ParseFloat(jsonTrim(text), 64)
			h, _ := float16Oracle(f)
			var be [2]byte
			reorder(be[:], wire, c.order)
			if got := uint16(be[0])<<8 | uint16(be[1]); got&0x7FFF != h || got&0x8000 != 0 && f > 0 {
				t.Fatalf("%s as float16: bits %#04x, want %#04x", text, got, h)
			}
			if shown, _ := halfShown(h).Float64(); math.Abs(back.FloatValue()) != shown {
				t.Fatalf("%s as float16: read back %v, want ±%v", text, back, shown)
			}
		default:
			got := new(big.Int)
			if back.Kind() == sdk.KindInt {
				got.SetInt64(back.IntValue())
			} else {
				got.SetUint64(back.UintValue())
			}
			if new(big.Rat).SetInt(got).Cmp(r) != 0 {
				t.Fatalf("%s as %s: registers % x read back %s", text, dt, wire, got)
			}
		}
	})
}

// otherByte is the register a one-byte write starts from.
var otherByte = []byte{0xA5, 0x5A}

// encode is the write path's encoding: the registers, or for one byte the
// register with that byte set.
func encode(c *codec, v sdk.Value) ([]byte, error) {
	if c.typ.byteSized() {
		wire := append([]byte(nil), otherByte...)
		return wire, c.putByte(wire, v)
	}
	return c.encodeRegisters(v)
}

func ptr(p *float64) any {
	if p == nil {
		return "none"
	}
	return *p
}

// jsonTrim drops JSON's whitespace (not Unicode's: "0\f" is no JSON).
func jsonTrim(s string) string { return strings.Trim(s, " \t\r\n") }
