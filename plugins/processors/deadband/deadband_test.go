package deadband

import (
	"context"
	"fmt"
	"math"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// clock is shared by the test and the plugin (which, in gRPC mode, runs on
// the server's goroutines).
type clock = sdktest.Clock

func newClock() *clock { return sdktest.NewClock(time.UnixMilli(1732600000000)) }

func factory(c *clock) func() sdk.Plugin {
	return func() sdk.Plugin {
		d := New()
		d.now = c.Now
		return d
	}
}

func process(t *testing.T, p sdk.Plugin, f *sdk.Frame) *sdk.Frame {
	t.Helper()
	out, err := p.(sdk.Processor).Process(context.Background(), f)
	if err != nil {
		t.Fatalf("Process: %v", err)
	}
	if out == nil {
		return &sdk.Frame{}
	}
	return out
}

func one(device, name string, v sdk.Value, q sdk.Quality) *sdk.Frame {
	return &sdk.Frame{Batches: []sdk.Batch{{Device: device, TS: 1, Points: []sdk.Point{{Name: name, Value: v, Quality: q, TS: 1}}}}}
}

type step struct {
	dt   time.Duration // clock advance before the reading
	v    sdk.Value
	q    sdk.Quality
	want bool // reported
}

var (
	good = sdk.QualityGood
	bad  = sdk.QualityBad
	F    = sdk.Float
	I    = sdk.Int
	U    = sdk.Uint
	B    = sdk.Bool
	S    = sdk.String
)

func TestDecisions(t *testing.T) {
	cases := []struct {
		name  string
		conf  string
		steps []step
	}{
		{"absolute", "absolute = 0.5", []step{
			{0, F(10), good, true}, // first reading is always reported
			{0, F(10.4), good, false},
			{0, F(10.5), good, true},  // >= threshold
			{0, F(10.9), good, false}, // against the last reported 10.5, not 10.4
			{0, F(10.0), good, true},  // down as well as up
			{0, F(10.0), good, false},
		}},
		{"percent", "percent = 10.0", []step{
			{0, F(100), good, true},
			{0, F(109), good, false},
			{0, F(110), good, true},
			{0, F(99.5), good, false}, // 10.5 < 11 (10% of 110)
			{0, F(98), good, true},
			{0, F(-98), good, true},
		}},
		{"percent near zero", "percent = 10.0", []step{
			{0, F(0), good, true},
			{0, F(0), good, false},
			{0, F(math.Copysign(0, -1)), good, false}, // -0 is no change
			{0, F(0.0001), good, true},                // any change from 0
			{0, F(0.0002), good, true},                // 100 %
			{0, F(0.00021), good, false},              // 5 %
		}},
		{"absolute or percent", "absolute = 5.0\npercent = 1.0", []step{
			{0, F(1000), good, true},
			{0, F(1004), good, false},
			{0, F(1005), good, true}, // absolute triggers before 1 % (10)
			{0, I(3), good, true},    // kind changed
			{0, I(7), good, true},    // 4 < 5, but 4 >= 1 % of 3
			{0, I(7), good, false},
		}},
		{"no thresholds: any change", "", []step{
			{0, F(1), good, true},
			{0, F(1), good, false},
			{0, F(1.0000001), good, true},
		}},
		{"large integers exactly", "absolute = 1.0", []step{
			{0, I(1 << 60), good, true},
			{0, I(1<<60 + 1), good, true},
			{0, I(math.MaxInt64), good, true},
			{0, I(math.MinInt64), good, true},
			{0, U(math.MaxUint64), good, true},
			{0, U(math.MaxUint64 - 1), good, true},
			{0, U(math.MaxUint64 - 1), good, false},
		}},
		{"booleans on any change", "absolute = 5.0", []step{
			{0, B(true), good, true},
			{0, B(true), good, false},
			{0, B(false), good, true},
		}},
		{"strings on any change", "absolute = 5.0", []step{
			{0, S("a"), good, true},
			{0, S("a"), good, false},
			{0, S("b"), good, true},
			{0, S(""), good, true},
			{0, S(""), good, false},
		}},
		{"quality changes always", "absolute = 100.0\nreport = \"period\"\nperiod = \"1h\"", []step{
			{0, F(1), good, true},
			{0, F(1), bad, true},
			{0, sdk.Value{}, bad, false},
			{0, F(1), sdk.QualityUncertain, true},
			{0, F(1), good, true},
			{0, F(1), good, false},
		}},
		{"NaN and infinities", "absolute = 1.0", []step{
			{0, F(1), good, true},
			{0, F(math.NaN()), good, true},
			{0, F(math.NaN()), good, false},
			{0, F(1), good, true},
			{0, F(math.Inf(1)), good, true},
			{0, F(math.Inf(1)), good, false},
			{0, F(math.Inf(-1)), good, true},
		}},
		{"period only", "report = \"period\"\nperiod = \"10s\"", []step{
			{0, F(1), good, true},
			{5 * time.Second, F(1000), good, false}, // a change alone does not report
			{5 * time.Second, F(1000), good, true},  // 10 s since the last report
			{9999 * time.Millisecond, F(1), good, false},
			{time.Millisecond, F(1), good, true},
			{-time.Hour, F(1), good, true}, // clock went back: report, restart the period
			{time.Second, F(1), good, false},
		}},
		{"both", "report = \"both\"\nperiod = \"10s\"\nabsolute = 1.0", []step{
			{0, F(1), good, true},
			{4 * time.Second, F(2), good, true}, // change
			{9 * time.Second, F(2), good, false},
			{time.Second, F(2.5), good, true}, // period from the change's report
			{10 * time.Second, F(2.5), good, true},
		}},
		{"change ignores period", "report = \"change\"\nperiod = \"10s\"", []step{
			{0, F(1), good, true},
			{time.Hour, F(1), good, false},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := newClock()
			sdktest.Run(t, factory(clk), func(t *testing.T, p sdk.Plugin) {
				sdktest.Init(t, p, c.conf)
				for i, s := range c.steps {
					clk.Add(s.dt)
					out := process(t, p, one("plc1", "x", s.v, s.q))
					got := out.NumPoints() == 1
					if got != s.want {
						t.Fatalf("step %d (%#v %s): reported %v, want %v", i, s.v, s.q, got, s.want)
					}
					if got && (!out.Batches[0].Points[0].Value.Equal(s.v) || out.Batches[0].Points[0].Quality != s.q) {
						t.Fatalf("step %d: reported point altered: %+v", i, out.Batches[0].Points[0])
					}
				}
			})
		})
	}
}

func TestPassThroughAndFrameShape(t *testing.T) {
	clk := newClock()
	sdktest.Run(t, factory(clk), func(t *testing.T, p sdk.Plugin) {
		sdktest.Init(t, p, "points = [\"plc1.t*\", \"plc2.*\"]\nexclude = [\"plc2.raw\"]\nabsolute = 1.0")
		frame := func(v float64) *sdk.Frame {
			return &sdk.Frame{
				Batches: []sdk.Batch{
					{Device: "plc1", TS: 5, Points: []sdk.Point{
						{Name: "temp", Value: F(v), TS: 5},
						{Name: "pressure", Value: F(v), TS: 6}, // not matched
						{Name: "t2", Value: S("s"), TS: 7},
					}},
					{Device: "plc2", TS: 8, Points: []sdk.Point{
						{Name: "a", Value: F(v), TS: 8},
						{Name: "raw", Value: F(v), TS: 9}, // excluded
					}},
					{Device: "plc3", TS: 10, Points: []sdk.Point{{Name: "temp", Value: F(v), TS: 10}}}, // not matched
				},
				Alarms:   []sdk.Alarm{{Rule: "r", Point: "plc1.temp"}},
				Pictures: []sdk.Picture{{Device: "cam", Data: []byte{1}}},
				Messages: []sdk.Message{{Topic: "t", Payload: []byte("{}")}},
			}
		}
		names := func(f *sdk.Frame) string {
			var s []string
			for _, b := range f.Batches {
				for _, p := range b.Points {
					s = append(s, fmt.Sprintf("%s.%s@%d", b.Device, p.Name, p.TS))
				}
			}
			return strings.Join(s, " ")
		}
		out := process(t, p, frame(1))
		if got, want := names(out), "plc1.temp@5 plc1.pressure@6 plc1.t2@7 plc2.a@8 plc2.raw@9 plc3.temp@10"; got != want {
			t.Fatalf("first frame: %s, want %s", got, want)
		}
		out = process(t, p, frame(1.5))
		if got, want := names(out), "plc1.pressure@6 plc2.raw@9 plc3.temp@10"; got != want {
			t.Fatalf("second frame: %s, want %s", got, want)
		}
		if len(out.Alarms) != 1 || len(out.Pictures) != 1 || len(out.Messages) != 1 {
			t.Fatalf("alarms, pictures, messages must pass untouched: %+v", out)
		}
		f := frame(1.5)
		f.Batches = f.Batches[:1]
		f.Batches[0].Points = f.Batches[0].Points[:1]
		if out := process(t, p, f); len(out.Batches) != 0 {
			t.Fatalf("a batch left without points must be dropped: %+v", out.Batches)
		}
	})
}

// Two instances in a row: the first handles the temperatures, the second
// everything else, which is how per-point settings are written.
func TestInstancesChain(t *testing.T) {
	clk := newClock()
	first, second := factory(clk)(), factory(clk)()
	sdktest.Init(t, first, "points = [\"*.temp\"]\nabsolute = 10.0")
	sdktest.Init(t, second, "points = [\"*\"]\nexclude = [\"*.temp\"]\nabsolute = 0.1")
	run := func(temp, level float64) string {
		f := &sdk.Frame{Batches: []sdk.Batch{{Device: "d", Points: []sdk.Point{{Name: "temp", Value: F(temp)}, {Name: "level", Value: F(level)}}}}}
		f = process(t, second, process(t, first, f))
		var s []string
		for _, b := range f.Batches {
			for _, p := range b.Points {
				s = append(s, p.Name)
			}
		}
		return strings.Join(s, ",")
	}
	for i, c := range []struct {
		temp, level float64
		want        string
	}{{20, 1, "temp,level"}, {25, 1.05, ""}, {25, 1.1, "level"}, {30, 1.1, "temp"}} {
		if got := run(c.temp, c.level); got != c.want {
			t.Errorf("poll %d: reported %q, want %q", i, got, c.want)
		}
	}
}

// modes gives a fresh plugin in each of the two ways the core runs it.
var modes = []struct {
	name string
	make func(t *testing.T, clk *clock) sdk.Plugin
}{
	{sdktest.InProcess, func(t *testing.T, clk *clock) sdk.Plugin { return factory(clk)() }},
	{sdktest.GRPC, func(t *testing.T, clk *clock) sdk.Plugin {
		c := sdktest.Connect(t, factory(clk)())
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		return c
	}},
}

func TestStateSurvivesRestart(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			clk := newClock()
			conf := "report = \"both\"\nabsolute = 1.0\nperiod = \"60s\""
			req := sdktest.Request(conf)
			p := m.make(t, clk)
			if _, err := p.Init(context.Background(), req); err != nil {
				t.Fatal(err)
			}
			// 300 points over three shards, and a string and a bad point.
			f := &sdk.Frame{Batches: []sdk.Batch{{Device: "plc/1"}}}
			for i := range 300 {
				f.Batches[0].Points = append(f.Batches[0].Points, sdk.Point{Name: fmt.Sprint("p", i), Value: F(float64(i))})
			}
			f.Batches[0].Points = append(f.Batches[0].Points,
				sdk.Point{Name: "s", Value: S("héllo")}, sdk.Point{Name: "b", Quality: bad})
			frame := func() *sdk.Frame {
				g := *f
				g.Batches = []sdk.Batch{f.Batches[0]}
				g.Batches[0].Points = append([]sdk.Point(nil), f.Batches[0].Points...)
				return &g
			}
			if n := process(t, p, frame()).NumPoints(); n != 302 {
				t.Fatalf("first poll reported %d", n)
			}
			clk.Add(30 * time.Second)
			// Restart: a new plugin with the state the core kept.
			_ = p.Close(context.Background())
			req2 := sdktest.Request(conf)
			req2.State = sdk.NewMemState(req.State.(*sdk.MemState).Snapshot())
			p2 := m.make(t, clk)
			if _, err := p2.Init(context.Background(), req2); err != nil {
				t.Fatal(err)
			}
			if n := process(t, p2, frame()).NumPoints(); n != 0 {
				t.Fatalf("after restart %d points were reported again", n)
			}
			g := frame()
			g.Batches[0].Points[299].Value = F(298.5) // within the band of 299
			g.Batches[0].Points[298].Value = F(299)   // beyond the band of 298
			if out := process(t, p2, g); out.NumPoints() != 1 || out.Batches[0].Points[0].Name != "p298" {
				t.Fatalf("after restart: %+v", out.Batches)
			}
			clk.Add(30 * time.Second) // 60 s since the first report: the period went on
			g = frame()
			g.Batches[0].Points[298].Value = F(299)
			if n := process(t, p2, g).NumPoints(); n != 301 {
				t.Fatalf("period after restart reported %d, want 301 (p298 was reported 30 s ago)", n)
			}
		})
	}
}

func TestRestoreDropsPointsNoLongerMatched(t *testing.T) {
	clk := newClock()
	st := sdk.NewMemState(nil)
	req := sdktest.Request("")
	req.State = st
	p := factory(clk)()
	if _, err := p.Init(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	f := &sdk.Frame{Batches: []sdk.Batch{{Device: "d", Points: []sdk.Point{{Name: "a", Value: F(1)}, {Name: "b", Value: F(2)}}}}}
	process(t, p, f)
	st.Set("v1/d/x", []byte{1})     // a damaged key
	st.Set("v1/gone/0", []byte{9})  // an unknown version
	st.Set("other", []byte("keep")) // not ours

	req2 := sdktest.Request("points = [\"d.b\"]")
	req2.State = st
	p2 := factory(clk)()
	if _, err := p2.Init(context.Background(), req2); err != nil {
		t.Fatal(err)
	}
	b, _ := st.Get("v1/d/0")
	saved := decodeShard(b)
	if len(saved) != 1 || saved[0].name != "b" || !saved[0].value.Equal(F(2)) {
		t.Fatalf("restored shard: %+v", saved)
	}
	if _, ok := st.Get("v1/d/x"); ok {
		t.Error("damaged key not removed")
	}
	if v, _ := st.Get("other"); string(v) != "keep" {
		t.Error("foreign key touched")
	}
	f = &sdk.Frame{Batches: []sdk.Batch{{Device: "d", Points: []sdk.Point{{Name: "a", Value: F(1)}, {Name: "b", Value: F(2)}}}}}
	if out := process(t, p2, f); out.NumPoints() != 1 || out.Batches[0].Points[0].Name != "a" {
		t.Fatalf("a passes through, b is remembered: %+v", out.Batches)
	}
}

func TestStateWrittenOnlyForReportedShards(t *testing.T) {
	clk := newClock()
	st := sdk.NewMemState(nil)
	req := sdktest.Request("absolute = 1.0")
	req.State = st
	p := factory(clk)()
	if _, err := p.Init(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	f := func(changed int) *sdk.Frame {
		b := sdk.Batch{Device: "d"}
		for i := range 3 * shardSize {
			v := 0.0
			if i == changed {
				v = 5
			}
			b.Points = append(b.Points, sdk.Point{Name: fmt.Sprint(i), Value: F(v)})
		}
		return &sdk.Frame{Batches: []sdk.Batch{b}}
	}
	process(t, p, f(-1))
	if ch := st.TakeChanges(); len(ch) != 3 {
		t.Fatalf("first poll wrote %d shards, want 3", len(ch))
	}
	process(t, p, f(-1))
	if ch := st.TakeChanges(); len(ch) != 0 {
		t.Fatalf("nothing reported, but %d keys written", len(ch))
	}
	process(t, p, f(shardSize+3))
	if ch := st.TakeChanges(); len(ch) != 0 {
		t.Fatalf("saved again within a second: %v", keys(ch))
	}
	clk.Add(time.Second)
	process(t, p, f(-1))
	if ch := st.TakeChanges(); len(ch) != 1 || ch["v1/d/1"] == nil {
		t.Fatalf("one point of shard 1 reported, keys written a second later: %v", keys(ch))
	}
}

func TestCloseSavesWhatIsPending(t *testing.T) {
	clk := newClock()
	st := sdk.NewMemState(nil)
	req := sdktest.Request("absolute = 1.0")
	req.State = st
	p := factory(clk)()
	if _, err := p.Init(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	one := func(v float64) *sdk.Frame {
		return &sdk.Frame{Batches: []sdk.Batch{{Device: "d", Points: []sdk.Point{{Name: "x", Value: F(v)}}}}}
	}
	process(t, p, one(0))
	st.TakeChanges()
	process(t, p, one(5)) // reported, not yet saved
	if ch := st.TakeChanges(); len(ch) != 0 {
		t.Fatalf("saved within a second: %v", keys(ch))
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ch := st.TakeChanges(); len(ch) != 1 {
		t.Fatalf("Close saved %v", keys(ch))
	}
}

func keys(m map[string][]byte) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	return s
}

func TestConfigErrors(t *testing.T) {
	points := []sdk.PointSchema{{Device: "plc1", Name: "temp"}, {Device: "plc1", Name: "cmd", Access: sdk.AccessSub}}
	cases := []struct {
		conf string
		want []string
	}{
		{"report = \"sometimes\"", []string{"test.toml:1: report: \"sometimes\": want change, period or both"}},
		{"\nabsolute = -1.0\npercent = nan", []string{"test.toml:2: absolute: must be a finite number >= 0, got -1", "test.toml:3: percent: must be a finite number >= 0, got NaN"}},
		{"report = \"period\"\n\nperiod = \"0s\"", []string{"test.toml:3: period: must be at least 1ms"}},
		{"\npoints = [\"plc1.[x\"]", []string{"test.toml:2: points[0]: pattern \"plc1.[x\": unclosed ["}},
		{"points = [\"plc1.t*\", \"plc2.*\", \"plc1.cmd\"]", []string{"test.toml:1: points[1]: pattern \"plc2.*\" matches no reported point", "points[2]: pattern \"plc1.cmd\" matches no reported point"}},
		{"points = []", []string{"test.toml:1: points: is empty"}},
		{"absolut = 1.0", []string{"test.toml:1: absolut: unknown key"}},
	}
	for _, c := range cases {
		sdktest.Run(t, func() sdk.Plugin { return New() }, func(t *testing.T, p sdk.Plugin) {
			req := sdktest.Request(c.conf)
			req.Points = points
			_, err := p.Init(context.Background(), req)
			ces := sdk.AsConfigErrors(err)
			if len(ces) != len(c.want) {
				t.Fatalf("%q: got %v, want %d errors", c.conf, err, len(c.want))
			}
			for i, w := range c.want {
				if !strings.Contains(ces[i].Error(), w) {
					t.Errorf("%q: error %d is %q, want it to contain %q", c.conf, i, ces[i].Error(), w)
				}
			}
		})
	}
}

func TestRegisteredWithSample(t *testing.T) {
	r, ok := sdk.Lookup("processors.deadband")
	if !ok || r.SampleConfig == "" || r.Description == "" {
		t.Fatalf("registration: %+v", r)
	}
	// The sample, less its header, is a valid configuration.
	body := strings.Replace(r.SampleConfig, "[[processors.deadband]]", "", 1)
	sdktest.Init(t, New(), body)
}

func TestNoAllocationsPerPoint(t *testing.T) {
	d := New()
	sdktest.Init(t, d, "absolute = 0.5\nreport = \"both\"")
	f := benchFrame(4, 250)
	pts := make([][]sdk.Point, len(f.Batches))
	for i := range f.Batches {
		pts[i] = append([]sdk.Point(nil), f.Batches[i].Points...)
	}
	reset := func() {
		f.Batches = f.Batches[:cap(f.Batches)]
		for i := range f.Batches {
			f.Batches[i].Points = f.Batches[i].Points[:cap(f.Batches[i].Points)]
			copy(f.Batches[i].Points, pts[i])
		}
	}
	_, _ = d.Process(context.Background(), f)
	reset()
	allocs := testing.AllocsPerRun(50, func() {
		reset()
		_, _ = d.Process(context.Background(), f)
	})
	if allocs != 0 {
		t.Fatalf("steady-state Process allocates %v times per call of 1000 points", allocs)
	}
}

func TestReadmeConfigIsSample(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```toml\n(.*?)```").FindSubmatch(readme)
	if m == nil || string(m[1]) != sampleConf {
		t.Fatalf("the README's first toml block must equal sample.conf")
	}
}

// FuzzDecodeShard: a damaged state never panics, and what encodeShard
// writes reads back exactly.
func FuzzDecodeShard(f *testing.F) {
	f.Add([]byte{1}, "name", "str", 1.5, int64(7), uint8(0))
	f.Add([]byte{1, 200, 200, 200}, "", "", math.NaN(), int64(-1), uint8(2))
	f.Fuzz(func(t *testing.T, junk []byte, name, str string, num float64, at int64, q uint8) {
		decodeShard(junk)
		d := New()
		dev := d.device("d")
		vals := []sdk.Value{S(str), F(num), I(at), U(uint64(at)), B(at%2 == 0), {}}
		for i, v := range vals {
			e := dev.entries[dev.add(d, fmt.Sprint(name, i))]
			e.matched, e.seen, e.last, e.quality, e.at = true, true, v, sdk.Quality(q), at+int64(i)
		}
		got := decodeShard(d.encodeShard(nil, dev, 0))
		if len(got) != len(vals) {
			t.Fatalf("decoded %d of %d", len(got), len(vals))
		}
		for i, g := range got {
			if g.name != fmt.Sprint(name, i) || !g.value.Equal(vals[i]) || g.quality != sdk.Quality(q) || g.at != at+int64(i) {
				t.Fatalf("entry %d: %+v", i, g)
			}
		}
	})
}
