package serial

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/edgepipe/edgepipe/plugins/inputs/internal/numcodec"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// valueType is how a point's value is read: from text matched by a
// pattern (float64 int64 bool string) or from bytes of a binary frame
// (the Modbus types, plus the 8-bit ones serial devices often use).
type valueType uint8

const (
	tBool valueType = iota
	tInt8
	tUint8
	tInt16
	tUint16
	tInt32
	tUint32
	tInt64
	tUint64
	tFloat32
	tFloat64
	tString
)

var typeNames = [...]string{"bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string"}

func (t valueType) String() string { return typeNames[t] }

func parseType(s string) (valueType, bool) {
	for i, n := range typeNames {
		if strings.EqualFold(s, n) {
			return valueType(i), true
		}
	}
	return 0, false
}

// textType: the types a pattern's text converts to.
func (t valueType) textType() bool {
	return t == tFloat64 || t == tInt64 || t == tBool || t == tString
}

// size is the bytes a binary value occupies (0 for string: no binary form).
func (t valueType) size() int {
	switch t {
	case tBool, tInt8, tUint8:
		return 1
	case tInt16, tUint16:
		return 2
	case tInt32, tUint32, tFloat32:
		return 4
	case tInt64, tUint64, tFloat64:
		return 8
	}
	return 0
}

func (t valueType) signed() bool { return t == tInt8 || t == tInt16 || t == tInt32 || t == tInt64 }
func (t valueType) float() bool  { return t == tFloat32 || t == tFloat64 }

// kind is the sdk.Value kind of an unscaled value of the type.
func (t valueType) kind() sdk.Kind {
	switch {
	case t == tBool:
		return sdk.KindBool
	case t == tString:
		return sdk.KindString
	case t.float():
		return sdk.KindFloat
	case t.signed():
		return sdk.KindInt
	}
	return sdk.KindUint
}

// byteOrder and its helpers are shared with the Modbus input.
type byteOrder = numcodec.ByteOrder

const (
	orderABCD = numcodec.ABCD
	orderCDAB = numcodec.CDAB
	orderBADC = numcodec.BADC
	orderDCBA = numcodec.DCBA
)

var (
	parseOrder = numcodec.ParseByteOrder
	reorder    = numcodec.Reorder
	widen32    = numcodec.Widen32
	toBool     = numcodec.ToBool
)

// point is a checked point.
type point struct {
	name     string
	typ      valueType
	re       *regexp.Regexp // text points
	group    int            // index of the "value" group in re
	pos      int            // binary points: byte index in the frame; -1 for text and write-only points
	order    byteOrder
	scale    float64
	offset   float64
	scaled   bool
	unit     string
	access   sdk.Access
	min, max *float64
	write    []tmplPart // nil unless the point accepts writes
}

// kind is the sdk.Value kind the point reports: a scaled number is a float.
func (p *point) kind() sdk.Kind {
	if p.scaled {
		return sdk.KindFloat
	}
	return p.typ.kind()
}

var (
	errNoMatch  = errors.New("no match")
	errTooShort = errors.New("frame too short for the point")
)

// decode takes the point's value from a frame's payload (check bytes
// removed). errNoMatch: the frame is not this point's; errTooShort: the
// frame ends before the point's bytes; any other error: the text matched
// but does not convert. It never panics, whatever the bytes.
func (p *point) decode(payload []byte) (sdk.Value, error) {
	if p.re != nil {
		m := p.re.FindSubmatchIndex(payload)
		if m == nil || m[2*p.group] < 0 {
			return sdk.Value{}, errNoMatch
		}
		return p.fromText(string(payload[m[2*p.group]:m[2*p.group+1]]))
	}
	n := p.typ.size()
	if p.pos < 0 || p.pos+n > len(payload) {
		return sdk.Value{}, errTooShort
	}
	return p.scale1(p.fromBytes(payload[p.pos : p.pos+n])), nil
}

func (p *point) fromText(s string) (sdk.Value, error) {
	s = strings.TrimSpace(s)
	switch p.typ {
	case tString:
		return sdk.String(s), nil
	case tBool:
		switch strings.ToLower(s) {
		case "1", "true", "on", "yes":
			return sdk.Bool(true), nil
		case "0", "false", "off", "no":
			return sdk.Bool(false), nil
		}
		return sdk.Value{}, fmt.Errorf("%q is not a bool (1/0, true/false, on/off, yes/no)", s)
	case tInt64:
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return sdk.Value{}, fmt.Errorf("%q is not an int64", s)
		}
		return p.scale1(sdk.Int(i)), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return sdk.Value{}, fmt.Errorf("%q is not a number", s)
	}
	return p.scale1(sdk.Float(f)), nil
}

// fromBytes reads a binary value; b holds exactly typ.size() bytes.
func (p *point) fromBytes(b []byte) sdk.Value {
	var be [8]byte
	n := len(b)
	reorder(be[:n], b, p.order)
	var u uint64
	for _, c := range be[:n] {
		u = u<<8 | uint64(c)
	}
	switch p.typ {
	case tBool:
		return sdk.Bool(u != 0)
	case tFloat32:
		return sdk.Float(widen32(math.Float32frombits(uint32(u))))
	case tFloat64:
		return sdk.Float(math.Float64frombits(u))
	}
	if p.typ.signed() {
		shift := 64 - 8*n // sign-extend
		return sdk.Int(int64(u<<shift) >> shift)
	}
	return sdk.Uint(u)
}

func (p *point) scale1(v sdk.Value) sdk.Value {
	if !p.scaled {
		return v
	}
	f, _ := v.AsFloat()
	return sdk.Float(f*p.scale + p.offset)
}

// tmplPart is a piece of a write template: literal bytes or a placeholder.
type tmplPart struct {
	lit []byte
	ph  placeholder
}

type placeholder uint8

const (
	phNone     placeholder = iota
	phValue                // ${value}: the device value as decimal text
	phRaw                  // ${raw}: the device value in the point's binary type and byte order
	phChecksum             // ${checksum}: the check bytes of everything rendered before it
)

var placeholderRE = regexp.MustCompile(`\$\{([^}]*)\}`)

// parseTemplate unescapes a write or request template and splits it at
// its placeholders.
func parseTemplate(s string, allowValue bool) ([]tmplPart, error) {
	var parts []tmplPart
	rest := s
	for {
		loc := placeholderRE.FindStringSubmatchIndex(rest)
		end := len(rest)
		if loc != nil {
			end = loc[0]
		}
		if end > 0 {
			lit, err := unescape(rest[:end])
			if err != nil {
				return nil, err
			}
			parts = append(parts, tmplPart{lit: lit})
		}
		if loc == nil {
			return parts, nil
		}
		name := rest[loc[2]:loc[3]]
		switch {
		case name == "checksum":
			parts = append(parts, tmplPart{ph: phChecksum})
		case (name == "value" || name == "raw") && allowValue:
			ph := phValue
			if name == "raw" {
				ph = phRaw
			}
			parts = append(parts, tmplPart{ph: ph})
		case name == "value" || name == "raw":
			return nil, fmt.Errorf("${%s} has no value to take here (only ${checksum})", name)
		default:
			return nil, fmt.Errorf("unknown placeholder ${%s}: want ${value}, ${raw} or ${checksum}", name)
		}
		rest = rest[loc[1]:]
	}
}

// render builds the bytes of a template; v is the value written (ignored
// by templates without ${value} and ${raw}).
func render(parts []tmplPart, p *point, v sdk.Value, ck checksum) ([]byte, error) {
	var out []byte
	for _, part := range parts {
		switch part.ph {
		case phNone:
			out = append(out, part.lit...)
		case phChecksum:
			out = ck.appendSum(out, out)
		case phValue:
			s, err := p.text(v)
			if err != nil {
				return nil, err
			}
			out = append(out, s...)
		case phRaw:
			b, err := p.bytes(v)
			if err != nil {
				return nil, err
			}
			out = append(out, b...)
		}
	}
	return out, nil
}

// text formats the device value of v (scale and offset undone) as the
// device reads it: shortest decimal for floats, an integer for integer
// types, 1/0 for bools, strings as they are.
func (p *point) text(v sdk.Value) (string, error) {
	switch p.typ {
	case tString:
		if v.Kind() != sdk.KindString {
			return "", fmt.Errorf("want a string, got %s", v.Kind())
		}
		return v.StringValue(), nil
	case tBool:
		b, err := toBool(v)
		if err != nil {
			return "", err
		}
		if b {
			return "1", nil
		}
		return "0", nil
	}
	if p.typ.float() {
		f, ok := v.AsFloat()
		if !ok {
			return "", fmt.Errorf("want a number, got %s", v.Kind())
		}
		return strconv.FormatFloat(p.raw(f), 'f', -1, 64), nil
	}
	u, err := p.toInteger(v)
	if err != nil {
		return "", err
	}
	if p.typ.signed() {
		return strconv.FormatInt(int64(u), 10), nil
	}
	return strconv.FormatUint(u, 10), nil
}

// bytes encodes the device value of v in the point's binary type and
// byte order, refusing values the type cannot hold.
func (p *point) bytes(v sdk.Value) ([]byte, error) {
	if p.typ == tString {
		if v.Kind() != sdk.KindString {
			return nil, fmt.Errorf("want a string, got %s", v.Kind())
		}
		return []byte(v.StringValue()), nil
	}
	n := p.typ.size()
	var u uint64
	switch {
	case p.typ == tBool:
		b, err := toBool(v)
		if err != nil {
			return nil, err
		}
		if b {
			u = 1
		}
	case p.typ.float():
		f, ok := v.AsFloat()
		if !ok {
			return nil, fmt.Errorf("want a number, got %s", v.Kind())
		}
		f = p.raw(f)
		if p.typ == tFloat32 {
			if !math.IsInf(f, 0) && f == f && math.Abs(f) > math.MaxFloat32 {
				return nil, fmt.Errorf("%g is out of the float32 range", f)
			}
			u = uint64(math.Float32bits(float32(f)))
		} else {
			u = math.Float64bits(f)
		}
	default:
		var err error
		if u, err = p.toInteger(v); err != nil {
			return nil, err
		}
	}
	var be [8]byte
	binary.BigEndian.PutUint64(be[:], u)
	out := make([]byte, n)
	reorder(out, be[8-n:], p.order)
	return out, nil
}

// raw undoes scale and offset.
func (p *point) raw(f float64) float64 { return p.scaling().Raw(f) }

func (p *point) scaling() numcodec.Scaling {
	if !p.scaled {
		return numcodec.Scaling{Scale: 1}
	}
	return numcodec.Scaling{Scale: p.scale, Offset: p.offset}
}

// toInteger gives the two's complement bits of the device value of v for
// an integer type (see numcodec.ToInteger).
func (p *point) toInteger(v sdk.Value) (uint64, error) {
	return numcodec.ToInteger(v, 8*p.typ.size(), p.typ.signed(), p.typ.String(), p.scaling())
}
