package sdk

import (
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// Kind says which Go type a Value holds. Kinds are deliberately few: every
// device type maps onto one of them, so processors and the wire format only
// have five cases to handle.
type Kind uint8

const (
	KindNone Kind = iota // no value (a point with quality bad may carry none)
	KindBool
	KindInt    // signed integers up to 64 bits
	KindUint   // unsigned integers up to 64 bits
	KindFloat  // float32 and float64, and any scaled value
	KindString // text
)

var kindNames = [...]string{"none", "bool", "int", "uint", "float", "string"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is a typed point value held without boxing: a Point slice stays one
// allocation however many points it holds, which is what keeps the pipeline
// near a million points per second.
type Value struct {
	kind Kind
	bits uint64 // bool (0/1), int64, uint64 or float64 bits
	str  string
}

// Bool, Int, Uint, Float and String build values.
func Bool(b bool) Value {
	if b {
		return Value{kind: KindBool, bits: 1}
	}
	return Value{kind: KindBool}
}
func Int(i int64) Value     { return Value{kind: KindInt, bits: uint64(i)} }
func Uint(u uint64) Value   { return Value{kind: KindUint, bits: u} }
func Float(f float64) Value { return Value{kind: KindFloat, bits: math.Float64bits(f)} }
func String(s string) Value { return Value{kind: KindString, str: s} }

// FromBits rebuilds a value from its wire form (see Value.Bits).
func FromBits(k Kind, bits uint64, s string) Value {
	if k == KindString {
		return Value{kind: k, str: s}
	}
	if k > KindString {
		return Value{}
	}
	return Value{kind: k, bits: bits}
}

// Kind of the value; KindNone for the zero Value.
func (v Value) Kind() Kind { return v.kind }

// Bits is the raw 64-bit payload of a non-string value (the wire form).
func (v Value) Bits() uint64 { return v.bits }

// IsValid reports whether the value holds anything.
func (v Value) IsValid() bool { return v.kind != KindNone }

// BoolValue, IntValue, UintValue, FloatValue and StringValue return the value
// as stored; they do not convert (use AsFloat for arithmetic).
func (v Value) BoolValue() bool     { return v.bits != 0 }
func (v Value) IntValue() int64     { return int64(v.bits) }
func (v Value) UintValue() uint64   { return v.bits }
func (v Value) FloatValue() float64 { return math.Float64frombits(v.bits) }
func (v Value) StringValue() string { return v.str }

// AsFloat converts numeric and bool values to float64 for comparisons
// (deadbands, alarm thresholds). ok is false for strings and no value.
func (v Value) AsFloat() (f float64, ok bool) {
	switch v.kind {
	case KindBool:
		if v.bits != 0 {
			return 1, true
		}
		return 0, true
	case KindInt:
		return float64(int64(v.bits)), true
	case KindUint:
		return float64(v.bits), true
	case KindFloat:
		return math.Float64frombits(v.bits), true
	}
	return 0, false
}

// Interface returns the value as a plain Go value (bool, int64, uint64,
// float64, string or nil), for expression engines and tests.
func (v Value) Interface() any {
	switch v.kind {
	case KindBool:
		return v.bits != 0
	case KindInt:
		return int64(v.bits)
	case KindUint:
		return v.bits
	case KindFloat:
		return math.Float64frombits(v.bits)
	case KindString:
		return v.str
	}
	return nil
}

// Equal reports whether two values have the same kind and content. Floats
// compare by bits, so NaN equals NaN: a deadband must not report a NaN
// reading as a change on every poll.
func (v Value) Equal(o Value) bool {
	return v.kind == o.kind && v.bits == o.bits && v.str == o.str
}

// String formats the value as text, as a template interpolates it.
func (v Value) String() string {
	return string(v.AppendText(nil))
}

// AppendText appends the value as text (no quotes for strings).
func (v Value) AppendText(dst []byte) []byte {
	switch v.kind {
	case KindBool:
		return strconv.AppendBool(dst, v.bits != 0)
	case KindInt:
		return strconv.AppendInt(dst, int64(v.bits), 10)
	case KindUint:
		return strconv.AppendUint(dst, v.bits, 10)
	case KindFloat:
		return strconv.AppendFloat(dst, math.Float64frombits(v.bits), 'g', -1, 64)
	case KindString:
		return append(dst, v.str...)
	}
	return dst
}

// AppendJSON appends the value as a JSON value. JSON has no NaN or
// infinities; they are written as null so the document stays valid.
func (v Value) AppendJSON(dst []byte) []byte {
	switch v.kind {
	case KindBool, KindInt, KindUint:
		return v.AppendText(dst)
	case KindFloat:
		f := math.Float64frombits(v.bits)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return append(dst, "null"...)
		}
		return strconv.AppendFloat(dst, f, 'g', -1, 64)
	case KindString:
		return AppendJSONString(dst, v.str)
	}
	return append(dst, "null"...)
}

// GoString helps test failure messages.
func (v Value) GoString() string { return fmt.Sprintf("%s(%s)", v.kind, v.String()) }

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a quoted JSON string. Invalid UTF-8 is
// replaced by U+FFFD so that the output is always valid JSON.
func AppendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x80 {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\ufffd"...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
