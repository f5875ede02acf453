package modbus_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// TestStringsIgnoreNumericByteOrder: text is two bytes per register, high
// byte first, whatever byte_order the connection or the device sets for
// numbers (SPEC section 3); only a byte_order on the string point itself
// changes that. Odd lengths keep their last character. The registers are
// served by pymodbus, which lays the text out itself.
func TestStringsIgnoreNumericByteOrder(t *testing.T) {
	url := startPymodbus(t, false,
		"10=str:HELLO-pymodbus",
		"20=str:HELLO",
		"30=str:HELLO-pymodbu",
		"40=str:EHLL-Oypombdsu", // low byte first, for a point that says so
		"50=hex:45484c4c004f",   // "HELLO", low byte first, odd
	)
	conf := fmt.Sprintf(`url = %q
timeout = "2s"
byte_order = "DCBA"
[[devices]]
name = "conn"          # takes the connection's DCBA
unit_id = 1
[[devices.points]]
name = "even"
area = "holding"
address = 10
type = "string"
length = 7
[[devices.points]]
name = "odd"
area = "holding"
address = 20
type = "string"
length = 3
[[devices.points]]
name = "odd_padded"
area = "input"
address = 30
type = "string"
length = 8
[[devices]]
name = "dev"
unit_id = 1
byte_order = "BADC"
[[devices.points]]
name = "even"
area = "input"
address = 10
type = "string"
length = 7
[[devices.points]]
name = "odd"
area = "holding"
address = 20
type = "string"
length = 3
[[devices.points]]
name = "swapped"
area = "holding"
address = 40
type = "string"
length = 7
byte_order = "BADC"
[[devices.points]]
name = "swapped_odd"
area = "holding"
address = 50
type = "string"
length = 3
byte_order = "DCBA"
[[devices.points]]
name = "label"
area = "holding"
address = 60
type = "string"
length = 3
access = "pubsub"
[[devices.points]]
name = "label_r0"
area = "holding"
address = 60
byte_order = "ABCD"
[[devices.points]]
name = "label_r2"
area = "holding"
address = 62
byte_order = "ABCD"
`, url)
	want := map[string]map[string]string{
		"conn": {"even": "HELLO-pymodbus", "odd": "HELLO", "odd_padded": "HELLO-pymodbu"},
		"dev":  {"even": "HELLO-pymodbus", "odd": "HELLO", "swapped": "HELLO-pymodbus", "swapped_odd": "HELLO"},
	}
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		sdktest.Init(t, p, conf)
		// A write on the BADC device lays the text out high byte first too.
		res, err := p.(sdk.Writer).Write(context.Background(), []sdk.WriteRequest{{Device: "dev", Name: "label", Value: sdk.String("ABCDE")}})
		if err != nil || res[0].Error != "" {
			t.Fatalf("write: %v %+v", err, res)
		}
		f := gather(t, p)
		for _, b := range f.Batches {
			got := byName(b)
			for name, w := range want[b.Device] {
				pt := got[name]
				if pt.Quality != sdk.QualityGood || !pt.Value.Equal(sdk.String(w)) {
					t.Errorf("%s.%s: got %q (%s), want %q", b.Device, name, pt.Value.String(), pt.Quality, w)
				}
			}
			if b.Device != "dev" {
				continue
			}
			if v := got["label"].Value; !v.Equal(sdk.String("ABCDE")) {
				t.Errorf("label read back %q", v.String())
			}
			if r0, r2 := got["label_r0"].Value, got["label_r2"].Value; !r0.Equal(sdk.Uint('A'<<8|'B')) || !r2.Equal(sdk.Uint('E'<<8)) {
				t.Errorf("label registers at the peer: %#04x ... %#04x, want 0x4142 ... 0x4500", r0.UintValue(), r2.UintValue())
			}
		}
	})
}
