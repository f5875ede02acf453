package modbussim

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/x448/float16"
)

// Area indexes the four Modbus data areas.
type Area int

const (
	Coil Area = iota
	Discrete
	Holding
	Input
)

var areaNames = [...]string{"coil", "discrete", "holding", "input"}

func (a Area) String() string {
	if a >= 0 && int(a) < len(areaNames) {
		return areaNames[a]
	}
	return fmt.Sprintf("area(%d)", int(a))
}

func (a Area) isBits() bool { return a == Coil || a == Discrete }

// ParseArea reads coil | discrete | holding | input.
func ParseArea(s string) (Area, error) {
	for i, n := range areaNames {
		if strings.EqualFold(s, n) {
			return Area(i), nil
		}
	}
	return 0, fmt.Errorf("area %q: want coil, discrete, holding or input", s)
}

// entry is a compiled RegisterConfig: where it lies, how it is encoded,
// and its generator if any.
type entry struct {
	area   Area
	addr   int
	n      int // registers or bits covered
	typ    string
	order  string
	bit    int
	length int
	gen    string
	min    float64
	max    float64
	period time.Duration
	step   float64
	start  float64  // counter: start value
	seed   uint64   // random: distinguishes generators
	raw    []uint16 // static content (registers) or bits (0/1)
}

var typeRegs = map[string]int{
	"bool": 1, "int16": 1, "uint16": 1, "int32": 2, "uint32": 2,
	"int64": 4, "uint64": 4, "float32": 2, "float64": 4, "string": 0,
	"float16": 1, "bcd16": 1, "bcd32": 2,
}

func compile(rc *RegisterConfig, size int) (*entry, error) {
	area, err := ParseArea(rc.Area)
	if err != nil {
		return nil, err
	}
	e := &entry{area: area, addr: rc.Address, typ: strings.ToLower(rc.Type), order: strings.ToUpper(rc.ByteOrder),
		bit: rc.Bit, length: rc.Length, gen: strings.ToLower(rc.Generator), min: rc.Min, max: rc.Max,
		period: time.Duration(rc.Period), step: rc.Step}
	if e.order == "" {
		e.order = "ABCD"
	}
	switch e.order {
	case "ABCD", "CDAB", "BADC", "DCBA":
	default:
		return nil, fmt.Errorf("byte_order %q: want ABCD, CDAB, BADC or DCBA", rc.ByteOrder)
	}
	if rc.Address < 0 || rc.Address >= size {
		return nil, fmt.Errorf("address %d is outside the unit's 0..%d", rc.Address, size-1)
	}
	if len(rc.Raw) > 0 {
		for _, v := range rc.Raw {
			if v < 0 || v > 0xFFFF || area.isBits() && v > 1 {
				return nil, fmt.Errorf("raw value %d does not fit a %s", v, area)
			}
			e.raw = append(e.raw, uint16(v))
		}
		e.n = len(e.raw)
		e.typ = "raw"
		if rc.Generator != "" || rc.Value != nil {
			return nil, fmt.Errorf("raw takes neither value nor generator")
		}
		if e.addr+e.n > size {
			return nil, fmt.Errorf("raw values run past the unit's last address %d", size-1)
		}
		return e, nil
	}
	if e.typ == "" {
		if area.isBits() {
			e.typ = "bool"
		} else {
			e.typ = "uint16"
		}
	}
	regs, ok := typeRegs[e.typ]
	if !ok {
		return nil, fmt.Errorf("type %q: want bool, int16, uint16, int32, uint32, int64, uint64, float16, float32, float64, bcd16, bcd32 or string", rc.Type)
	}
	if area.isBits() && e.typ != "bool" {
		return nil, fmt.Errorf("a %s holds bool only, not %s", area, e.typ)
	}
	if e.typ == "bool" && (e.bit < 0 || e.bit > 15) {
		return nil, fmt.Errorf("bit %d: want 0..15", e.bit)
	}
	if e.typ == "string" {
		s, _ := rc.Value.(string)
		if rc.Value != nil && !isString(rc.Value) {
			return nil, fmt.Errorf("a string needs a string value, got %T", rc.Value)
		}
		if e.length == 0 {
			e.length = (len(s) + 1) / 2
		}
		if e.length <= 0 {
			return nil, fmt.Errorf("a string needs a length (registers) or a value")
		}
		if len(s) > 2*e.length {
			return nil, fmt.Errorf("string %q does not fit %d registers", s, e.length)
		}
		if e.gen != "" {
			return nil, fmt.Errorf("strings take no generator")
		}
		regs = e.length
	}
	e.n = regs
	if e.addr+e.n > size {
		return nil, fmt.Errorf("%s at %d runs past the unit's last address %d", e.typ, e.addr, size-1)
	}
	switch e.gen {
	case "", "static":
		e.gen = ""
	case "counter":
		if e.step == 0 {
			e.step = 1
		}
		if e.period <= 0 {
			e.period = time.Second
		}
		if rc.Value != nil {
			f, ok := toFloat(rc.Value)
			if !ok {
				return nil, fmt.Errorf("counter start value must be a number, got %T", rc.Value)
			}
			e.start = f
		}
	case "ramp", "sine", "random":
		if e.max < e.min {
			return nil, fmt.Errorf("max %g is below min %g", e.max, e.min)
		}
		if e.period <= 0 {
			if e.gen == "random" {
				e.period = time.Second
			} else {
				e.period = time.Minute
			}
		}
	default:
		return nil, fmt.Errorf("generator %q: want counter, ramp, sine or random", rc.Generator)
	}
	if e.gen == "" {
		if e.typ == "string" {
			s, _ := rc.Value.(string)
			e.raw = encodeString(s, e.length)
			return e, nil
		}
		raw, err := encode(e.typ, e.order, rc.Value)
		if err != nil {
			return nil, err
		}
		e.raw = raw
	}
	return e, nil
}

func isString(v any) bool { _, ok := v.(string); return ok }

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// encode turns a configured value into the registers of typ in the given
// byte order. Bools come out as one element 0/1 (a bit, or the bit value to
// place in a register).
func encode(typ, order string, v any) ([]uint16, error) {
	if v == nil {
		v = int64(0)
	}
	if typ == "bool" {
		switch x := v.(type) {
		case bool:
			if x {
				return []uint16{1}, nil
			}
			return []uint16{0}, nil
		case int64:
			if x == 0 || x == 1 {
				return []uint16{uint16(x)}, nil
			}
		}
		return nil, fmt.Errorf("bool value %v: want true, false, 0 or 1", v)
	}
	var be []byte
	switch typ {
	case "float16", "float32", "float64":
		f, ok := toFloat(v)
		if s, isStr := v.(string); isStr {
			switch strings.ToLower(s) {
			case "nan":
				f, ok = math.NaN(), true
			case "inf", "+inf":
				f, ok = math.Inf(1), true
			case "-inf":
				f, ok = math.Inf(-1), true
			}
		}
		if !ok {
			return nil, fmt.Errorf("%s value %v: want a number, or \"nan\", \"inf\", \"-inf\"", typ, v)
		}
		switch {
		case typ == "float16":
			if !math.IsInf(f, 0) && math.Abs(f) > 65504 {
				return nil, fmt.Errorf("float16 value %v is out of range (±65504)", v)
			}
			be = binary.BigEndian.AppendUint16(nil, float16.Fromfloat32(float32(f)).Bits())
		case typ == "float32":
			be = binary.BigEndian.AppendUint32(nil, math.Float32bits(float32(f)))
		default:
			be = binary.BigEndian.AppendUint64(nil, math.Float64bits(f))
		}
	default:
		var i int64
		switch x := v.(type) {
		case int64:
			i = x
		case float64:
			if x != math.Trunc(x) {
				return nil, fmt.Errorf("%s value %v is not an integer", typ, v)
			}
			i = int64(x)
		case bool:
			if x {
				i = 1
			}
		default:
			return nil, fmt.Errorf("%s value %v: want an integer", typ, v)
		}
		var lo, hi int64
		switch typ {
		case "int16":
			lo, hi = math.MinInt16, math.MaxInt16
		case "uint16":
			lo, hi = 0, math.MaxUint16
		case "int32":
			lo, hi = math.MinInt32, math.MaxInt32
		case "uint32":
			lo, hi = 0, math.MaxUint32
		case "int64":
			lo, hi = math.MinInt64, math.MaxInt64
		case "uint64":
			lo, hi = 0, math.MaxInt64 // larger values: use raw
		case "bcd16":
			lo, hi = 0, 9999
		case "bcd32":
			lo, hi = 0, 99999999
		}
		if i < lo || i > hi {
			return nil, fmt.Errorf("%s value %d is out of range", typ, i)
		}
		if typ == "bcd16" || typ == "bcd32" {
			// Packed BCD: one decimal digit per 4 bits.
			var bcd uint64
			for d := 0; i > 0; d++ {
				bcd |= uint64(i%10) << (4 * d)
				i /= 10
			}
			i = int64(bcd)
		}
		switch typ {
		case "int16", "uint16", "bcd16":
			be = binary.BigEndian.AppendUint16(nil, uint16(i))
		case "int32", "uint32", "bcd32":
			be = binary.BigEndian.AppendUint32(nil, uint32(i))
		default:
			be = binary.BigEndian.AppendUint64(nil, uint64(i))
		}
	}
	return toWire(be, order), nil
}

// toWire places the bytes of a big-endian value into registers following
// the byte order: ABCD as is, DCBA all bytes reversed, BADC the two bytes of
// every register swapped, CDAB the registers reversed.
func toWire(be []byte, order string) []uint16 {
	n := len(be)
	w := make([]byte, n)
	for i := range w {
		switch order {
		case "DCBA":
			w[i] = be[n-1-i]
		case "BADC":
			w[i] = be[i^1]
		case "CDAB":
			reg, half := i/2, i%2
			w[i] = be[n-2-2*reg+half]
		default:
			w[i] = be[i]
		}
	}
	regs := make([]uint16, n/2)
	for i := range regs {
		regs[i] = uint16(w[2*i])<<8 | uint16(w[2*i+1])
	}
	return regs
}

// encodeString packs s two bytes per register, high byte first, padded
// with NULs.
func encodeString(s string, length int) []uint16 {
	regs := make([]uint16, length)
	for i := 0; i < len(s) && i < 2*length; i++ {
		if i%2 == 0 {
			regs[i/2] |= uint16(s[i]) << 8
		} else {
			regs[i/2] |= uint16(s[i])
		}
	}
	return regs
}

// value computes a generator's value at elapsed time t since start.
func (e *entry) value(t time.Duration) float64 {
	steps := float64(t / e.period)
	frac := float64(t%e.period) / float64(e.period)
	switch e.gen {
	case "counter":
		return e.start + e.step*steps
	case "ramp":
		return e.min + (e.max-e.min)*frac
	case "sine":
		mid, amp := (e.min+e.max)/2, (e.max-e.min)/2
		return mid + amp*math.Sin(2*math.Pi*(float64(t)/float64(e.period)))
	case "random":
		u := float64(mix(e.seed^uint64(t/e.period))>>11) / (1 << 53)
		return e.min + (e.max-e.min)*u
	}
	return 0
}

// mix is splitmix64's finaliser: a cheap, stateless hash so that a random
// generator holds one value for a whole period whoever reads it.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// generated returns the generator's current content: registers in wire
// form, or one 0/1 element for bools.
func (e *entry) generated(t time.Duration) []uint16 {
	v := e.value(t)
	if e.typ == "bool" {
		mid := (e.min + e.max) / 2
		on := v > mid
		if e.gen == "counter" {
			on = int64(math.Round(v))%2 != 0
		}
		if on {
			return []uint16{1}
		}
		return []uint16{0}
	}
	var val any = v
	switch e.typ {
	case "float16", "float32", "float64":
	default:
		r := math.Round(v)
		lo, hi := intRange(e.typ)
		r = math.Max(lo, math.Min(hi, r))
		if e.gen == "counter" {
			// A counter wraps like a device counter does rather than stick at its top.
			span := hi - lo + 1
			r = lo + math.Mod(math.Mod(math.Round(v)-lo, span)+span, span)
		}
		val = int64(r)
	}
	regs, err := encode(e.typ, e.order, val)
	if err != nil {
		return make([]uint16, e.n)
	}
	return regs
}

func intRange(typ string) (float64, float64) {
	switch typ {
	case "int16":
		return math.MinInt16, math.MaxInt16
	case "uint16":
		return 0, math.MaxUint16
	case "int32":
		return math.MinInt32, math.MaxInt32
	case "uint32":
		return 0, math.MaxUint32
	case "int64":
		return math.MinInt64, math.MaxInt64
	case "bcd16":
		return 0, 9999
	case "bcd32":
		return 0, 99999999
	}
	return 0, math.MaxInt64
}
