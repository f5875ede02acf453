package modbus_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

const newTypesConf = `url = %q
timeout = "2s"
[[devices]]
name = "d"
unit_id = 1
[[devices.points]]
name = "f16"
area = "holding"
address = 0
type = "float16"
[[devices.points]]
name = "f16_neg"
area = "input"
address = 1
type = "float16"
[[devices.points]]
name = "f16_max"
area = "holding"
address = 2
type = "float16"
[[devices.points]]
name = "f16_tiny"
area = "holding"
address = 3
type = "float16"
[[devices.points]]
name = "i8_high"
area = "holding"
address = 4
type = "int8"
byte = "high"
[[devices.points]]
name = "u8_high"
area = "holding"
address = 4
type = "uint8"
byte = "high"
[[devices.points]]
name = "u8_low_of_4"
area = "holding"
address = 4
type = "uint8"
byte = "low"
[[devices.points]]
name = "u8_low"
area = "input"
address = 5
type = "uint8"
byte = "low"
[[devices.points]]
name = "i8_low"
area = "holding"
address = 5
type = "int8"
byte = "low"
[[devices.points]]
name = "bcd16"
area = "holding"
address = 6
type = "bcd16"
[[devices.points]]
name = "bcd32"
area = "holding"
address = 7
type = "bcd32"
[[devices.points]]
name = "not_bcd"
area = "holding"
address = 9
type = "bcd16"
[[devices.points]]
name = "w_i8"
area = "holding"
address = 10
type = "int8"
byte = "high"
access = "sub"
[[devices.points]]
name = "w_u8"
area = "holding"
address = 11
type = "uint8"
byte = "low"
access = "sub"
[[devices.points]]
name = "w_f16"
area = "holding"
address = 12
type = "float16"
access = "sub"
[[devices.points]]
name = "w_bcd16"
area = "holding"
address = 13
type = "bcd16"
access = "sub"
[[devices.points]]
name = "w_bcd32"
area = "holding"
address = 14
type = "bcd32"
access = "sub"
[[devices.points]]
name = "w_bcd16_scaled"
area = "holding"
address = 16
type = "bcd16"
scale = 0.1
access = "sub"
`

// TestNewTypesAgainstPymodbus: float16, int8/uint8 (either byte of a
// register) and BCD read from and written to pymodbus, over Modbus TCP and
// RTU over TCP. The peer encodes the values it serves with Python's struct
// (IEEE half) and its own BCD; writes are checked in the peer's registers,
// read back raw, and a one-byte write keeps the register's other byte.
func TestNewTypesAgainstPymodbus(t *testing.T) {
	for _, rtu := range []bool{false, true} {
		t.Run(map[bool]string{false: "tcp", true: "rtuovertcp"}[rtu], func(t *testing.T) {
			url := startPymodbus(t, rtu,
				"0=f16:1.5", "1=f16:-0.1", "2=f16:65504", "3=f16:6e-8",
				"4=u8h:251", // 0xFBA5
				"5=u8l:200", // 0xA5C8
				"6=bcd16:1234", "7=bcd32:12345678", "9=hex:12a4",
				"10=u8h:0", "11=u8l:0", // 0x00A5, 0xA500: the write targets' other bytes
			)
			var raw strings.Builder
			for a := 10; a <= 16; a++ {
				fmt.Fprintf(&raw, "[[devices.points]]\nname = \"r%d\"\narea = \"holding\"\naddress = %d\n", a, a)
			}
			raw.WriteString("[[devices.points]]\nname = \"r1\"\narea = \"input\"\naddress = 1\n")
			conf := fmt.Sprintf(newTypesConf, url) + raw.String()
			sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
				sdktest.Init(t, p, conf)
				res, err := p.(sdk.Writer).Write(context.Background(), []sdk.WriteRequest{
					{Device: "d", Name: "w_i8", Value: sdk.Int(-7)},
					{Device: "d", Name: "w_u8", Value: sdk.Uint(200)},
					{Device: "d", Name: "w_f16", Value: sdk.Float(-0.1)},
					{Device: "d", Name: "w_bcd16", Value: sdk.Uint(4321)},
					{Device: "d", Name: "w_bcd32", Value: sdk.Uint(87654321)},
					{Device: "d", Name: "w_bcd16_scaled", Value: sdk.Float(99.9)},
					// Refused, each with its reason.
					{Device: "d", Name: "w_i8", Value: sdk.Int(128)},
					{Device: "d", Name: "w_u8", Value: sdk.Int(-1)},
					{Device: "d", Name: "w_f16", Value: sdk.Float(1e6)},
					{Device: "d", Name: "w_f16", Value: sdk.Float(0.10005)},
					{Device: "d", Name: "w_bcd16", Value: sdk.Uint(10000)},
					{Device: "d", Name: "w_bcd32", Value: sdk.Float(1.5)},
				})
				if err != nil {
					t.Fatal(err)
				}
				wantErr := []string{"", "", "", "", "", "",
					"128 is out of the int8 range (-128 to 127)", "-1 is out of the uint8 range (0 to 255)",
					"out of the float16 range", "would be written as 0.10004",
					"10000 is out of the bcd16 range (0 to 9999)", "1.5 is not an integer (type bcd32)"}
				for i, w := range wantErr {
					if w == "" && res[i].Error != "" || w != "" && !strings.Contains(res[i].Error, w) {
						t.Errorf("write %d: %q, want %q", i, res[i].Error, w)
					}
				}
				b := gather(t, p).Batches[0]
				got := byName(b)
				want := map[string]sdk.Value{
					"f16": sdk.Float(1.5), "f16_neg": sdk.Float(-0.1), "f16_max": sdk.Float(65504), "f16_tiny": sdk.Float(6e-8),
					"i8_high": sdk.Int(-5), "u8_high": sdk.Uint(251), "u8_low_of_4": sdk.Uint(0xA5),
					"u8_low": sdk.Uint(200), "i8_low": sdk.Int(-56),
					"bcd16": sdk.Uint(1234), "bcd32": sdk.Uint(12345678),
					// The peer's registers after the writes.
					"r10": sdk.Uint(0xF9A5), // -7 in the high byte, 0xA5 kept
					"r11": sdk.Uint(0xA5C8), // 200 in the low byte, 0xA5 kept
					"r12": got["r1"].Value,  // -0.1 as pymodbus encodes it
					"r13": sdk.Uint(0x4321), "r14": sdk.Uint(0x8765), "r15": sdk.Uint(0x4321),
					"r16": sdk.Uint(0x0999), // 99.9 / 0.1
				}
				for name, w := range want {
					if pt := got[name]; pt.Quality != sdk.QualityGood || !pt.Value.Equal(w) {
						t.Errorf("%s: got %#v (%s), want %#v", name, pt.Value, pt.Quality, w)
					}
				}
				if !got["r1"].Value.Equal(sdk.Uint(0xAE66)) {
					t.Errorf("pymodbus encodes -0.1 as %#04x, want 0xAE66", got["r1"].Value.UintValue())
				}
				if pt := got["not_bcd"]; pt.Quality != sdk.QualityBad || pt.Value.IsValid() {
					t.Errorf("0x12A4 is not BCD, yet reported %#v (%s)", pt.Value, pt.Quality)
				}
			})
		})
	}
}
