package s7

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/edgepipe/edgepipe/plugins/inputs/internal/numcodec"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// dataType is an S7 elementary type.
type dataType uint8

const (
	tBool dataType = iota
	tByte
	tWord
	tDword
	tInt
	tDint
	tReal
	tLreal
	tString
)

var typeNames = [...]string{"bool", "byte", "word", "dword", "int", "dint", "real", "lreal", "string"}

// coreNames are the same types in the point registry's vocabulary, so that
// the core range-checks writes (an S7 INT is an int16).
var coreNames = [...]string{"bool", "uint8", "uint16", "uint32", "int16", "int32", "float32", "float64", "string"}

func (t dataType) String() string { return typeNames[t] }

func parseType(s string) (dataType, bool) {
	for i, n := range typeNames {
		if strings.EqualFold(s, n) {
			return dataType(i), true
		}
	}
	return 0, false
}

// size is the bytes a value occupies (a bool: its byte); strings have a
// 2-byte header (max length, current length) and their max length.
func (t dataType) size(strLen int) int {
	switch t {
	case tBool, tByte:
		return 1
	case tWord, tInt:
		return 2
	case tDword, tDint, tReal:
		return 4
	case tLreal:
		return 8
	}
	return 2 + strLen
}

func (t dataType) kind() sdk.Kind {
	switch t {
	case tBool:
		return sdk.KindBool
	case tByte, tWord, tDword:
		return sdk.KindUint
	case tInt, tDint:
		return sdk.KindInt
	case tString:
		return sdk.KindString
	}
	return sdk.KindFloat
}

// codec turns a point's bytes into its value and back.
type codec struct {
	typ     dataType
	bit     int // bool: the bit in its byte
	strLen  int // string: the declared max length, STRING[strLen]
	scaling numcodec.Scaling
}

func (c *codec) size() int { return c.typ.size(c.strLen) }

func (c *codec) kind() sdk.Kind {
	if c.scaling.Scaled() {
		return sdk.KindFloat
	}
	return c.typ.kind()
}

// decode reads a value from its bytes (big-endian, as S7 stores them).
// It never panics: short input is an error.
func (c *codec) decode(b []byte) (sdk.Value, error) {
	if len(b) < c.size() {
		return sdk.Value{}, fmt.Errorf("%d bytes for a %s of %d", len(b), c.typ, c.size())
	}
	var v sdk.Value
	switch c.typ {
	case tBool:
		return sdk.Bool(b[0]&(1<<c.bit) != 0), nil
	case tString:
		// The header says how long the string is; believe it only within
		// the declared length and the bytes read.
		n := min(int(b[1]), int(b[0]), c.strLen)
		return sdk.String(latin1(b[2 : 2+n])), nil
	case tByte:
		v = sdk.Uint(uint64(b[0]))
	case tWord:
		v = sdk.Uint(uint64(binary.BigEndian.Uint16(b)))
	case tDword:
		v = sdk.Uint(uint64(binary.BigEndian.Uint32(b)))
	case tInt:
		v = sdk.Int(int64(int16(binary.BigEndian.Uint16(b))))
	case tDint:
		v = sdk.Int(int64(int32(binary.BigEndian.Uint32(b))))
	case tReal:
		v = sdk.Float(numcodec.Widen32(math.Float32frombits(binary.BigEndian.Uint32(b))))
	case tLreal:
		v = sdk.Float(math.Float64frombits(binary.BigEndian.Uint64(b)))
	}
	if c.scaling.Scaled() {
		f, _ := v.AsFloat()
		return sdk.Float(f*c.scaling.Scale + c.scaling.Offset), nil
	}
	return v, nil
}

// latin1 turns S7 characters (one byte each, ISO 8859-1) into UTF-8.
func latin1(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for _, c := range b {
		sb.WriteRune(rune(c))
	}
	return sb.String()
}

// encode gives the bytes to write for v: the whole value, or for a bool
// the single byte 0 or 1 of a bit write, or for a string its current
// length and characters (written after the max-length byte, which stays
// the PLC's). Values the type cannot hold are refused.
func (c *codec) encode(v sdk.Value) ([]byte, error) {
	switch c.typ {
	case tBool:
		b, err := numcodec.ToBool(v)
		if err != nil {
			return nil, err
		}
		if b {
			return []byte{1}, nil
		}
		return []byte{0}, nil
	case tString:
		if v.Kind() != sdk.KindString {
			return nil, fmt.Errorf("want a string, got %s", v.Kind())
		}
		s := v.StringValue()
		out := make([]byte, 1, 1+len(s))
		for _, r := range s {
			if r > 0xFF || r == utf8.RuneError {
				return nil, fmt.Errorf("character %q has no S7 (ISO 8859-1) code", r)
			}
			out = append(out, byte(r))
		}
		if len(out)-1 > c.strLen {
			return nil, fmt.Errorf("string of %d characters does not fit STRING[%d]", len(out)-1, c.strLen)
		}
		out[0] = byte(len(out) - 1)
		return out, nil
	case tReal, tLreal:
		if v.Kind() == sdk.KindString || v.Kind() == sdk.KindBool || !v.IsValid() {
			return nil, fmt.Errorf("want a number, got %s", v.Kind())
		}
		f, _ := v.AsFloat()
		f = c.scaling.Raw(f)
		if c.typ == tLreal {
			return binary.BigEndian.AppendUint64(nil, math.Float64bits(f)), nil
		}
		if !math.IsInf(f, 0) && !math.IsNaN(f) && math.Abs(f) > math.MaxFloat32 {
			return nil, fmt.Errorf("%g is out of the real (float32) range", f)
		}
		return binary.BigEndian.AppendUint32(nil, math.Float32bits(float32(f))), nil
	}
	if v.Kind() == sdk.KindString || !v.IsValid() {
		return nil, fmt.Errorf("want a number, got %s", v.Kind())
	}
	n := c.size()
	u, err := numcodec.ToInteger(v, 8*n, c.typ == tInt || c.typ == tDint, c.typ.String(), c.scaling)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 8)
	binary.BigEndian.PutUint64(out, u)
	return out[8-n:], nil
}
