package s7_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/plugins/inputs/s7"
	"github.com/edgepipe/edgepipe/plugins/inputs/s7/internal/snap7test"
	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

func factory() sdk.Plugin { return &s7.S7{} }

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func gather(t *testing.T, p sdk.Plugin) map[string]sdk.Point {
	t.Helper()
	f, err := p.(sdk.Input).Gather(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Batches) != 1 {
		t.Fatalf("%d batches", len(f.Batches))
	}
	out := map[string]sdk.Point{}
	for _, pt := range f.Batches[0].Points {
		out[pt.Name] = pt
	}
	return out
}

// point is one configured point and what the PLC's memory makes of it.
type point struct {
	name, address, typ, extra string
	want                      sdk.Value
}

// memory lays out a value of every type, written on the server side from
// byte images composed here, independently of the plugin's codec.
func memory(s *snap7test.Server) []point {
	s.Set("DB", 1, 0, []byte{0b0010_0100})                       // DBX0.2, DBX0.5
	s.Set("DB", 1, 1, []byte{0xFE})                              // byte
	s.Set("DB", 1, 2, be16(0xBEEF))                              // word
	s.Set("DB", 1, 4, be32(0xDEADBEEF))                          // dword
	s.Set("DB", 1, 8, be16(uint16(0x10000-1234)))                // int -1234
	s.Set("DB", 1, 10, be32(uint32(0x100000000-123456789)))      // dint -123456789
	s.Set("DB", 1, 14, be32(math.Float32bits(22.1)))             // real
	s.Set("DB", 1, 18, be64(math.Float64bits(-1.0000000000001))) // lreal
	s.Set("DB", 1, 26, be32(math.Float32bits(float32(math.Inf(1)))))
	s.Set("DB", 1, 30, append([]byte{10, 5}, "Hello-garbage"...)) // STRING[10] = "Hello"
	s.Set("DB", 1, 50, []byte{4, 4, 'G', 0xE4, 'r', 't'})         // STRING[4] in ISO 8859-1
	s.Set("DB", 1, 60, be16(755))                                 // scaled
	s.Set("DB", 1, 700, append([]byte{254, 254}, strings.Repeat("x", 254)...))
	s.Set("M", 0, 0, []byte{0b0000_1000, 0x7F})
	s.Set("M", 0, 20, be16(0x1234))
	s.Set("M", 0, 30, be32(0xFFFFFFFF))
	s.Set("I", 0, 0, []byte{0x01})
	s.Set("I", 0, 4, be16(0x8000))
	s.Set("Q", 0, 1, []byte{0x80})
	s.Set("Q", 0, 8, be32(math.Float32bits(-0.5)))
	return []point{
		{"x2", "DB1.DBX0.2", "", "", sdk.Bool(true)},
		{"x3", "DB1.DBX0.3", "bool", "", sdk.Bool(false)},
		{"x5", "db1.dbx0.5", "", "", sdk.Bool(true)},
		{"b", "DB1.DBB1", "byte", "", sdk.Uint(0xFE)},
		{"w", "DB1.DBW2", "", "", sdk.Uint(0xBEEF)},
		{"dw", "DB1.DBD4", "dword", "", sdk.Uint(0xDEADBEEF)},
		{"i", "DB1.DBW8", "int", "", sdk.Int(-1234)},
		{"di", "DB1.DBD10", "dint", "", sdk.Int(-123456789)},
		{"r", "DB1.DBD14", "real", "", sdk.Float(22.1)},
		{"lr", "DB1.DBB18", "lreal", "", sdk.Float(-1.0000000000001)},
		{"inf", "DB1.DBD26", "real", "", sdk.Float(math.Inf(1))},
		{"s", "DB1.DBB30", "string", "length = 10", sdk.String("Hello")},
		{"latin", "DB1.DBB50", "string", "length = 4", sdk.String("Gärt")},
		{"scaled", "DB1.DBW60", "word", "scale = 0.1\noffset = -10.0", sdk.Float(755*0.1 - 10)},
		{"long", "DB1.DBB700", "string", "", sdk.String(strings.Repeat("x", 254))},
		{"m03", "M0.3", "", "", sdk.Bool(true)},
		{"mx04", "MX0.4", "", "", sdk.Bool(false)},
		{"mb1", "MB1", "", "", sdk.Uint(0x7F)},
		{"mw20", "MW20", "int", "", sdk.Int(0x1234)},
		{"md30", "MD30", "dint", "", sdk.Int(-1)},
		{"i00", "I0.0", "", "", sdk.Bool(true)},
		{"e01", "E0.1", "", "", sdk.Bool(false)},
		{"iw4", "IW4", "int", "", sdk.Int(-32768)},
		{"q17", "Q1.7", "", "", sdk.Bool(true)},
		{"ad8", "AD8", "real", "", sdk.Float(-0.5)},
		{"counter", "DB2.DBD0", "", "", sdk.Value{}}, // changes: checked apart
	}
}

func config(addr, extra string, pts []point) string {
	var b strings.Builder
	if !strings.Contains(extra, "timeout") {
		extra += "\ntimeout = \"5s\""
	}
	if !strings.Contains(extra, "interval") {
		extra += "\ninterval = \"50ms\""
	}
	fmt.Fprintf(&b, "device = \"plc\"\naddress = %q\nrack = 0\nslot = 1\n%s\n", addr, extra)
	for _, p := range pts {
		fmt.Fprintf(&b, "[[points]]\nname = %q\naddress = %q\n", p.name, p.address)
		if p.typ != "" {
			fmt.Fprintf(&b, "type = %q\n", p.typ)
		}
		if p.extra != "" {
			b.WriteString(p.extra + "\n")
		}
	}
	return b.String()
}

// TestReadEveryType reads a value of every type from the snap7 server,
// exactly, with the default PDU and with the smallest one and no merging
// over gaps (more requests, a 256-byte string split over two items).
func TestReadEveryType(t *testing.T) {
	for _, extra := range []string{"", "pdu_size = 240\nmax_gap = 0"} {
		t.Run(strings.ReplaceAll(extra, "\n", ","), func(t *testing.T) {
			srv := snap7test.Start(t)
			pts := memory(srv)
			srv.Count("DB", 2, 0)
			sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
				resp := sdktest.Init(t, p, config(srv.Addr(), extra, pts))
				if resp.Interval != 50*time.Millisecond || len(resp.Points) != len(pts) {
					t.Fatalf("init: %+v", resp)
				}
				got := gather(t, p)
				for _, w := range pts {
					g, ok := got[w.name]
					switch {
					case !ok:
						t.Errorf("%s not reported", w.name)
					case g.Quality != sdk.QualityGood:
						t.Errorf("%s (%s): quality %s", w.name, w.address, g.Quality)
					case w.want.IsValid() && !g.Value.Equal(w.want):
						t.Errorf("%s (%s): %#v, want %#v", w.name, w.address, g.Value, w.want)
					}
				}
				// The counter changes between polls.
				first := got["counter"].Value
				deadline := time.Now().Add(20 * time.Second)
				for got["counter"].Value.Equal(first) {
					if time.Now().After(deadline) {
						t.Fatalf("counter stuck at %v", first)
					}
					time.Sleep(10 * time.Millisecond)
					got = gather(t, p)
				}
			})
		})
	}
}

const writeConf = `
[[points]]
name = "x"
address = "DB1.DBX100.3"
access = "sub"
[[points]]
name = "b"
address = "DB1.DBB101"
access = "pubsub"
[[points]]
name = "i"
address = "DB1.DBW102"
type = "int"
access = "pubsub"
[[points]]
name = "dw"
address = "DB1.DBD104"
access = "sub"
[[points]]
name = "di"
address = "DB1.DBD108"
type = "dint"
access = "sub"
[[points]]
name = "r"
address = "DB1.DBD112"
type = "real"
access = "sub"
[[points]]
name = "lr"
address = "DB1.DBB116"
type = "lreal"
access = "sub"
[[points]]
name = "s"
address = "DB1.DBB124"
type = "string"
length = 8
access = "pubsub"
[[points]]
name = "sp"
address = "DB1.DBW140"
scale = 0.1
offset = -10.0
access = "pubsub"
[[points]]
name = "m"
address = "M5.0"
access = "pubsub"
[[points]]
name = "ro"
address = "MW6"
`

// TestWrite writes every type, reads the bytes back on the server side,
// and checks the refusals: read-only, unknown, out of range, too long.
func TestWrite(t *testing.T) {
	srv := snap7test.Start(t)
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		srv.Set("DB", 1, 100, []byte{0b1000_0001})
		srv.Set("DB", 1, 124, []byte{8, 0})
		srv.Set("M", 0, 5, []byte{0b1111_0000})
		sdktest.Init(t, p, config(srv.Addr(), "", nil)+writeConf)
		reqs := []sdk.WriteRequest{
			{Device: "plc", Name: "x", Value: sdk.Bool(true)},
			{Device: "plc", Name: "b", Value: sdk.Uint(200)},
			{Device: "plc", Name: "i", Value: sdk.Int(-2)},
			{Device: "plc", Name: "dw", Value: sdk.Uint(0xCAFEBABE)},
			{Device: "plc", Name: "di", Value: sdk.Int(math.MinInt32)},
			{Device: "plc", Name: "r", Value: sdk.Float(2.5)},
			{Device: "plc", Name: "lr", Value: sdk.Float(math.Pi)},
			{Device: "plc", Name: "s", Value: sdk.String("Größe")},
			{Device: "plc", Name: "sp", Value: sdk.Float(65.5)}, // raw (65.5+10)/0.1 = 755
			{Device: "plc", Name: "m", Value: sdk.Int(1)},
			// Refused, each with its reason; the good ones still go through.
			{Device: "plc", Name: "ro", Value: sdk.Int(1)},
			{Device: "plc", Name: "nope", Value: sdk.Int(1)},
			{Device: "plc", Name: "b", Value: sdk.Int(256)},
			{Device: "plc", Name: "i", Value: sdk.Float(1.5)},
			{Device: "plc", Name: "s", Value: sdk.String("too long!")},
			{Device: "plc", Name: "s", Value: sdk.String("€")},
			{Device: "plc", Name: "r", Value: sdk.Float(1e39)},
			{Device: "plc", Name: "x", Value: sdk.Int(2)},
			{Device: "other", Name: "b", Value: sdk.Int(1)},
		}
		res, err := p.(sdk.Writer).Write(context.Background(), reqs)
		if err != nil {
			t.Fatal(err)
		}
		wantErr := map[int]string{10: "read-only", 11: "no such point", 12: "out of the byte range",
			13: "not an integer", 14: "does not fit STRING[8]", 15: "no S7 (ISO 8859-1) code",
			16: "out of the real (float32) range", 17: "want true, false, 0 or 1", 18: "no such point"}
		for i, r := range res {
			want, bad := wantErr[i]
			switch {
			case !bad && r.Error != "":
				t.Errorf("write %d (%s): %s", i, reqs[i].Name, r.Error)
			case bad && !strings.Contains(r.Error, want):
				t.Errorf("write %d (%s = %v): error %q, want it to say %q", i, reqs[i].Name, reqs[i].Value, r.Error, want)
			case bad && !strings.Contains(r.Error, reqs[i].Device+"."+reqs[i].Name):
				t.Errorf("write %d: error %q does not name the point", i, r.Error)
			}
		}
		check := func(what string, got, want []byte) {
			t.Helper()
			if string(got) != string(want) {
				t.Errorf("%s: server holds % x, want % x", what, got, want)
			}
		}
		check("x (bit 3, other bits kept)", srv.Get("DB", 1, 100, 1), []byte{0b1000_1001})
		check("b", srv.Get("DB", 1, 101, 1), []byte{200})
		check("i", srv.Get("DB", 1, 102, 2), be16(0xFFFE))
		check("dw", srv.Get("DB", 1, 104, 4), be32(0xCAFEBABE))
		check("di", srv.Get("DB", 1, 108, 4), be32(0x80000000))
		check("r", srv.Get("DB", 1, 112, 4), be32(math.Float32bits(2.5)))
		check("lr", srv.Get("DB", 1, 116, 8), be64(math.Float64bits(math.Pi)))
		check("s (max kept, len, ISO 8859-1)", srv.Get("DB", 1, 124, 7), []byte{8, 5, 'G', 'r', 0xF6, 0xDF, 'e'})
		check("sp", srv.Get("DB", 1, 140, 2), be16(755))
		check("m (bit 0, other bits kept)", srv.Get("M", 0, 5, 1), []byte{0b1111_0001})
		check("ro untouched", srv.Get("M", 0, 6, 2), []byte{0, 0})

		// The next poll reports the written values; sub-only points are not
		// reported.
		got := gather(t, p)
		for name, want := range map[string]sdk.Value{"b": sdk.Uint(200), "i": sdk.Int(-2), "s": sdk.String("Größe"),
			"sp": sdk.Float(755*0.1 - 10), "m": sdk.Bool(true)} {
			if !got[name].Value.Equal(want) {
				t.Errorf("%s read back %#v, want %#v", name, got[name].Value, want)
			}
		}
		if _, ok := got["dw"]; ok {
			t.Error("a sub-only point was reported")
		}
	})
}

// TestWriteLongStringSmallPDU: a STRING[254] does not fit one write on a
// 240-byte PDU; it is written in parts, and reads back whole.
func TestWriteLongStringSmallPDU(t *testing.T) {
	srv := snap7test.Start(t)
	long := strings.Repeat("0123456789", 25) + "abcd"
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		srv.Set("DB", 1, 300, []byte{254, 0})
		sdktest.Init(t, p, config(srv.Addr(), "pdu_size = 240", []point{{name: "s", address: "DB1.DBB300", typ: "string", extra: `access = "pubsub"`}}))
		res, err := p.(sdk.Writer).Write(context.Background(), []sdk.WriteRequest{{Device: "plc", Name: "s", Value: sdk.String(long)}})
		if err != nil || res[0].Error != "" {
			t.Fatal(err, res)
		}
		if got := srv.Get("DB", 1, 300, 256); string(got) != string(append([]byte{254, 254}, long...)) {
			t.Fatalf("server holds %q", got)
		}
		if got := gather(t, p)["s"]; !got.Value.Equal(sdk.String(long)) {
			t.Fatalf("read back %+v", got)
		}
	})
}

// TestWriteRefusedByPLC: a write the PLC refuses (past the end of DB2)
// gets the PLC's reason and keeps the connection.
func TestWriteRefusedByPLC(t *testing.T) {
	srv := snap7test.Start(t)
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		sdktest.Init(t, p, config(srv.Addr(), "", []point{{name: "v", address: "DB2.DBW64", extra: `access = "sub"`},
			{name: "ok", address: "DB2.DBW10", extra: `access = "pubsub"`}}))
		res, err := p.(sdk.Writer).Write(context.Background(), []sdk.WriteRequest{
			{Device: "plc", Name: "v", Value: sdk.Int(1)}, {Device: "plc", Name: "ok", Value: sdk.Int(7)}})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(res[0].Error, "plc.v") || !strings.Contains(res[0].Error, "address out of range") || res[1].Error != "" {
			t.Fatalf("%+v", res)
		}
		if got := gather(t, p)["ok"]; !got.Value.Equal(sdk.Uint(7)) {
			t.Fatalf("read back %+v", got)
		}
		if h, _ := p.(sdk.HealthReporter).Health(context.Background()); h.Counters["connects"] != 1 || h.Counters["write_errors"] != 1 {
			t.Fatalf("health %+v: want one connection kept, one write error", h)
		}
	})
}

// TestRestart: a PLC that goes away has its points reported bad, and when
// it is back (a fresh process on the same port, memory cleared) the input
// reconnects by itself and reads the new memory.
func TestRestart(t *testing.T) {
	srv := snap7test.Start(t)
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		srv.Set("DB", 1, 0, be16(1111))
		sdktest.Init(t, p, config(srv.Addr(), `max_backoff = "200ms"`, []point{{name: "v", address: "DB1.DBW0"}}))
		if got := gather(t, p)["v"]; got.Quality != sdk.QualityGood || !got.Value.Equal(sdk.Uint(1111)) {
			t.Fatalf("before: %+v", got)
		}
		srv.Stop()
		if got := gather(t, p)["v"]; got.Quality != sdk.QualityBad {
			t.Fatalf("PLC down, point %+v", got)
		}
		if h, _ := p.(sdk.HealthReporter).Health(context.Background()); h.OK {
			t.Errorf("health OK with the PLC down")
		}
		srv.Restart()
		srv.Set("DB", 1, 0, be16(2222))
		deadline := time.Now().Add(20 * time.Second)
		for {
			got := gather(t, p)["v"]
			if got.Quality == sdk.QualityGood {
				if !got.Value.Equal(sdk.Uint(2222)) {
					t.Fatalf("after restart: %+v", got)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no good value within 20 s of the restart")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if h, _ := p.(sdk.HealthReporter).Health(context.Background()); !h.OK {
			t.Errorf("health after reconnecting: %+v", h)
		}
	})
}

// TestRestartBetweenPolls: a restart between two polls costs no poll: the
// stale connection is replaced at once.
func TestRestartBetweenPolls(t *testing.T) {
	srv := snap7test.Start(t)
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		srv.Set("DB", 1, 0, be16(1))
		sdktest.Init(t, p, config(srv.Addr(), "", []point{{name: "v", address: "DB1.DBW0"}}))
		if got := gather(t, p)["v"]; got.Quality != sdk.QualityGood {
			t.Fatalf("before: %+v", got)
		}
		srv.Restart()
		srv.Set("DB", 1, 0, be16(2))
		if got := gather(t, p)["v"]; got.Quality != sdk.QualityGood || !got.Value.Equal(sdk.Uint(2)) {
			t.Fatalf("first poll after the restart: %+v", got)
		}
	})
}

// TestMergedReadRefused: DB2 is 64 bytes; a point past its end, merged
// with one inside, makes the PLC refuse the merged read. The input then
// reads them one by one: the point inside is good, the other bad.
func TestMergedReadRefused(t *testing.T) {
	srv := snap7test.Start(t)
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		srv.Set("DB", 2, 60, be16(42))
		sdktest.Init(t, p, config(srv.Addr(), "", []point{{name: "in", address: "DB2.DBW60"}, {name: "out", address: "DB2.DBW64"}}))
		deadline := time.Now().Add(20 * time.Second)
		for {
			got := gather(t, p)
			if got["in"].Quality == sdk.QualityGood {
				if !got["in"].Value.Equal(sdk.Uint(42)) || got["out"].Quality != sdk.QualityBad {
					t.Fatalf("%+v", got)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the point inside the DB never read good")
			}
		}
	})
}

// TestUnreachable: nothing listens; the points are bad, Gather does not
// fail, and health says why.
func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		// A long interval: the backoff outlasts the test, however slow.
		sdktest.Init(t, p, config(addr, `interval = "1m"`, []point{{name: "v", address: "MW0"}}))
		for range 3 {
			if got := gather(t, p)["v"]; got.Quality != sdk.QualityBad || got.Value.IsValid() {
				t.Fatalf("%+v", got)
			}
		}
		h, _ := p.(sdk.HealthReporter).Health(context.Background())
		if h.OK || !strings.Contains(h.Reason, addr) || h.Counters["connect_errors"] != 1 {
			t.Fatalf("health %+v (one attempt, then backed off)", h)
		}
	})
}
