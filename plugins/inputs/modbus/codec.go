package modbus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/edgepipe/edgepipe/plugins/inputs/internal/numcodec"
	"math"
	"strings"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// area is one of the four Modbus data areas.
type area uint8

const (
	areaCoil area = iota
	areaDiscrete
	areaHolding
	areaInput
)

var areaNames = [...]string{"coil", "discrete", "holding", "input"}

func (a area) String() string { return areaNames[a] }

// bits reports whether the area holds single bits (read 8 to a byte)
// rather than 16-bit registers.
func (a area) bits() bool { return a == areaCoil || a == areaDiscrete }

// writable reports whether the protocol has a write function for the area.
func (a area) writable() bool { return a == areaCoil || a == areaHolding }

func parseArea(s string) (area, bool) {
	for i, n := range areaNames {
		if strings.EqualFold(s, n) {
			return area(i), true
		}
	}
	return 0, false
}

// dataType is how a point's registers are read.
type dataType uint8

const (
	tBool dataType = iota
	tInt16
	tUint16
	tInt32
	tUint32
	tInt64
	tUint64
	tFloat32
	tFloat64
	tString
	tFloat16 // IEEE 754 half
	tInt8    // one byte of a register (codec.lowByte says which)
	tUint8
	tBCD16 // 4 packed BCD digits in one register
	tBCD32 // 8 packed BCD digits in two registers
)

var typeNames = [...]string{"bool", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string",
	"float16", "int8", "uint8", "bcd16", "bcd32"}

// typeList is typeNames for error messages: "bool, int16, ... or bcd32".
func typeList() string {
	n := len(typeNames)
	return strings.Join(typeNames[:n-1], ", ") + " or " + typeNames[n-1]
}

// byteSized tells the types that take one byte of a register.
func (t dataType) byteSized() bool { return t == tInt8 || t == tUint8 }

func (t dataType) String() string { return typeNames[t] }

func parseType(s string) (dataType, bool) {
	for i, n := range typeNames {
		if strings.EqualFold(s, n) {
			return dataType(i), true
		}
	}
	return 0, false
}

// regs is the number of registers a value of the type occupies (strings
// have their own length).
func (t dataType) regs() int {
	switch t {
	case tInt32, tUint32, tFloat32, tBCD32:
		return 2
	case tInt64, tUint64, tFloat64:
		return 4
	}
	return 1
}

// kind is the sdk.Value kind the type reports unscaled.
func (t dataType) kind() sdk.Kind {
	switch t {
	case tBool:
		return sdk.KindBool
	case tInt8, tInt16, tInt32, tInt64:
		return sdk.KindInt
	case tUint8, tUint16, tUint32, tUint64, tBCD16, tBCD32:
		return sdk.KindUint
	case tString:
		return sdk.KindString
	}
	return sdk.KindFloat
}

// byteOrder and its helpers are shared with the serial input.
type byteOrder = numcodec.ByteOrder

const (
	orderABCD = numcodec.ABCD
	orderCDAB = numcodec.CDAB
	orderBADC = numcodec.BADC
	orderDCBA = numcodec.DCBA
)

var (
	parseOrder = numcodec.ParseByteOrder
	widen32    = numcodec.Widen32
	toBool     = numcodec.ToBool
)

// reorder is numcodec.Reorder called directly: through a variable the
// call is indirect, and the buffers given to it move to the heap (one
// allocation per point decoded).
func reorder(dst, src []byte, o byteOrder) { numcodec.Reorder(dst, src, o) }

// codec is everything needed to turn a point's registers into its value
// and back.
// The one-byte fields come first, packed together: the codec is part of
// every configured point.
type codec struct {
	area  area
	typ   dataType
	order byteOrder
	// lowByte: an int8 or uint8 is the register's low byte (the second on
	// the wire), not its high byte. byte_order does not apply to one byte.
	lowByte bool
	scaled  bool // scale != 1 or offset != 0: the point reports a float
	bit     int  // bool in a register: bit 0-15; -1: the whole register != 0
	length  int  // registers a string occupies
	scale   float64
	offset  float64
}

// count is the registers (or bits) the point covers.
func (c *codec) count() int {
	switch {
	case c.area.bits():
		return 1
	case c.typ == tString:
		return c.length
	}
	return c.typ.regs()
}

// kind is the sdk.Value kind the point reports.
func (c *codec) kind() sdk.Kind {
	if c.scaled {
		return sdk.KindFloat
	}
	return c.typ.kind()
}

var errShort = errors.New("response too short for the point")

// decodeRegisters turns the wire bytes of a point's registers (2 per
// register, as received) into its value. It never panics: a short input is
// an error.
func (c *codec) decodeRegisters(wire []byte) (sdk.Value, error) {
	need := 2 * c.count()
	if len(wire) < need {
		return sdk.Value{}, errShort
	}
	wire = wire[:need]
	if c.typ == tBool {
		r := binary.BigEndian.Uint16(wire)
		if c.bit >= 0 && c.bit < 16 {
			return sdk.Bool(r&(1<<c.bit) != 0), nil
		}
		return sdk.Bool(r != 0), nil
	}
	if c.typ == tString {
		return sdk.String(decodeString(wire, c.order)), nil
	}
	var be [8]byte
	reorder(be[:need], wire, c.order)
	var v sdk.Value
	switch c.typ {
	case tInt8, tUint8:
		b := wire[c.byteIndex()]
		if c.typ == tInt8 {
			v = sdk.Int(int64(int8(b)))
		} else {
			v = sdk.Uint(uint64(b))
		}
	case tFloat16:
		v = sdk.Float(numcodec.Widen16(binary.BigEndian.Uint16(be[:])))
	case tBCD16, tBCD32:
		bits, digits := uint64(binary.BigEndian.Uint16(be[:])), 4
		if c.typ == tBCD32 {
			bits, digits = uint64(binary.BigEndian.Uint32(be[:])), 8
		}
		n, err := numcodec.FromBCD(bits, digits)
		if err != nil {
			return sdk.Value{}, err
		}
		v = sdk.Uint(n)
	case tInt16:
		v = sdk.Int(int64(int16(binary.BigEndian.Uint16(be[:]))))
	case tUint16:
		v = sdk.Uint(uint64(binary.BigEndian.Uint16(be[:])))
	case tInt32:
		v = sdk.Int(int64(int32(binary.BigEndian.Uint32(be[:]))))
	case tUint32:
		v = sdk.Uint(uint64(binary.BigEndian.Uint32(be[:])))
	case tInt64:
		v = sdk.Int(int64(binary.BigEndian.Uint64(be[:])))
	case tUint64:
		v = sdk.Uint(binary.BigEndian.Uint64(be[:]))
	case tFloat32:
		v = sdk.Float(widen32(math.Float32frombits(binary.BigEndian.Uint32(be[:]))))
	case tFloat64:
		v = sdk.Float(math.Float64frombits(binary.BigEndian.Uint64(be[:])))
	default:
		return sdk.Value{}, fmt.Errorf("type %d has no register decoding", c.typ)
	}
	if c.scaled {
		f, _ := v.AsFloat()
		return sdk.Float(f*c.scale + c.offset), nil
	}
	return v, nil
}

// byteIndex is where the point's byte lies in its register's two wire
// bytes: 0 for the high byte, 1 for the low.
func (c *codec) byteIndex() int {
	if c.lowByte {
		return 1
	}
	return 0
}

// putByte sets the point's byte (int8, uint8) in wire, the two bytes of
// its register as read, leaving the other byte as it was: a write of one
// byte is a read, this, and a write of the register.
func (c *codec) putByte(wire []byte, v sdk.Value) error {
	if !c.typ.byteSized() || len(wire) < 2 {
		return fmt.Errorf("type %s is not one byte of a register", c.typ)
	}
	if v.Kind() == sdk.KindString || !v.IsValid() {
		return fmt.Errorf("want a number, got %s", v.Kind())
	}
	u, err := c.toInteger(v)
	if err != nil {
		return err
	}
	wire[c.byteIndex()] = byte(u)
	return nil
}

// decodeString reads two bytes per register, high byte first (low byte
// first when the point itself says BADC or DCBA, as some devices store
// text; checkPoint gives a string no other byte order), and trims the
// NULs and spaces that pad the field.
func decodeString(wire []byte, o byteOrder) string {
	b := make([]byte, len(wire))
	copy(b, wire)
	if o == orderBADC || o == orderDCBA {
		for i := 0; i+1 < len(b); i += 2 {
			b[i], b[i+1] = b[i+1], b[i]
		}
	}
	// Text after the first NUL is left-over memory, not part of the value.
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimRight(string(b), " \x00")
}

// raw undoes scale and offset: the device value for a reported value.
func (c *codec) raw(f float64) float64 { return c.scaling().Raw(f) }

func (c *codec) scaling() numcodec.Scaling {
	if !c.scaled {
		return numcodec.Scaling{Scale: 1}
	}
	return numcodec.Scaling{Scale: c.scale, Offset: c.offset}
}

// encodeRegisters turns a value into the wire bytes of the point's
// registers, refusing values the type cannot hold. Bools in a register with
// a bit are not encoded here (they need the register's other bits).
func (c *codec) encodeRegisters(v sdk.Value) ([]byte, error) {
	if c.typ == tString {
		if v.Kind() != sdk.KindString {
			return nil, fmt.Errorf("want a string, got %s", v.Kind())
		}
		s := v.StringValue()
		if len(s) > 2*c.length {
			return nil, fmt.Errorf("string of %d bytes does not fit %d registers (%d bytes)", len(s), c.length, 2*c.length)
		}
		b := make([]byte, 2*c.length)
		copy(b, s)
		if c.order == orderBADC || c.order == orderDCBA {
			for i := 0; i+1 < len(b); i += 2 {
				b[i], b[i+1] = b[i+1], b[i]
			}
		}
		return b, nil
	}
	if c.typ.byteSized() {
		return nil, fmt.Errorf("type %s is one byte of a register: it is written with the register's other byte (putByte)", c.typ)
	}
	if v.Kind() == sdk.KindString || !v.IsValid() {
		return nil, fmt.Errorf("want a number, got %s", v.Kind())
	}
	n := 2 * c.typ.regs()
	var be [8]byte
	switch c.typ {
	case tFloat16:
		f, _ := v.AsFloat()
		// An unscaled half takes only what it represents, as Convert
		// does for float32 (Convert treats an unknown float type as
		// float64); a scaled one reports a computed float and rounds.
		h, err := numcodec.ToFloat16(c.raw(f), !c.scaled)
		if err != nil {
			return nil, err
		}
		binary.BigEndian.PutUint16(be[:], h)
	case tBCD16, tBCD32:
		digits := 4 * c.typ.regs()
		bits, err := numcodec.ToBCD(v, digits, c.typ.String(), c.scaling())
		if err != nil {
			return nil, err
		}
		if c.typ == tBCD16 {
			binary.BigEndian.PutUint16(be[:], uint16(bits))
		} else {
			binary.BigEndian.PutUint32(be[:], uint32(bits))
		}
	case tBool:
		b, err := toBool(v)
		if err != nil {
			return nil, err
		}
		if b {
			be[1] = 1
		}
	case tFloat32, tFloat64:
		f, _ := v.AsFloat()
		f = c.raw(f)
		if c.typ == tFloat32 {
			// Beyond the largest float32 plus half its spacing a value
			// rounds to infinity; short of it, to the largest float32.
			// (-3.4028235e+38, how the largest reads back, is a little
			// beyond math.MaxFloat32 and must be taken.)
			if !math.IsInf(f, 0) && math.Abs(f) >= maxFloat32Rounding {
				return nil, fmt.Errorf("%g is out of the float32 range", f)
			}
			binary.BigEndian.PutUint32(be[:], math.Float32bits(float32(f)))
		} else {
			binary.BigEndian.PutUint64(be[:], math.Float64bits(f))
		}
	default:
		u, err := c.toInteger(v)
		if err != nil {
			return nil, err
		}
		switch n {
		case 2:
			binary.BigEndian.PutUint16(be[:], uint16(u))
		case 4:
			binary.BigEndian.PutUint32(be[:], uint32(u))
		default:
			binary.BigEndian.PutUint64(be[:], u)
		}
	}
	out := make([]byte, n)
	reorder(out, be[:n], c.order)
	return out, nil
}

// maxFloat32Rounding is 2^128 - 2^103, halfway from the largest float32
// to the next power of two: from it on, a float64 rounds to infinity.
var maxFloat32Rounding = math.Ldexp(1, 128) - math.Ldexp(1, 103)

// toInteger converts v (after undoing scale/offset) to the bits of the
// point's integer type, refusing fractions and values out of range.
func (c *codec) toInteger(v sdk.Value) (uint64, error) {
	signed := c.typ == tInt8 || c.typ == tInt16 || c.typ == tInt32 || c.typ == tInt64
	bits := 16 * c.typ.regs()
	if c.typ.byteSized() {
		bits = 8
	}
	return numcodec.ToInteger(v, bits, signed, c.typ.String(), c.scaling())
}
