// Package command checks values written by the server against a point's
// schema (Convert). The commands themselves are parsed once, by the output
// that received them, with package fbox (plugins/sdk/fbox). Values come
// from outside, so every function here returns an error for bad input and
// never panics (see the fuzz tests).
package command

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// Convert turns a JSON value into the point's kind, refusing anything that
// would lose information (1.5 into an integer, 70000 into an int16, "x"
// into a number) and values outside the point's min/max.
func Convert(raw json.RawMessage, s sdk.PointSchema) (sdk.Value, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return sdk.Value{}, fmt.Errorf("value is not valid JSON")
	}
	var out sdk.Value
	switch s.Kind {
	case sdk.KindBool:
		switch x := v.(type) {
		case bool:
			out = sdk.Bool(x)
		case json.Number:
			switch x.String() {
			case "0":
				out = sdk.Bool(false)
			case "1":
				out = sdk.Bool(true)
			default:
				return out, fmt.Errorf("want true, false, 0 or 1 for a bool point, got %s", x)
			}
		default:
			return out, fmt.Errorf("want a boolean, got %s", describe(v))
		}
	case sdk.KindInt, sdk.KindUint:
		x, ok := v.(json.Number)
		if !ok {
			if b, isBool := v.(bool); isBool {
				x = json.Number(map[bool]string{false: "0", true: "1"}[b])
			} else {
				return out, fmt.Errorf("want an integer, got %s", describe(v))
			}
		}
		lo, hi := intRange(s.Type, s.Kind)
		if s.Kind == sdk.KindUint {
			u, err := strconv.ParseUint(x.String(), 10, 64)
			if err != nil {
				f, ferr := strconv.ParseFloat(x.String(), 64)
				if ferr != nil || f != math.Trunc(f) || f < 0 || f > math.MaxUint64 {
					return out, fmt.Errorf("%s does not fit %s", x, typeName(s))
				}
				u = uint64(f)
			}
			if float64(u) > hi {
				return out, fmt.Errorf("%s does not fit %s", x, typeName(s))
			}
			out = sdk.Uint(u)
		} else {
			i, err := strconv.ParseInt(x.String(), 10, 64)
			if err != nil {
				f, ferr := strconv.ParseFloat(x.String(), 64)
				if ferr != nil || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
					return out, fmt.Errorf("%s does not fit %s", x, typeName(s))
				}
				i = int64(f)
			}
			if float64(i) < lo || float64(i) > hi {
				return out, fmt.Errorf("%s does not fit %s", x, typeName(s))
			}
			out = sdk.Int(i)
		}
	case sdk.KindFloat:
		x, ok := v.(json.Number)
		if !ok {
			return out, fmt.Errorf("want a number, got %s", describe(v))
		}
		f, err := strconv.ParseFloat(x.String(), 64)
		if err != nil || math.IsInf(f, 0) {
			return out, fmt.Errorf("%s is out of range", x)
		}
		if s.Type == "float32" && math.Abs(f) > math.MaxFloat32 {
			return out, fmt.Errorf("%s does not fit float32", x)
		}
		out = sdk.Float(f)
	case sdk.KindString:
		x, ok := v.(string)
		if !ok {
			return out, fmt.Errorf("want a string, got %s", describe(v))
		}
		out = sdk.String(x)
	default:
		return out, fmt.Errorf("point has no writable type")
	}
	if f, ok := out.AsFloat(); ok && s.Kind != sdk.KindBool {
		if s.Min != nil && f < *s.Min {
			return sdk.Value{}, fmt.Errorf("%v is below the minimum %v", out, *s.Min)
		}
		if s.Max != nil && f > *s.Max {
			return sdk.Value{}, fmt.Errorf("%v is above the maximum %v", out, *s.Max)
		}
	}
	return out, nil
}

func typeName(s sdk.PointSchema) string {
	if s.Type != "" {
		return s.Type
	}
	return s.Kind.String()
}

func intRange(typ string, k sdk.Kind) (float64, float64) {
	switch typ {
	case "int8":
		return math.MinInt8, math.MaxInt8
	case "uint8":
		return 0, math.MaxUint8
	case "int16":
		return math.MinInt16, math.MaxInt16
	case "uint16":
		return 0, math.MaxUint16
	case "int32":
		return math.MinInt32, math.MaxInt32
	case "uint32":
		return 0, math.MaxUint32
	}
	if k == sdk.KindUint {
		return 0, math.MaxUint64
	}
	return math.MinInt64, math.MaxInt64
}

func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return strconv.Quote(x)
	case json.Number:
		return x.String()
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
