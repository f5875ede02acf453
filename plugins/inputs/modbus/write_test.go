package modbus_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
	"github.com/edgepipe/edgepipe/sim/modbussim"
)

const writeConf = `
url = %q
timeout = "500ms"
write_multiple = %v
[[devices]]
name = "plc"
unit_id = 3
[[devices.points]]
name = "i16"
area = "holding"
address = 0
type = "int16"
access = "pubsub"
[[devices.points]]
name = "u32_cdab"
area = "holding"
address = 1
type = "uint32"
byte_order = "CDAB"
access = "sub"
[[devices.points]]
name = "f64_dcba"
area = "holding"
address = 3
type = "float64"
byte_order = "DCBA"
access = "sub"
[[devices.points]]
name = "i64_badc"
area = "holding"
address = 7
type = "int64"
byte_order = "BADC"
access = "sub"
[[devices.points]]
name = "setpoint"
area = "holding"
address = 11
type = "uint16"
scale = 0.1
offset = -10.0
access = "pubsub"
[[devices.points]]
name = "label"
area = "holding"
address = 12
type = "string"
length = 3
access = "sub"
[[devices.points]]
name = "flag"
area = "holding"
address = 15
type = "bool"
bit = 4
access = "sub"
[[devices.points]]
name = "pump"
area = "coil"
address = 9
access = "pubsub"
[[devices.points]]
name = "f32"
area = "holding"
address = 16
type = "float32"
access = "sub"
[[devices.points]]
name = "ro"
area = "holding"
address = 20
`

func TestWrite(t *testing.T) {
	for _, c := range []struct {
		listen   string
		multiple bool
	}{{"tcp://127.0.0.1:0", false}, {"tcp://127.0.0.1:0", true}, {"rtuovertcp://127.0.0.1:0", false}, {"rtuovertcp://127.0.0.1:0", true}} {
		multiple := c.multiple
		t.Run(fmt.Sprintf("%s/write_multiple=%v", strings.Split(c.listen, ":")[0], multiple), func(t *testing.T) {
			s := startSim(t, c.listen, &modbussim.Config{Units: []modbussim.UnitConfig{{ID: 3,
				Registers: []modbussim.RegisterConfig{{Area: "holding", Address: 15, Raw: []int64{0x8001}}}}}})
			sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
				sdktest.Init(t, p, fmt.Sprintf(writeConf, s.Addr(), multiple))
				w := p.(sdk.Writer)
				reqs := []sdk.WriteRequest{
					{Device: "plc", Name: "i16", Value: sdk.Int(-300)},
					{Device: "plc", Name: "u32_cdab", Value: sdk.Uint(0xAABBCCDD)},
					{Device: "plc", Name: "f64_dcba", Value: sdk.Float(math.Inf(-1))},
					{Device: "plc", Name: "i64_badc", Value: sdk.Int(-0x0102030405060708)},
					{Device: "plc", Name: "setpoint", Value: sdk.Float(65.5)}, // raw (65.5+10)/0.1 = 755
					{Device: "plc", Name: "label", Value: sdk.String("ab")},
					{Device: "plc", Name: "flag", Value: sdk.Bool(true)},
					{Device: "plc", Name: "pump", Value: sdk.Bool(true)},
					{Device: "plc", Name: "f32", Value: sdk.Float(2.5)},
					// Refused, each with its reason; the good ones still go through.
					{Device: "plc", Name: "i16", Value: sdk.Int(40000)},
					{Device: "plc", Name: "i16", Value: sdk.Float(1.5)},
					{Device: "plc", Name: "u32_cdab", Value: sdk.Int(-1)},
					{Device: "plc", Name: "label", Value: sdk.String("toolong")},
					{Device: "plc", Name: "f32", Value: sdk.Float(1e39)},
					{Device: "plc", Name: "setpoint", Value: sdk.Float(7000)}, // raw 70100 > uint16
					{Device: "plc", Name: "ro", Value: sdk.Int(1)},
					{Device: "plc", Name: "nope", Value: sdk.Int(1)},
					{Device: "plc", Name: "pump", Value: sdk.Int(2)},
				}
				res, err := w.Write(context.Background(), reqs)
				if err != nil {
					t.Fatal(err)
				}
				if len(res) != len(reqs) {
					t.Fatalf("%d results for %d requests", len(res), len(reqs))
				}
				wantErr := map[int]string{9: "out of the int16 range", 10: "not an integer", 11: "out of the uint32 range",
					12: "does not fit 3 registers", 13: "out of the float32 range", 14: "out of the uint16 range",
					15: "read-only", 16: "no such point", 17: "want true, false, 0 or 1"}
				for i, r := range res {
					want, bad := wantErr[i]
					switch {
					case !bad && r.Error != "":
						t.Errorf("write %d (%s): %s", i, reqs[i].Name, r.Error)
					case bad && !strings.Contains(r.Error, want):
						t.Errorf("write %d (%s = %v): error %q, want it to say %q", i, reqs[i].Name, reqs[i].Value, r.Error, want)
					case bad && !strings.Contains(r.Error, "plc."+reqs[i].Name):
						t.Errorf("write %d: error %q does not name the point", i, r.Error)
					}
				}
				regs, _ := s.Read(3, modbussim.Holding, 0, 18)
				hex := func(rs []uint16) string { return fmt.Sprintf("%04x", rs) }
				checks := []struct {
					name string
					got  []uint16
					want []int64
				}{
					{"i16", regs[0:1], []int64{0xFED4}},
					{"u32_cdab", regs[1:3], []int64{0xCCDD, 0xAABB}},
					{"f64_dcba", regs[3:7], wire(be64(math.Float64bits(math.Inf(-1))), "DCBA")},
					{"i64_badc", regs[7:11], wire(be64(0xFEFDFCFBFAF9F8F8), "BADC")},
					{"setpoint", regs[11:12], []int64{755}},
					{"label", regs[12:15], []int64{'a'<<8 | 'b', 0, 0}},
					{"flag", regs[15:16], []int64{0x8011}}, // bit 4 set, other bits kept
					{"f32", regs[16:18], wire(be32(math.Float32bits(2.5)), "ABCD")},
				}
				for _, c := range checks {
					if hex(c.got) != fmt.Sprintf("%04x", toU16(c.want)) {
						t.Errorf("%s: registers %s, want %04x", c.name, hex(c.got), c.want)
					}
				}
				if coil, _ := s.Read(3, modbussim.Coil, 9, 1); coil[0] != 1 {
					t.Errorf("pump coil not set")
				}
				// The written device is read back at the next Gather, and the
				// inverse scale gives back the written value.
				f := gather(t, p)
				got := byName(f.Batches[0])
				if v := got["setpoint"].Value; !v.Equal(sdk.Float(755*0.1 - 10)) {
					t.Errorf("setpoint read back %#v", v)
				}
				if _, reported := got["label"]; reported {
					t.Errorf("a sub-only point was reported")
				}
			})
		})
	}
}

func toU16(v []int64) []uint16 {
	out := make([]uint16, len(v))
	for i, x := range v {
		out[i] = uint16(x)
	}
	return out
}
