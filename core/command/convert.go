package command

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// Convert turns a JSON value into the point's kind, refusing anything that
// would lose information (1.5 into an integer, 70000 into an int16, "x"
// into a number, 9007199254740993 into a float64) and values outside the
// point's min/max.
//
// Numbers are taken from the JSON text exactly, never through a float64:
// the literal is taken apart into its decimal digits and exponent
// (see decimal), integers are checked against their type's range in
// integer arithmetic (math/big), so 18446744073709551616 is refused for a
// uint64 and 9007199254740993.0 is written to an int64 as ...993.
//
// A float point accepts a number when the value of its type that the
// number rounds to is the number itself, or prints as the number (its
// shortest decimal form, which is what the gateway reports when it reads
// the point back): 75.1 is accepted for a float32, 16777217 is not (it
// would be written as 16777216), nor is 1e39 (beyond float32) or 1e-400
// (it would be written as 0). min and max are compared with the number as
// written, exactly.
//
// Integer type widths come from s.Type (int8 ... uint64); an unknown Type
// means the full 64 bits of the kind. A scaled point reports a float, so
// it is checked here as a float64; the input undoes scale and offset and
// rounds to the device type (see numcodec.ToInteger).
func Convert(raw json.RawMessage, s sdk.PointSchema) (sdk.Value, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return sdk.Value{}, fmt.Errorf("value is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return sdk.Value{}, fmt.Errorf("value is not one JSON value")
	}
	if b, ok := v.(bool); ok && (s.Kind == sdk.KindInt || s.Kind == sdk.KindUint) {
		v = json.Number(map[bool]string{false: "0", true: "1"}[b])
	}
	var out sdk.Value
	var err error
	switch s.Kind {
	case sdk.KindBool:
		switch x := v.(type) {
		case bool:
			out = sdk.Bool(x)
		case json.Number:
			d, ok := parseDecimal(string(x))
			switch {
			case ok && d.zero():
				out = sdk.Bool(false)
			case ok && !d.neg && d.digits == "1" && d.exp == 0:
				out = sdk.Bool(true)
			default:
				return out, fmt.Errorf("want true, false, 0 or 1 for a bool point, got %s", clip(string(x)))
			}
		default:
			return out, fmt.Errorf("want a boolean, got %s", describe(v))
		}
		return out, nil
	case sdk.KindInt, sdk.KindUint:
		x, ok := v.(json.Number)
		if !ok {
			return out, fmt.Errorf("want an integer, got %s", describe(v))
		}
		out, err = toInteger(string(x), s)
	case sdk.KindFloat:
		x, ok := v.(json.Number)
		if !ok {
			return out, fmt.Errorf("want a number, got %s", describe(v))
		}
		out, err = toFloat(string(x), s)
	case sdk.KindString:
		x, ok := v.(string)
		if !ok {
			return out, fmt.Errorf("want a string, got %s", describe(v))
		}
		return sdk.String(x), nil
	default:
		return out, fmt.Errorf("point has no writable type")
	}
	if err != nil {
		return sdk.Value{}, err
	}
	if err := checkBounds(string(v.(json.Number)), s); err != nil {
		return sdk.Value{}, err
	}
	return out, nil
}

// toInteger converts the literal x exactly to the integer type of s.
func toInteger(x string, s sdk.PointSchema) (sdk.Value, error) {
	d, ok := parseDecimal(x)
	if !ok {
		return sdk.Value{}, fmt.Errorf("%s is not a number", clip(x))
	}
	typ := typeName(s)
	if d.exp < 0 {
		return sdk.Value{}, fmt.Errorf("%s does not fit %s: not an integer", clip(x), typ)
	}
	lo, hi := intRange(s.Type, s.Kind)
	// More than 20 digits is beyond every 64-bit type; the check keeps a
	// literal such as 1e1000000 from being expanded.
	if d.intDigits() > 20 {
		return sdk.Value{}, fmt.Errorf("%s does not fit %s: out of range %s to %s", clip(x), typ, lo, hi)
	}
	n := d.bigInt()
	if n.Cmp(lo) < 0 || n.Cmp(hi) > 0 {
		return sdk.Value{}, fmt.Errorf("%s does not fit %s: out of range %s to %s", clip(x), typ, lo, hi)
	}
	if s.Kind == sdk.KindUint {
		return sdk.Uint(n.Uint64()), nil
	}
	return sdk.Int(n.Int64()), nil
}

// toFloat converts the literal x to the float type of s, refusing what
// the type does not represent (see Convert).
func toFloat(x string, s sdk.PointSchema) (sdk.Value, error) {
	d, ok := parseDecimal(x)
	if !ok {
		return sdk.Value{}, fmt.Errorf("%s is not a number", clip(x))
	}
	bits, typ := 64, "float64"
	if s.Type == "float32" {
		bits, typ = 32, "float32"
	}
	if d.zero() {
		if d.neg {
			return sdk.Float(math.Copysign(0, -1)), nil
		}
		return sdk.Float(0), nil
	}
	// Bounds that need no arithmetic: beyond 1e310 nothing is finite,
	// below 1e-330 everything rounds to 0, and a value with more than
	// 800 significant digits is none of a float's (at most 767) nor its
	// shortest form. They also keep the formatting below cheap.
	switch e := d.intDigits(); {
	case e > 310:
		return sdk.Value{}, fmt.Errorf("%s does not fit %s: out of range", clip(x), typ)
	case e < -330:
		return sdk.Value{}, fmt.Errorf("%s does not fit %s: it would be written as 0", clip(x), typ)
	case len(d.digits) > 800:
		return sdk.Value{}, fmt.Errorf("%s does not fit %s: more digits than it holds", clip(x), typ)
	}
	f, err := strconv.ParseFloat(x, bits)
	if err != nil && !math.IsInf(f, 0) && f != 0 {
		return sdk.Value{}, fmt.Errorf("%s is not a number", clip(x))
	}
	if math.IsInf(f, 0) {
		return sdk.Value{}, fmt.Errorf("%s does not fit %s: out of range", clip(x), typ)
	}
	if !representsFloat(d, f, bits) {
		return sdk.Value{}, fmt.Errorf("%s does not fit %s: it would be written as %s", clip(x), typ,
			strconv.FormatFloat(f, 'g', -1, bits))
	}
	return sdk.Float(f), nil
}

// representsFloat reports whether the decimal d is the float f of the
// given width: its shortest form (for a float32 also the shortest form of
// its float64 widening) or its exact value.
func representsFloat(d decimal, f float64, bits int) bool {
	if same(d, strconv.FormatFloat(f, 'e', -1, bits)) {
		return true
	}
	if bits == 32 && same(d, strconv.FormatFloat(f, 'e', -1, 64)) {
		return true
	}
	// The exact binary value has at most 767 significant digits (float64).
	return same(d, strconv.FormatFloat(f, 'e', 800, 64))
}

func same(d decimal, text string) bool {
	e, ok := parseDecimal(text)
	return ok && e == d
}

// checkBounds compares the literal x exactly with the point's min and max
// (NaN bounds are ignored, as a float comparison would).
func checkBounds(x string, s sdk.PointSchema) error {
	if s.Min == nil && s.Max == nil {
		return nil
	}
	d, ok := parseDecimal(x)
	if !ok {
		return fmt.Errorf("%s is not a number", clip(x))
	}
	r, ok := d.rat()
	if s.Min != nil && !math.IsNaN(*s.Min) {
		if !ok && d.neg || ok && r.Cmp(ratOf(*s.Min)) < 0 {
			return fmt.Errorf("%s is below the minimum %v", clip(x), *s.Min)
		}
	}
	if s.Max != nil && !math.IsNaN(*s.Max) {
		if !ok && !d.neg || ok && r.Cmp(ratOf(*s.Max)) > 0 {
			return fmt.Errorf("%s is above the maximum %v", clip(x), *s.Max)
		}
	}
	return nil
}

// ratOf is f exactly, infinities as numbers beyond every finite literal
// that rat accepts.
func ratOf(f float64) *big.Rat {
	if math.IsInf(f, 0) {
		r := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(400), nil))
		if f < 0 {
			r.Neg(r)
		}
		return r
	}
	return new(big.Rat).SetFloat64(f)
}

// decimal is a JSON number taken apart exactly: its value is
// (-1)^neg × digits × 10^exp, digits without leading or trailing zeros
// ("" for zero, which keeps neg for -0).
type decimal struct {
	neg    bool
	digits string
	exp    int64 // saturated far beyond any range that matters
}

func (d decimal) zero() bool { return d.digits == "" }

// intDigits is the number of digits before the decimal point (0 or less
// for a value below 1): the decimal magnitude.
func (d decimal) intDigits() int64 {
	if d.zero() {
		return 0
	}
	return int64(len(d.digits)) + d.exp
}

// bigInt is the value of an integral decimal of at most a few dozen digits.
func (d decimal) bigInt() *big.Int {
	n, _ := new(big.Int).SetString(d.digits+strings.Repeat("0", int(d.exp)), 10)
	if n == nil {
		n = new(big.Int)
	}
	if d.neg {
		n.Neg(n)
	}
	return n
}

// rat is the exact value when its magnitude is within 10^±400 (every
// finite float64 bound is), ok false beyond.
func (d decimal) rat() (*big.Rat, bool) {
	if d.zero() {
		return new(big.Rat), true
	}
	if m := d.intDigits(); m > 400 || m < -400 || len(d.digits) > 2000 {
		return nil, false
	}
	r, ok := new(big.Rat).SetString(d.digits + "e" + strconv.FormatInt(d.exp, 10))
	if !ok {
		return nil, false
	}
	if d.neg {
		r.Neg(r)
	}
	return r, true
}

// maxExp bounds the exponent while it is read: anything beyond is as good
// as infinite for every type.
const maxExp = 1 << 40

// parseDecimal takes a number literal apart: -?digits[.digits][e[+-]digits]
// (JSON's grammar, also accepting what strconv.FormatFloat writes).
func parseDecimal(s string) (decimal, bool) {
	var d decimal
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		d.neg = s[i] == '-'
		i++
	}
	var mant []byte
	var frac int64
	seen := false
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		mant, seen = append(mant, s[i]), true
	}
	if i < len(s) && s[i] == '.' {
		i++
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			mant, seen = append(mant, s[i]), true
			frac++
		}
	}
	if !seen {
		return decimal{}, false
	}
	var exp int64
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			eneg = s[i] == '-'
			i++
		}
		start := i
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			if exp < maxExp {
				exp = exp*10 + int64(s[i]-'0')
			}
		}
		if i == start {
			return decimal{}, false
		}
		if eneg {
			exp = -exp
		}
	}
	if i != len(s) {
		return decimal{}, false
	}
	// Strip leading zeros, then trailing ones into the exponent.
	k := 0
	for k < len(mant) && mant[k] == '0' {
		k++
	}
	mant = mant[k:]
	trail := 0
	for trail < len(mant) && mant[len(mant)-1-trail] == '0' {
		trail++
	}
	mant = mant[:len(mant)-trail]
	if len(mant) == 0 {
		return decimal{neg: d.neg}, true
	}
	d.digits = string(mant)
	d.exp = exp - frac + int64(trail)
	return d, true
}

func typeName(s sdk.PointSchema) string {
	if s.Type != "" {
		return s.Type
	}
	return s.Kind.String()
}

// Integer ranges, as big.Ints to compare with exactly.
var (
	minInt64  = big.NewInt(math.MinInt64)
	maxInt64  = big.NewInt(math.MaxInt64)
	maxUint64 = new(big.Int).SetUint64(math.MaxUint64)
	intRanges = map[string][2]*big.Int{
		"int8":   {big.NewInt(math.MinInt8), big.NewInt(math.MaxInt8)},
		"uint8":  {big.NewInt(0), big.NewInt(math.MaxUint8)},
		"int16":  {big.NewInt(math.MinInt16), big.NewInt(math.MaxInt16)},
		"uint16": {big.NewInt(0), big.NewInt(math.MaxUint16)},
		"int32":  {big.NewInt(math.MinInt32), big.NewInt(math.MaxInt32)},
		"uint32": {big.NewInt(0), big.NewInt(math.MaxUint32)},
		"int64":  {minInt64, maxInt64},
		"uint64": {big.NewInt(0), maxUint64},
	}
)

// intRange is the inclusive range of an integer type; an unknown type has
// the full 64 bits of its kind. Unsigned types never go below 0 whatever
// the kind says, and a signed kind never beyond int64.
func intRange(typ string, k sdk.Kind) (lo, hi *big.Int) {
	if r, ok := intRanges[typ]; ok {
		lo, hi = r[0], r[1]
	} else if k == sdk.KindUint {
		lo, hi = big.NewInt(0), maxUint64
	} else {
		lo, hi = minInt64, maxInt64
	}
	// The value must also fit the kind it is handed on as.
	if k == sdk.KindInt && hi.Cmp(maxInt64) > 0 {
		hi = maxInt64
	}
	if k == sdk.KindUint && lo.Sign() < 0 {
		lo = big.NewInt(0)
	}
	return lo, hi
}

// clipLen is the most of a rejected value an error quotes (SPEC 5).
const clipLen = 64

// clip shortens text for an error message to at most clipLen characters.
func clip(s string) string {
	if utf8.RuneCountInString(s) <= clipLen {
		return s
	}
	n := 0
	for i := range s {
		if n == clipLen-3 {
			return s[:i] + "..."
		}
		n++
	}
	return s
}

func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return quoteClip(x)
	case json.Number:
		return clip(x.String())
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// quoteClip quotes a string value for an error, at most clipLen
// characters with the quotes: the quoted prefix grows rune by rune, so a
// 10 MB string costs no 10 MB message.
func quoteClip(s string) string {
	if len(s) <= clipLen/2 {
		if q := strconv.Quote(s); len(q) <= clipLen {
			return q
		}
	}
	q := []byte{'"'}
	for _, r := range s {
		next := strconv.AppendQuoteRune(nil, r) // 'x' with its escapes
		next = next[1 : len(next)-1]
		if r == '\'' {
			next = []byte{'\''}
		} else if r == '"' {
			next = []byte{'\\', '"'}
		}
		if len(q)+len(next) > clipLen-4 {
			return string(q) + `..."`
		}
		q = append(q, next...)
	}
	return string(append(q, '"'))
}
