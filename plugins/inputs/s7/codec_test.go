package s7

import (
	"math"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/inputs/internal/numcodec"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// TestCodecRoundTrip: what encode writes, decode reads back as the same
// value, for every type.
func TestCodecRoundTrip(t *testing.T) {
	one := numcodec.Scaling{Scale: 1}
	for _, tc := range []struct {
		c codec
		v sdk.Value
	}{
		{codec{typ: tByte, scaling: one}, sdk.Uint(255)},
		{codec{typ: tWord, scaling: one}, sdk.Uint(65535)},
		{codec{typ: tDword, scaling: one}, sdk.Uint(math.MaxUint32)},
		{codec{typ: tInt, scaling: one}, sdk.Int(math.MinInt16)},
		{codec{typ: tDint, scaling: one}, sdk.Int(math.MinInt32)},
		{codec{typ: tReal, scaling: one}, sdk.Float(-22.1)},
		{codec{typ: tLreal, scaling: one}, sdk.Float(math.SmallestNonzeroFloat64)},
		{codec{typ: tInt, scaling: numcodec.Scaling{Scale: 0.5, Offset: 3}}, sdk.Float(-7)},
	} {
		b, err := tc.c.encode(tc.v)
		if err != nil || len(b) != tc.c.size() {
			t.Fatalf("%s %v: % x %v", tc.c.typ, tc.v, b, err)
		}
		got, err := tc.c.decode(b)
		if err != nil || !got.Equal(tc.v) {
			t.Errorf("%s: %#v back as %#v %v", tc.c.typ, tc.v, got, err)
		}
	}
	// A string is written from its length byte on; read it with its max.
	c := codec{typ: tString, strLen: 6, scaling: one}
	b, err := c.encode(sdk.String("Maß"))
	if err != nil {
		t.Fatal(err)
	}
	full := append([]byte{6}, append(b, 0, 0, 0)...)
	if got, err := c.decode(full); err != nil || !got.Equal(sdk.String("Maß")) {
		t.Fatalf("% x: %#v %v", full, got, err)
	}
}

// FuzzDecode: any bytes from a PLC decode, or fail, without a panic; a
// string never reports more characters than declared.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{10, 5, 'H', 'e', 'l', 'l', 'o'}, uint8(tString), uint8(3))
	f.Add([]byte{0xFF, 0xFF, 0xFF, 0xFF}, uint8(tReal), uint8(0))
	f.Add([]byte{}, uint8(tLreal), uint8(0))
	f.Fuzz(func(t *testing.T, b []byte, typ, n uint8) {
		c := codec{typ: dataType(typ % uint8(len(typeNames))), bit: int(n % 8), strLen: int(n), scaling: numcodec.Scaling{Scale: 1}}
		v, err := c.decode(b)
		if err == nil && c.typ == tString && len([]rune(v.StringValue())) > c.strLen {
			t.Fatalf("%d characters for STRING[%d]", len([]rune(v.StringValue())), c.strLen)
		}
	})
}
