package modbus

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// TestReorderIsItsOwnInverse: decoding and encoding share reorder, which
// is only right if applying an order twice gives the bytes back.
func TestReorderIsItsOwnInverse(t *testing.T) {
	src := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	for o := orderABCD; o <= orderDCBA; o++ {
		for _, n := range []int{2, 4, 8} {
			a, b := make([]byte, n), make([]byte, n)
			reorder(a, src[:n], o)
			reorder(b, a, o)
			if !bytes.Equal(b, src[:n]) {
				t.Errorf("%s on %d bytes: %v -> %v -> %v", o, n, src[:n], a, b)
			}
		}
	}
}

func TestEncodeScaledRounds(t *testing.T) {
	c := codec{area: areaHolding, typ: tInt16, scale: 0.1, scaled: true}
	w, err := c.encodeRegisters(sdk.Float(-12.34)) // raw -123.4 -> -123
	if err != nil || !bytes.Equal(w, []byte{0xFF, 0x85}) {
		t.Fatalf("%x %v", w, err)
	}
	if _, err := c.encodeRegisters(sdk.Float(math.NaN())); err == nil {
		t.Fatal("NaN into an integer register accepted")
	}
	u := codec{area: areaHolding, typ: tUint64}
	w, err = u.encodeRegisters(sdk.Uint(math.MaxUint64))
	if err != nil || !bytes.Equal(w, bytes.Repeat([]byte{0xFF}, 8)) {
		t.Fatalf("max uint64: %x %v", w, err)
	}
	i := codec{area: areaHolding, typ: tInt64}
	if _, err := i.encodeRegisters(sdk.Uint(1 << 63)); err == nil {
		t.Fatal("2^63 into int64 accepted")
	}
}

// FuzzDecodeResponse feeds arbitrary response bytes to the register
// decoding of every type, order and option, and to the mapping of a
// response onto a request's points: nothing may panic, a long enough
// response always decodes, and integers and floats encode back to the
// same bytes.
func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte{0x7F, 0xC0, 0, 0}, uint8(7), uint8(1), uint8(0), uint8(2), false)
	f.Add([]byte{0xFF}, uint8(9), uint8(2), uint8(3), uint8(0), true)
	f.Add([]byte("hello world\x00\x00"), uint8(9), uint8(3), uint8(0), uint8(6), false)
	f.Add(bytes.Repeat([]byte{0xAA}, 300), uint8(5), uint8(0), uint8(20), uint8(200), true)
	f.Add([]byte{0x3C, 0x00}, uint8(tFloat16), uint8(2), uint8(0), uint8(0), false)
	f.Add([]byte{0xFB, 0xA5}, uint8(tInt8), uint8(4), uint8(0), uint8(0), false)
	f.Add([]byte{0x12, 0x34, 0x56, 0x78}, uint8(tBCD32), uint8(1), uint8(0), uint8(0), true)
	f.Add([]byte{0x12, 0xA4}, uint8(tBCD16), uint8(0), uint8(0), uint8(0), false)
	f.Fuzz(func(t *testing.T, data []byte, typ, order, bit, length uint8, scaled bool) {
		nTypes := uint8(len(typeNames))
		c := codec{area: areaHolding, typ: dataType(typ % nTypes), order: byteOrder(order % 4),
			bit: int(bit%18) - 1, length: 1 + int(length%125), scale: 1, lowByte: order&4 != 0}
		if scaled && c.typ != tBool && c.typ != tString {
			c.scale, c.offset, c.scaled = 0.5, -3, true
		}
		v, err := c.decodeRegisters(data)
		need := 2 * c.count()
		if len(data) >= need && err != nil && !(c.typ == tBCD16 || c.typ == tBCD32) {
			t.Fatalf("%d bytes for %d needed: %v", len(data), need, err)
		}
		if len(data) < need && err == nil {
			t.Fatalf("short input %d < %d decoded to %#v", len(data), need, v)
		}
		if err == nil && v.Kind() != c.kind() {
			t.Fatalf("kind %s, want %s", v.Kind(), c.kind())
		}
		if err == nil && !c.scaled && c.typ != tBool && c.typ != tString {
			if fv, ok := v.AsFloat(); !(c.typ == tFloat32 || c.typ == tFloat64 || c.typ == tFloat16) || ok && !math.IsNaN(fv) {
				back, err := c.encodeRegisters(v)
				if c.typ.byteSized() {
					back = append([]byte(nil), data[:need]...)
					back[1-c.byteIndex()] ^= 0xFF // must stay as it is
					err = c.putByte(back, v)
					back[1-c.byteIndex()] ^= 0xFF
				}
				if err != nil || !bytes.Equal(back, data[:need]) {
					t.Fatalf("%s %s: %x -> %#v -> %x (%v)", c.typ, c.order, data[:need], v, back, err)
				}
			}
		}
		// The same bytes as the response of a merged read.
		d := &device{}
		var spans []span
		for i := range 6 {
			p := &point{name: "p", addr: i * int(1+bit%5), codec: codec{area: areaHolding, typ: dataType((int(typ) + i) % int(nTypes)), bit: -1, length: 1 + i, scale: 1}}
			d.polled = append(d.polled, *p)
			spans = append(spans, span{area: areaHolding, addr: p.addr, count: p.count()})
		}
		out := make([]sdk.Point, len(d.polled))
		for _, r := range plan(spans, limits{125, 2000, 16}) {
			(&Modbus{}).decodeInto(out, d, r, data, nil)
		}
	})
}

func TestConfigErrors(t *testing.T) {
	conf := `url = "tcp://127.0.0.1:502"
retries = 11
byte_order = "ABDC"
colour = "red"
[[devices]]
name = "plc.1"
unit_id = 300
[[devices.points]]
name = "a"
area = "holdings"
address = 0
[[devices.points]]
name = "b"
area = "holding"
address = 1
type = "float128"
[[devices.points]]
name = "c"
area = "coil"
address = 2
type = "int16"
[[devices.points]]
name = "d"
area = "input"
address = 3
access = "pubsub"
[[devices.points]]
name = "e"
area = "holding"
type = "string"
[[devices.points]]
name = "f"
area = "holding"
address = 65535
type = "uint32"
scale = 0.0
[[devices.points]]
name = "g"
area = "holding"
address = 10
type = "int8"
byte_order = "CDAB"
[[devices.points]]
name = "h"
area = "holding"
address = 11
byte = "low"
[[devices.points]]
name = "i"
area = "holding"
address = 12
type = "uint8"
byte = "middle"
[[devices]]
name = "empty"
`
	sdktest.Run(t, func() sdk.Plugin { return &Modbus{} }, func(t *testing.T, p sdk.Plugin) {
		_, err := p.Init(context.Background(), sdktest.Request(conf))
		ces := sdk.AsConfigErrors(err)
		if len(ces) != 1 || !strings.Contains(ces[0].Error(), "test.toml:4: colour: unknown key") {
			t.Fatalf("unknown key first, alone: %v", err)
		}
		conf := strings.Replace(conf, "colour = \"red\"\n", "\n", 1)
		_, err = p.Init(context.Background(), sdktest.Request(conf))
		want := []string{
			"test.toml:2: retries: 11: want 0..10",
			"test.toml:3: byte_order: \"ABDC\"",
			"test.toml:6: devices[0].name: \"plc.1\"",
			"test.toml:7: devices[0].unit_id: 300: want 0..255",
			"test.toml:10: devices[0].points[0].area: \"holdings\"",
			"test.toml:16: devices[0].points[1].type: unknown type \"float128\"",
			"test.toml:21: devices[0].points[2].type: a coil holds one bit",
			"test.toml:26: devices[0].points[3].access: the input area is read-only in Modbus: a point there cannot be pubsub",
			"test.toml:27: devices[0].points[4].length: a string needs length",
			"test.toml:27: devices[0].points[4].address: is required",
			"test.toml:34: devices[0].points[5].address: uint32 at 65535 runs past",
			"test.toml:36: devices[0].points[5].scale: 0: want a finite number",
			"test.toml:37: devices[0].points[6].byte: int8 is one byte of a register: byte = \"high\" or \"low\" says which",
			"test.toml:42: devices[0].points[6].byte_order: does not apply to int8",
			"test.toml:47: devices[0].points[7].byte: byte only applies to int8 and uint8",
			"test.toml:53: devices[0].points[8].byte: \"middle\": want \"high\"",
			"test.toml:54: devices[1].points: device \"empty\" has no",
		}
		got := err.Error()
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("missing %q in:\n%s", w, got)
			}
		}
		if n := len(sdk.AsConfigErrors(err)); n != len(want) {
			t.Errorf("%d errors, want %d:\n%s", n, len(want), got)
		}
	})
}
