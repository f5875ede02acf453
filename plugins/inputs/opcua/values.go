package opcua

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// quality maps a StatusCode to edgepipe's quality by its severity bits
// (OPC UA Part 4, 7.34): 00 good, 01 uncertain, 10 and 11 bad.
func quality(sc ua.StatusCode) sdk.Quality {
	switch uint32(sc) >> 30 {
	case 0:
		return sdk.QualityGood
	case 1:
		return sdk.QualityUncertain
	}
	return sdk.QualityBad
}

// statusName is the symbolic name of a StatusCode as OPC UA Part 6
// spells it ("BadNodeIdUnknown"; the library's Go names say
// "StatusBadNodeIDUnknown"). Only the severity and sub-code bits name it:
// info bits (overflow, limits) are set aside.
func statusName(sc ua.StatusCode) string {
	if sc&0xFFFF0000 == 0 {
		return "Good"
	}
	d, ok := ua.StatusCodes[sc]
	if !ok {
		d, ok = ua.StatusCodes[sc&0xFFFF0000]
	}
	if !ok {
		return fmt.Sprintf("0x%08X", uint32(sc))
	}
	return specName.Replace(strings.TrimPrefix(d.Name, "Status"))
}

var specName = strings.NewReplacer("ID", "Id", "URI", "Uri", "URL", "Url", "TCP", "Tcp")

// errUnsupported is a value of a type edgepipe has no kind for (arrays,
// structures). Its text is the point's status, so that the server sees
// why the point is bad: "unsupported type: array of Double".
type errUnsupported struct{ what string }

func (e errUnsupported) Error() string { return "unsupported type: " + e.what }

// unsupported describes a value that has no edgepipe kind.
func unsupported(v *ua.Variant) errUnsupported {
	if v.Has(ua.VariantArrayDimensions) && len(v.ArrayDimensions()) > 1 {
		dims := make([]string, len(v.ArrayDimensions()))
		for i, d := range v.ArrayDimensions() {
			dims[i] = strconv.Itoa(int(d))
		}
		return errUnsupported{strings.Join(dims, "x") + " matrix of " + typeName(v.Type())}
	}
	if v.Has(ua.VariantArrayValues) {
		return errUnsupported{"array of " + typeName(v.Type())}
	}
	if eo, ok := v.Value().(*ua.ExtensionObject); ok && eo != nil {
		if eo.Value != nil {
			return errUnsupported{"structure " + strings.TrimPrefix(fmt.Sprintf("%T", eo.Value), "*ua.")}
		}
		if eo.TypeID != nil && eo.TypeID.NodeID != nil {
			return errUnsupported{"structure " + eo.TypeID.NodeID.String()}
		}
		return errUnsupported{"structure"}
	}
	return errUnsupported{typeName(v.Type())}
}

// typeName names a built-in type as OPC UA does.
func typeName(t ua.TypeID) string {
	switch t {
	case ua.TypeIDUint16, ua.TypeIDUint32, ua.TypeIDUint64:
		return "UInt" + strings.TrimPrefix(t.String(), "TypeIDUint")
	case ua.TypeIDGUID:
		return "Guid"
	case ua.TypeIDNodeID:
		return "NodeId"
	case ua.TypeIDXMLElement:
		return "XmlElement"
	}
	if n, ok := strings.CutPrefix(t.String(), "TypeID"); ok {
		return n
	}
	return "type " + strconv.Itoa(int(t))
}

// valueOf maps a Variant's value to an edgepipe value in its natural kind:
// signed integers to Int, unsigned to Uint, Float and Double to Float,
// Boolean to Bool, and the text-like types to String (DateTime as
// RFC 3339 UTC with nanoseconds, ByteString in base64, Guid in its
// canonical form, NodeId in its string form, QualifiedName as "ns:name",
// LocalizedText its text). A StatusCode value is its number.
func valueOf(v *ua.Variant) (sdk.Value, error) {
	if v == nil || v.Type() == ua.TypeIDNull {
		return sdk.Value{}, nil
	}
	if v.Has(ua.VariantArrayValues) {
		return sdk.Value{}, unsupported(v)
	}
	switch x := v.Value().(type) {
	case bool:
		return sdk.Bool(x), nil
	case int8:
		return sdk.Int(int64(x)), nil
	case int16:
		return sdk.Int(int64(x)), nil
	case int32:
		return sdk.Int(int64(x)), nil
	case int64:
		return sdk.Int(x), nil
	case uint8:
		return sdk.Uint(uint64(x)), nil
	case uint16:
		return sdk.Uint(uint64(x)), nil
	case uint32:
		return sdk.Uint(uint64(x)), nil
	case uint64:
		return sdk.Uint(x), nil
	case float32:
		return sdk.Float(float64(x)), nil
	case float64:
		return sdk.Float(x), nil
	case string:
		return sdk.String(x), nil
	case time.Time:
		return sdk.String(x.UTC().Format(time.RFC3339Nano)), nil
	case []byte:
		return sdk.String(base64.StdEncoding.EncodeToString(x)), nil
	case ua.XMLElement:
		return sdk.String(string(x)), nil
	case *ua.GUID:
		return sdk.String(x.String()), nil
	case *ua.NodeID:
		return sdk.String(x.String()), nil
	case *ua.ExpandedNodeID:
		return sdk.String(x.String()), nil
	case ua.StatusCode:
		return sdk.Uint(uint64(x)), nil
	case *ua.QualifiedName:
		return sdk.String(strconv.Itoa(int(x.NamespaceIndex)) + ":" + x.Name), nil
	case *ua.LocalizedText:
		return sdk.String(x.Text), nil
	}
	return sdk.Value{}, unsupported(v)
}

// force converts a value to a point's configured type; ok is false when
// it does not fit without loss.
func force(v sdk.Value, typ string) (sdk.Value, bool) {
	if typ == "" || !v.IsValid() {
		return v, true
	}
	switch typ {
	case "string":
		if v.Kind() == sdk.KindString {
			return v, true
		}
		return sdk.String(v.String()), true
	case "bool":
		switch v.Kind() {
		case sdk.KindBool:
			return v, true
		case sdk.KindInt, sdk.KindUint:
			if v.UintValue() <= 1 {
				return sdk.Bool(v.UintValue() == 1), true
			}
		}
		return sdk.Value{}, false
	case "float32", "float64":
		f, ok := exactFloat(v)
		if !ok || typ == "float32" && !math.IsNaN(f) && float64(float32(f)) != f {
			return sdk.Value{}, false
		}
		return sdk.Float(f), true
	}
	bits := map[string]int{"int16": 16, "uint16": 16, "int32": 32, "uint32": 32, "int64": 64, "uint64": 64}[typ]
	signed := typ[0] == 'i'
	i, u, neg, ok := exactInteger(v)
	if !ok {
		return sdk.Value{}, false
	}
	if signed {
		lo, hi := int64(-1)<<(bits-1), int64(uint64(1)<<(bits-1)-1)
		if neg {
			if i < lo {
				return sdk.Value{}, false
			}
			return sdk.Int(i), true
		}
		if u > uint64(hi) {
			return sdk.Value{}, false
		}
		return sdk.Int(int64(u)), true
	}
	if neg || bits < 64 && u >= 1<<bits {
		return sdk.Value{}, false
	}
	return sdk.Uint(u), true
}

// exactFloat is a numeric value as a float64, if exactly so.
func exactFloat(v sdk.Value) (float64, bool) {
	switch v.Kind() {
	case sdk.KindFloat:
		return v.FloatValue(), true
	case sdk.KindInt:
		f := float64(v.IntValue())
		return f, f < 0x1p63 && int64(f) == v.IntValue()
	case sdk.KindUint:
		f := float64(v.UintValue())
		return f, f < 0x1p64 && uint64(f) == v.UintValue()
	case sdk.KindBool:
		if v.BoolValue() {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// exactInteger is a numeric value as an integer, if it is one: the
// magnitude in u, or i when negative.
func exactInteger(v sdk.Value) (i int64, u uint64, neg, ok bool) {
	switch v.Kind() {
	case sdk.KindInt:
		if v.IntValue() < 0 {
			return v.IntValue(), 0, true, true
		}
		return 0, uint64(v.IntValue()), false, true
	case sdk.KindUint:
		return 0, v.UintValue(), false, true
	case sdk.KindBool:
		if v.BoolValue() {
			return 0, 1, false, true
		}
		return 0, 0, false, true
	case sdk.KindFloat:
		f := v.FloatValue()
		if f != math.Trunc(f) || math.IsInf(f, 0) || math.IsNaN(f) {
			return 0, 0, false, false
		}
		if f < 0 {
			if f < -0x1p63 {
				return 0, 0, false, false
			}
			return int64(f), 0, true, true
		}
		if f >= 0x1p64 {
			return 0, 0, false, false
		}
		return 0, uint64(f), false, true
	}
	return 0, 0, false, false
}

// variantFor encodes a value as the node's own built-in type t for a
// write, refusing what t cannot hold exactly.
func variantFor(v sdk.Value, t ua.TypeID) (*ua.Variant, error) {
	refuse := func() (*ua.Variant, error) {
		return nil, fmt.Errorf("%s does not fit the node's data type %s", clip(v.String()), typeName(t))
	}
	var x any
	switch t {
	case ua.TypeIDBoolean:
		b, ok := force(v, "bool")
		if !ok {
			return refuse()
		}
		x = b.BoolValue()
	case ua.TypeIDSByte, ua.TypeIDInt16, ua.TypeIDInt32, ua.TypeIDInt64:
		bits := map[ua.TypeID]int{ua.TypeIDSByte: 8, ua.TypeIDInt16: 16, ua.TypeIDInt32: 32, ua.TypeIDInt64: 64}[t]
		i, u, neg, ok := exactInteger(v)
		if !ok {
			return refuse()
		}
		if !neg {
			if u > uint64(1)<<(bits-1)-1 {
				return refuse()
			}
			i = int64(u)
		} else if i < int64(-1)<<(bits-1) {
			return refuse()
		}
		switch t {
		case ua.TypeIDSByte:
			x = int8(i)
		case ua.TypeIDInt16:
			x = int16(i)
		case ua.TypeIDInt32:
			x = int32(i)
		default:
			x = i
		}
	case ua.TypeIDByte, ua.TypeIDUint16, ua.TypeIDUint32, ua.TypeIDUint64:
		bits := map[ua.TypeID]int{ua.TypeIDByte: 8, ua.TypeIDUint16: 16, ua.TypeIDUint32: 32, ua.TypeIDUint64: 64}[t]
		_, u, neg, ok := exactInteger(v)
		if !ok || neg || bits < 64 && u >= 1<<bits {
			return refuse()
		}
		switch t {
		case ua.TypeIDByte:
			x = uint8(u)
		case ua.TypeIDUint16:
			x = uint16(u)
		case ua.TypeIDUint32:
			x = uint32(u)
		default:
			x = u
		}
	case ua.TypeIDFloat:
		f, ok := exactFloat(v)
		if !ok || !math.IsNaN(f) && float64(float32(f)) != f {
			return refuse()
		}
		x = float32(f)
	case ua.TypeIDDouble:
		f, ok := exactFloat(v)
		if !ok {
			return refuse()
		}
		x = f
	case ua.TypeIDString:
		x = v.String()
	case ua.TypeIDDateTime:
		tm, err := time.Parse(time.RFC3339Nano, v.String())
		if err != nil {
			return nil, fmt.Errorf("a DateTime is written as RFC 3339 text (2024-02-29T12:34:56.789Z), not %s", clip(v.String()))
		}
		x = tm
	case ua.TypeIDByteString:
		b, err := base64.StdEncoding.DecodeString(v.String())
		if err != nil {
			return nil, fmt.Errorf("a ByteString is written as base64 text")
		}
		x = b
	case ua.TypeIDLocalizedText:
		x = ua.NewLocalizedText(v.String())
	default:
		return nil, fmt.Errorf("writing the OPC UA type %s is not supported", typeName(t))
	}
	return ua.NewVariant(x)
}

// clip keeps a rejected value short in an error (SPEC 5: at most 64
// characters of it).
func clip(s string) string {
	r := []rune(s)
	if len(r) <= 64 {
		return s
	}
	return string(r[:61]) + "..."
}
