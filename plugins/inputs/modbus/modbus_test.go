package modbus_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/plugins/inputs/modbus"
	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
	"github.com/edgepipe/edgepipe/sim/modbussim"
)

func factory() sdk.Plugin { return &modbus.Modbus{} }

// startSim serves cfg on listen and stops it at test end.
func startSim(t testing.TB, listen string, cfg *modbussim.Config) *modbussim.Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := modbussim.Start(ctx, listen, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = s.Close() })
	return s
}

// wire lays out the big-endian bytes of a value in registers following
// SPEC section 3, written out independently of the plugin and simulator:
// ABCD as is, DCBA fully reversed, BADC bytes of each register swapped,
// CDAB registers in reverse order.
func wire(be []byte, order string) []int64 {
	n := len(be)
	b := make([]byte, n)
	switch order {
	case "ABCD":
		copy(b, be)
	case "DCBA":
		for i := range b {
			b[i] = be[n-1-i]
		}
	case "BADC":
		for i := 0; i < n; i += 2 {
			b[i], b[i+1] = be[i+1], be[i]
		}
	case "CDAB":
		for r := 0; r < n/2; r++ {
			copy(b[2*r:2*r+2], be[n-2-2*r:n-2*r])
		}
	}
	regs := make([]int64, n/2)
	for i := range regs {
		regs[i] = int64(b[2*i])<<8 | int64(b[2*i+1])
	}
	return regs
}

func be16(v uint16) []byte { return []byte{byte(v >> 8), byte(v)} }
func be32(v uint32) []byte { return append(be16(uint16(v>>16)), be16(uint16(v))...) }
func be64(v uint64) []byte { return append(be32(uint32(v>>32)), be32(uint32(v))...) }

// TestWireHelperMatchesSpec pins the helper to register images written by
// hand, so that a mistake in it cannot hide one in the plugin.
func TestWireHelperMatchesSpec(t *testing.T) {
	want := map[string][]int64{
		"ABCD": {0x0102, 0x0304, 0x0506, 0x0708},
		"CDAB": {0x0708, 0x0506, 0x0304, 0x0102},
		"BADC": {0x0201, 0x0403, 0x0605, 0x0807},
		"DCBA": {0x0807, 0x0605, 0x0403, 0x0201},
	}
	for o, w := range want {
		if got := wire(be64(0x0102030405060708), o); fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("%s 64-bit: %x want %x", o, got, w)
		}
	}
	if got := wire(be32(0xAABBCCDD), "CDAB"); got[0] != 0xCCDD || got[1] != 0xAABB {
		t.Errorf("CDAB 32-bit: %x", got)
	}
	if got := wire(be32(0xAABBCCDD), "BADC"); got[0] != 0xBBAA || got[1] != 0xDDCC {
		t.Errorf("BADC 32-bit: %x", got)
	}
}

// typeCase is one point with a known register image and its expected value.
type typeCase struct {
	name  string
	area  string
	typ   string
	order string
	extra string // more point keys
	raw   []int64
	want  sdk.Value
}

func typeCases() []typeCase {
	var cs []typeCase
	nan32, inf32 := uint32(0x7FC00000), uint32(0x7F800000)
	for _, o := range []string{"ABCD", "CDAB", "BADC", "DCBA"} {
		lo := strings.ToLower(o)
		cs = append(cs,
			typeCase{"i16_" + lo, "holding", "int16", o, "", wire(be16(0xFFFE), o), sdk.Int(-2)},
			typeCase{"u16_" + lo, "input", "uint16", o, "", wire(be16(0xBEEF), o), sdk.Uint(0xBEEF)},
			typeCase{"i32_" + lo, "holding", "int32", o, "", wire(be32(uint32(0xF8A432EB)), o), sdk.Int(-123456789)},
			typeCase{"u32_" + lo, "input", "uint32", o, "", wire(be32(0xDEADBEEF), o), sdk.Uint(0xDEADBEEF)},
			typeCase{"i64_" + lo, "holding", "int64", o, "", wire(be64(uint64(0xFEFDFCFBFAF9F8F8)), o), sdk.Int(-0x0102030405060708)},
			typeCase{"u64_" + lo, "holding", "uint64", o, "", wire(be64(0xFEDCBA9876543210), o), sdk.Uint(0xFEDCBA9876543210)},
			typeCase{"f32_" + lo, "holding", "float32", o, "", wire(be32(math.Float32bits(-1.5)), o), sdk.Float(-1.5)},
			typeCase{"f32nan_" + lo, "holding", "float32", o, "", wire(be32(nan32), o), sdk.Float(float64(math.Float32frombits(nan32)))},
			typeCase{"f32inf_" + lo, "input", "float32", o, "", wire(be32(inf32), o), sdk.Float(math.Inf(1))},
			typeCase{"f32ninf_" + lo, "holding", "float32", o, "", wire(be32(inf32|1<<31), o), sdk.Float(math.Inf(-1))},
			typeCase{"f64_" + lo, "holding", "float64", o, "", wire(be64(math.Float64bits(-math.Pi)), o), sdk.Float(-math.Pi)},
			typeCase{"f64nan_" + lo, "holding", "float64", o, "", wire(be64(0x7FF8000000000001), o), sdk.Float(math.Float64frombits(0x7FF8000000000001))},
			typeCase{"f64ninf_" + lo, "input", "float64", o, "", wire(be64(math.Float64bits(math.Inf(-1))), o), sdk.Float(math.Inf(-1))},
			typeCase{"f16_" + lo, "holding", "float16", o, "", wire(be16(0xC500), o), sdk.Float(-5)},
			typeCase{"f16frac_" + lo, "input", "float16", o, "", wire(be16(0x2E66), o), sdk.Float(0.1)},
			typeCase{"bcd16_" + lo, "input", "bcd16", o, "", wire(be16(0x1234), o), sdk.Uint(1234)},
			typeCase{"bcd32_" + lo, "input", "bcd32", o, "", wire(be32(0x12345678), o), sdk.Uint(12345678)},
		)
	}
	cs = append(cs,
		typeCase{"str", "holding", "string", "", "length = 4", []int64{'h'<<8 | 'e', 'l'<<8 | 'l', 'o' << 8, 0}, sdk.String("hello")},
		typeCase{"str_spaces", "holding", "string", "", "length = 3", []int64{'o'<<8 | 'k', ' '<<8 | ' ', ' '<<8 | ' '}, sdk.String("ok")},
		typeCase{"str_full", "input", "string", "", "length = 2", []int64{'a'<<8 | 'b', 'c'<<8 | 'd'}, sdk.String("abcd")},
		typeCase{"str_badc", "holding", "string", "BADC", "length = 2", []int64{'b'<<8 | 'a', 'c'}, sdk.String("abc")},
		typeCase{"str_empty", "holding", "string", "", "length = 2", []int64{0, 0}, sdk.String("")},
		// One byte of a register, whatever the byte order around it.
		typeCase{"i8_high", "holding", "int8", "", "byte = \"high\"", []int64{0xFB01}, sdk.Int(-5)},
		typeCase{"u8_low", "input", "uint8", "", "byte = \"low\"", []int64{0xFB01}, sdk.Uint(1)},
		typeCase{"f16_inf", "input", "float16", "", "", []int64{0x7C00}, sdk.Float(math.Inf(1))},
		typeCase{"f16_scaled", "input", "float16", "", "scale = 2.0", []int64{0x3C00}, sdk.Float(2)},
		typeCase{"bcd16_scaled", "holding", "bcd16", "", "scale = 0.1", []int64{0x0999}, sdk.Float(99.9)},
		typeCase{"bit3", "holding", "bool", "", "bit = 3", []int64{0x0008}, sdk.Bool(true)},
		typeCase{"bit15", "input", "bool", "", "bit = 15", []int64{0x7FFF}, sdk.Bool(false)},
		typeCase{"regbool", "holding", "bool", "", "", []int64{0x0100}, sdk.Bool(true)},
		typeCase{"coil_on", "coil", "bool", "", "", []int64{1}, sdk.Bool(true)},
		typeCase{"coil_off", "coil", "bool", "", "", []int64{0}, sdk.Bool(false)},
		typeCase{"di_on", "discrete", "", "", "", []int64{1}, sdk.Bool(true)},
		typeCase{"scaled", "holding", "int16", "", "scale = 0.1\noffset = 5.0", wire(be16(uint16(0xFF06)), "ABCD"), sdk.Float(-250*0.1 + 5)},
		typeCase{"scaled_u32", "holding", "uint32", "CDAB", "scale = 0.001", wire(be32(123456), "CDAB"), sdk.Float(123456 * 0.001)},
	)
	return cs
}

// layout gives every case its own address, leaving gaps so that the
// planner has to merge across them.
func layout(cs []typeCase) (simCfg *modbussim.Config, points string) {
	addr := map[string]int{}
	u := modbussim.UnitConfig{ID: 7}
	var b strings.Builder
	for _, c := range cs {
		a := addr[c.area]
		addr[c.area] = a + len(c.raw) + 1 // one unused register/bit between points
		u.Registers = append(u.Registers, modbussim.RegisterConfig{Area: c.area, Address: a, Raw: c.raw})
		fmt.Fprintf(&b, "[[devices.points]]\nname = %q\narea = %q\naddress = %d\n", c.name, c.area, a)
		if c.typ != "" {
			fmt.Fprintf(&b, "type = %q\n", c.typ)
		}
		if c.order != "" {
			fmt.Fprintf(&b, "byte_order = %q\n", c.order)
		}
		if c.extra != "" {
			b.WriteString(c.extra + "\n")
		}
	}
	return &modbussim.Config{Units: []modbussim.UnitConfig{u}}, b.String()
}

func gather(t *testing.T, p sdk.Plugin) *sdk.Frame {
	t.Helper()
	f, err := p.(sdk.Input).Gather(context.Background())
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	return f
}

func byName(b sdk.Batch) map[string]sdk.Point {
	m := map[string]sdk.Point{}
	for _, p := range b.Points {
		m[p.Name] = p
	}
	return m
}

func checkTypes(t *testing.T, listen string, extraConn string) {
	cs := typeCases()
	simCfg, points := layout(cs)
	s := startSim(t, listen, simCfg)
	conf := fmt.Sprintf("url = %q\ntimeout = \"500ms\"\n%s\n[[devices]]\nname = \"dev\"\nunit_id = 7\n%s", s.Addr(), extraConn, points)
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		resp := sdktest.Init(t, p, conf)
		if len(resp.Points) != len(cs) {
			t.Fatalf("schemas: %d, want %d", len(resp.Points), len(cs))
		}
		before := s.Requests(7)
		f := gather(t, p)
		if len(f.Batches) != 1 || f.Batches[0].Device != "dev" {
			t.Fatalf("batches: %+v", f.Batches)
		}
		// Gaps of one register are far below max_gap: one read per area,
		// except holding whose 4 x 34 registers need two reads of at most
		// 125. Five requests in all.
		if n := s.Requests(7) - before; n != 5 {
			t.Errorf("the poll took %d requests, want 5", n)
		}
		got := byName(f.Batches[0])
		for _, c := range cs {
			pt, ok := got[c.name]
			if !ok {
				t.Errorf("%s: not reported", c.name)
				continue
			}
			if pt.Quality != sdk.QualityGood || !pt.Value.Equal(c.want) {
				t.Errorf("%s (%s %s %s, raw %04x): got %#v %s, want %#v", c.name, c.area, c.typ, c.order, c.raw, pt.Value, pt.Quality, c.want)
			}
		}
	})
}

func TestTypesOverTCP(t *testing.T) { checkTypes(t, "tcp://127.0.0.1:0", "") }

func TestTypesOverRTUOnPTY(t *testing.T) {
	checkTypes(t, "rtu://pty", "baud_rate = 115200\nparity = \"none\"\nstop_bits = 1")
}

func TestTypesOverRTUOverTCP(t *testing.T) { checkTypes(t, "rtuovertcp://127.0.0.1:0", "") }

// TestSampleAgainstDemoSimulator: the sample configuration reads the demo
// simulator with every point good, so `edgepipe demo` and the docs agree.
func TestSampleAgainstDemoSimulator(t *testing.T) {
	s := startSim(t, "tcp://127.0.0.1:0", modbussim.DefaultConfig())
	reg, ok := sdk.Lookup("inputs.modbus")
	if !ok {
		t.Fatal("inputs.modbus is not registered")
	}
	// The core hands the plugin its table without the header and with
	// relative sub-table headers.
	conf := strings.NewReplacer("[[inputs.modbus]]", "", "[[inputs.modbus.devices.points]]", "[[devices.points]]",
		"[[inputs.modbus.devices]]", "[[devices]]", `"tcp://127.0.0.1:5020"`, fmt.Sprintf("%q", s.Addr())).Replace(reg.SampleConfig)
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		resp := sdktest.Init(t, p, conf)
		if resp.Interval != 500*time.Millisecond || len(resp.Points) != 7 {
			t.Fatalf("interval %v, %d points", resp.Interval, len(resp.Points))
		}
		f := gather(t, p)
		got := byName(f.Batches[0])
		for _, pt := range f.Batches[0].Points {
			if pt.Quality != sdk.QualityGood {
				t.Errorf("%s: %s", pt.Name, pt.Quality)
			}
		}
		if v := got["name"].Value; !v.Equal(sdk.String("edgepipe-sim")) {
			t.Errorf("name %#v", v)
		}
		if v := got["setpoint"].Value.FloatValue(); v != 75 {
			t.Errorf("setpoint %v", v)
		}
		if v := got["temperature"].Value.FloatValue(); v < 18 || v > 26 {
			t.Errorf("temperature %v", v)
		}
	})
}
