package alarm

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/fbox"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// clock is shared by the test and the plugin (which, in gRPC mode, runs on
// the server's goroutines).
type clock = sdktest.Clock

const t0 = 1732600000000 // ms

func newClock() *clock { return sdktest.NewClock(time.UnixMilli(t0)) }

func factory(c *clock) func() sdk.Plugin {
	return func() sdk.Plugin {
		a := New()
		a.now = c.Now
		a.log = slog.New(slog.DiscardHandler) // evaluation failures are expected in some tests
		return a
	}
}

// registry is the point registry the tests' rules are checked against.
var registry = []sdk.PointSchema{
	{Device: "plc1", Name: "temperature", Kind: sdk.KindFloat},
	{Device: "plc1", Name: "pressure", Kind: sdk.KindFloat},
	{Device: "plc1", Name: "counter", Kind: sdk.KindUint},
	{Device: "plc1", Name: "running", Kind: sdk.KindBool},
	{Device: "plc1", Name: "mode", Kind: sdk.KindString},
	{Device: "plc1", Name: "setpoint", Kind: sdk.KindFloat, Access: sdk.AccessSub},
	{Device: "plc2", Name: "flow", Kind: sdk.KindFloat},
	{Device: "plc2", Name: "any"}, // kind unknown (KindNone)
	{Device: "cam1", Name: "capture", Kind: sdk.KindBool, Access: sdk.AccessSub},
}

func request(conf string) *sdk.InitRequest {
	req := sdktest.Request(conf)
	req.Points = registry
	return req
}

func initAlarm(t *testing.T, p sdk.Plugin, conf string) *sdk.InitRequest {
	t.Helper()
	req := request(conf)
	if _, err := p.Init(context.Background(), req); err != nil {
		t.Fatalf("Init: %v", err)
	}
	return req
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

// reading is one point reading at a time in seconds after t0.
type reading struct {
	at    float64 // seconds after t0
	point string  // "device.point"
	v     sdk.Value
	q     sdk.Quality
}

func frameOf(rs ...reading) *sdk.Frame {
	f := &sdk.Frame{}
	for _, r := range rs {
		dev, name, _ := strings.Cut(r.point, ".")
		ts := t0 + int64(r.at*1000)
		if n := len(f.Batches); n == 0 || f.Batches[n-1].Device != dev {
			f.Batches = append(f.Batches, sdk.Batch{Device: dev, TS: ts})
		}
		b := &f.Batches[len(f.Batches)-1]
		b.Points = append(b.Points, sdk.Point{Name: name, Value: r.v, Quality: r.q, TS: ts})
	}
	return f
}

// events formats alarms as "rule:state" joined by spaces.
func events(f *sdk.Frame) string {
	var s []string
	for _, a := range f.Alarms {
		s = append(s, a.Rule+":"+a.State)
	}
	return strings.Join(s, " ")
}

var (
	good = sdk.QualityGood
	bad  = sdk.QualityBad
	unc  = sdk.QualityUncertain
	F    = sdk.Float
	I    = sdk.Int
	U    = sdk.Uint
	B    = sdk.Bool
	S    = sdk.String
)

const boiler = `
[[rules]]
name = "boiler_overheat"
point = "plc1.temperature"
condition = "value > 90"
clear = "value < 85"
level = "critical"
message = "Boiler at ${value} degC"
`

type step struct {
	rs   []reading
	want string // events, "rule:state ..."
}

func r(at float64, point string, v sdk.Value) reading { return reading{at, point, v, good} }
func rq(at float64, point string, v sdk.Value, q sdk.Quality) reading {
	return reading{at, point, v, q}
}
func st(want string, rs ...reading) step { return step{rs, want} }

func TestRules(t *testing.T) {
	const T = "plc1.temperature"
	cases := []struct {
		name  string
		conf  string
		steps []step
	}{
		{"raise and clear with hysteresis", boiler, []step{
			st("", r(0, T, F(80))),
			st("boiler_overheat:raised", r(1, T, F(93.2))),
			st("", r(2, T, F(95))), // no second raised
			st("", r(3, T, F(88))), // between clear and condition: stays raised
			st("", r(4, T, F(91))),
			st("boiler_overheat:cleared", r(5, T, F(84.9))),
			st("", r(6, T, F(86))), // not above 90: stays clear
			st("boiler_overheat:raised", r(7, T, F(90.5))),
		}},
		{"default clear is not condition", `
[[rules]]
name = "hot"
point = "plc1.temperature"
condition = "value > 90"`, []step{
			st("hot:raised", r(0, T, F(91))),
			st("", r(1, T, F(90.5))),
			st("hot:cleared", r(2, T, F(90))),
		}},
		{"delay: must hold continuously", boiler + `delay = "5s"`, []step{
			st("", r(0, T, F(91))),
			st("", r(4, T, F(92))),
			st("", r(4.5, T, F(89))), // interrupted: the wait restarts
			st("", r(5, T, F(91))),
			st("", r(9.999, T, F(91))),
			st("boiler_overheat:raised", r(10, T, F(91))),
			st("boiler_overheat:cleared", r(11, T, F(80))), // clearing has no delay
		}},
		{"delay: a clock set back restarts the wait", boiler + `delay = "5s"`, []step{
			st("", r(100, T, F(91))),
			st("", r(50, T, F(91))),
			st("", r(54, T, F(91))),
			st("boiler_overheat:raised", r(55, T, F(91))),
		}},
		{"bad quality neither raises nor clears", boiler, []step{
			st("", rq(0, T, F(99), bad)),
			st("", rq(1, T, sdk.Value{}, bad)),
			st("boiler_overheat:raised", r(2, T, F(99))),
			st("", rq(3, T, F(10), bad)),
			st("", rq(4, T, sdk.Value{}, bad)),
			st("boiler_overheat:cleared", r(5, T, F(10))),
		}},
		{"bad quality does not interrupt a delay", boiler + `delay = "5s"`, []step{
			st("", r(0, T, F(91))),
			st("", rq(3, T, sdk.Value{}, bad)),
			st("boiler_overheat:raised", r(5, T, F(91))),
		}},
		{"uncertain quality is evaluated, quality in expressions", `
[[rules]]
name = "doubt"
point = "plc1.temperature"
condition = "quality == 'uncertain'"`, []step{
			st("", r(0, T, F(1))),
			st("doubt:raised", rq(1, T, F(1), unc)),
			st("", rq(2, T, F(1), bad)),
			st("doubt:cleared", r(3, T, F(1))),
		}},
		{"prev: a jump between readings", `
[[rules]]
name = "jump"
point = "plc1.temperature"
condition = "value - prev > 10"`, []step{
			st("", r(0, T, F(50))), // first reading: prev is value
			st("jump:raised", r(1, T, F(61))),
			st("jump:cleared", r(2, T, F(62))), // the jump is over
			st("", r(3, T, F(62))),
			st("", r(4, T, F(62))),
			st("", rq(5, T, F(100), bad)), // a bad reading is not prev
			st("", r(6, T, F(70))),
			st("jump:raised", r(7, T, F(85))),
		}},
		{"points[]: cross-point condition on the whole frame", `
[[rules]]
name = "dry_run"
point = "plc1.running"
condition = 'value && points["plc2.flow"] < 1.0'
message = "${rule} on ${point} (${level}): ${value}"`, []step{
			st("", r(0, "plc1.running", B(true))), // plc2.flow not yet known
			st("dry_run:raised", r(1, "plc1.running", B(true)), r(1, "plc2.flow", F(0.5))),
			st("", r(2, "plc2.flow", F(5))), // evaluated when its own point is read
			st("dry_run:cleared", r(3, "plc1.running", B(true))),
			st("", r(4, "plc2.flow", F(0)), r(4, "plc1.running", B(false))),
			st("", rq(5, "plc2.flow", F(0), bad), r(5, "plc1.running", B(true))), // referenced point bad: hold
			st("dry_run:raised", r(6, "plc1.running", B(true)), r(6, "plc2.flow", F(0))),
		}},
		{"integers, strings, any kind", `
[[rules]]
name = "count"
point = "plc1.counter"
condition = "value >= 1e6"
[[rules]]
name = "mode"
point = "plc1.mode"
condition = "value in ['fault', 'estop']"
level = "info"
[[rules]]
name = "any"
point = "plc2.any"
condition = "value == true"`, []step{
			st("", r(0, "plc1.counter", U(999999)), r(0, "plc1.mode", S("run")), r(0, "plc2.any", I(1))),
			st("count:raised mode:raised", r(1, "plc1.counter", U(1000000)), r(1, "plc1.mode", S("estop"))),
			st("any:raised", r(2, "plc2.any", B(true))),
			st("mode:cleared any:cleared", r(3, "plc1.mode", S("run")), r(3, "plc2.any", S("x"))),
		}},
		{"runtime errors leave the state unchanged", `
[[rules]]
name = "div"
point = "plc1.temperature"
condition = "10 / value > 1 and int(value) % int(value) == 0"`, []step{
			st("div:raised", r(0, T, F(5))),
			st("", r(1, T, F(0))), // int(0) % int(0): runtime error, stays raised
			st("div:cleared", r(2, T, F(50))),
			st("", r(3, T, S("text"))), // a string where a number was declared: error
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sdktest.Run(t, factory(newClock()), func(t *testing.T, p sdk.Plugin) {
				initAlarm(t, p, c.conf)
				for i, s := range c.steps {
					f := frameOf(s.rs...)
					pts := f.NumPoints()
					out := process(t, p, f)
					if got := events(out); got != s.want {
						t.Fatalf("step %d %v: events %q, want %q", i, s.rs, got, s.want)
					}
					if out.NumPoints() != pts {
						t.Fatalf("step %d: points not passed through: %+v", i, out.Batches)
					}
				}
			})
		})
	}
}

func TestEventFields(t *testing.T) {
	sdktest.Run(t, factory(newClock()), func(t *testing.T, p sdk.Plugin) {
		initAlarm(t, p, boiler+`camera = "cam1"`+"\n"+`
[[rules]]
name = "plain"
point = "plc1.pressure"
condition = "value > 1"`)
		out := process(t, p, frameOf(r(2, "plc1.temperature", F(93.2)), r(2, "plc1.pressure", F(2))))
		want := []sdk.Alarm{
			{TS: t0 + 2000, Rule: "boiler_overheat", Point: "plc1.temperature", Level: "critical", State: "raised",
				Value: F(93.2), Message: "Boiler at 93.2 degC"},
			{TS: t0 + 2000, Rule: "plain", Point: "plc1.pressure", Level: "warning", State: "raised",
				Value: F(2), Message: "plain raised: plc1.pressure = 2"},
		}
		if len(out.Alarms) != len(want) {
			t.Fatalf("alarms %+v", out.Alarms)
		}
		for i, w := range want {
			if g := out.Alarms[i]; g.TS != w.TS || g.Rule != w.Rule || g.Point != w.Point || g.Level != w.Level ||
				g.State != w.State || !g.Value.Equal(w.Value) || g.Message != w.Message {
				t.Errorf("alarm %d:\n got %+v\nwant %+v", i, g, w)
			}
		}
		// The rule with a camera asks for its picture, through the core.
		if len(out.Requests) != 1 || out.Requests[0].Point != "cam1.capture" || !out.Requests[0].Value.Equal(sdk.Bool(true)) {
			t.Fatalf("requests when raised: %+v", out.Requests)
		}
		out = process(t, p, frameOf(r(3, "plc1.temperature", F(80))))
		if len(out.Alarms) != 1 || len(out.Requests) != 0 || out.Alarms[0].Message != "Boiler at 80 degC" {
			t.Fatalf("cleared: %+v %+v", out.Alarms, out.Requests)
		}
	})
}

// A reading without a timestamp is placed by the clock.
func TestDelayByClock(t *testing.T) {
	clk := newClock()
	a := factory(clk)()
	initAlarm(t, a, boiler+`delay = "5s"`)
	hot := func() *sdk.Frame {
		return &sdk.Frame{Batches: []sdk.Batch{{Device: "plc1", Points: []sdk.Point{{Name: "temperature", Value: F(95)}}}}}
	}
	if got := events(process(t, a, hot())); got != "" {
		t.Fatal(got)
	}
	clk.Add(5 * time.Second)
	out := process(t, a, hot())
	if events(out) != "boiler_overheat:raised" || out.Alarms[0].TS != t0+5000 {
		t.Fatalf("%+v", out.Alarms)
	}
}

func TestAck(t *testing.T) {
	sdktest.Run(t, factory(newClock()), func(t *testing.T, p sdk.Plugin) {
		req := initAlarm(t, p, boiler)
		h := p.(sdk.CommandHandler)
		ack := func(payload string) (*sdk.Frame, error) {
			c, _ := fbox.NewTopics("x/", "GW").Parse("x/GW/alarm/ack", []byte(payload), fbox.DefaultMaxCommandSize)
			return h.HandleCommand(context.Background(), c)
		}
		if _, err := ack(`{"id":"a-1","rule":"boiler_overheat"}`); err == nil || err.Error() != "alarm boiler_overheat is not raised" {
			t.Fatalf("ack before raised: %v", err)
		}
		if _, err := ack(`{"id":"a-1","rule":"nope"}`); err == nil || !strings.Contains(err.Error(), "alarm nope is not raised") {
			t.Fatalf("ack of an unknown rule: %v", err)
		}
		for _, bad := range []string{`{"id":"a-1"}`, `not json`, `{"rule":5}`, ``} {
			if _, err := ack(bad); err == nil {
				t.Fatalf("ack %q accepted", bad)
			}
		}
		if _, err := h.HandleCommand(context.Background(), sdk.Command{Kind: sdk.CommandWrite, Points: []sdk.PointWrite{{Name: "a.b", Value: []byte("1")}}}); err == nil {
			t.Fatal("a write command was accepted")
		}
		process(t, p, frameOf(r(1, "plc1.temperature", F(95))))
		f, err := ack(`{"id":"a-2","rule":"boiler_overheat"}`)
		if err != nil || f == nil || len(f.Alarms) != 1 {
			t.Fatalf("ack of a raised alarm: %+v %v", f, err)
		}
		if a := f.Alarms[0]; a.State != "acked" || a.Rule != "boiler_overheat" || a.Level != "critical" ||
			a.Point != "plc1.temperature" || !a.Value.Equal(F(95)) || a.TS != t0 || a.Message != "Boiler at 95 degC" {
			t.Fatalf("acked event: %+v", a)
		}
		if b, _ := req.State.Get("alarm/boiler_overheat"); !strings.Contains(string(b), `"acked":true`) {
			t.Fatalf("ack not persisted: %s", b)
		}
		// Delivered twice (QoS 1): ok again, no second event.
		if f, err := ack(`{"id":"a-2","rule":"boiler_overheat"}`); err != nil || !f.Empty() {
			t.Fatalf("repeated ack: %+v %v", f, err)
		}
		if got := events(process(t, p, frameOf(r(2, "plc1.temperature", F(80))))); got != "boiler_overheat:cleared" {
			t.Fatalf("acked alarm clears: %q", got)
		}
		if _, err := ack(`{"id":"a-3","rule":"boiler_overheat"}`); err == nil {
			t.Fatal("ack after clear accepted")
		}
		if _, ok := req.State.Get("alarm/boiler_overheat"); ok {
			t.Fatal("cleared alarm still in the state")
		}
		// Raised again: it needs a new acknowledgement.
		process(t, p, frameOf(r(3, "plc1.temperature", F(95))))
		if f, err := ack(`{"id":"a-4","rule":"boiler_overheat"}`); err != nil || events(f) != "boiler_overheat:acked" {
			t.Fatalf("ack after re-raise: %+v %v", f, err)
		}
	})
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

func TestStateAcrossRestart(t *testing.T) {
	const conf = boiler + `
[[rules]]
name = "low_pressure"
point = "plc1.pressure"
condition = "value < 1"
[[rules]]
name = "acked_one"
point = "plc2.flow"
condition = "value > 10"
[[rules]]
name = "gone"
point = "plc1.counter"
condition = "value > 10"
`
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			clk := newClock()
			p := m.make(t, clk)
			req := request(conf)
			if _, err := p.Init(context.Background(), req); err != nil {
				t.Fatal(err)
			}
			got := events(process(t, p, frameOf(r(0, "plc1.temperature", F(95)), r(0, "plc1.pressure", F(0.5)),
				r(0, "plc2.flow", F(20)), r(0, "plc1.counter", U(20)))))
			if got != "boiler_overheat:raised low_pressure:raised acked_one:raised gone:raised" {
				t.Fatalf("before restart: %q", got)
			}
			if _, err := p.(sdk.CommandHandler).HandleCommand(context.Background(),
				sdk.Command{Kind: sdk.CommandAck, ID: "1", Rule: "acked_one"}); err != nil {
				t.Fatal(err)
			}
			_ = p.Close(context.Background())

			// Restart with the state the core kept; rule "gone" removed.
			restart := func(conf string) sdk.Plugin {
				p := m.make(t, clk)
				req2 := request(conf)
				req2.State = sdk.NewMemState(req.State.(*sdk.MemState).Snapshot())
				if _, err := p.Init(context.Background(), req2); err != nil {
					t.Fatal(err)
				}
				req = req2
				return p
			}
			p2 := restart(conf[:strings.Index(conf, "[[rules]]\nname = \"gone\"")])
			out := process(t, p2, frameOf(r(10, "plc1.temperature", F(96)), r(10, "plc1.pressure", F(2)),
				r(10, "plc2.flow", F(20))))
			// Still hot: no second raised. Pressure is fine now: the
			// cleared is not lost. The removed rule's alarm is cleared.
			if got := events(out); got != "gone:cleared low_pressure:cleared" {
				t.Fatalf("after restart: %q", got)
			}
			if g := out.Alarms[0]; g.Point != "plc1.counter" || g.Level != "warning" {
				t.Fatalf("orphan cleared: %+v", g)
			}
			// Acknowledged before the restart: still acknowledged.
			f, err := p2.(sdk.CommandHandler).HandleCommand(context.Background(),
				sdk.Command{Kind: sdk.CommandAck, ID: "2", Rule: "acked_one"})
			if err != nil || !f.Empty() {
				t.Fatalf("ack after restart: %+v %v", f, err)
			}
			// The boiler is still raised after the restart: it can be acknowledged, then clears.
			f, err = p2.(sdk.CommandHandler).HandleCommand(context.Background(),
				sdk.Command{Kind: sdk.CommandAck, ID: "3", Rule: "boiler_overheat"})
			if err != nil || events(f) != "boiler_overheat:acked" {
				t.Fatalf("ack of a restored alarm: %+v %v", f, err)
			}
			_ = p2.Close(context.Background())
			// A second restart: the orphan is not cleared twice.
			p3 := restart(conf)
			if got := events(process(t, p3, frameOf(r(20, "plc1.temperature", F(50)), r(20, "plc2.flow", F(20))))); got != "boiler_overheat:cleared" {
				t.Fatalf("after second restart: %q", got)
			}
			keys := req.State.Keys()
			if len(keys) != 1 || keys[0] != "alarm/acked_one" {
				t.Fatalf("state keys %v", keys)
			}
		})
	}
}

// A restored alarm whose rule now watches another point is cleared for
// the old point; the rule starts afresh on the new one.
func TestRestoreRuleMovedToAnotherPoint(t *testing.T) {
	st := sdk.NewMemState(map[string][]byte{
		"alarm/boiler_overheat": []byte(`{"point":"plc1.pressure","level":"info","since":1}`),
		"alarm/broken":          []byte(`{not json`),
		"other":                 []byte("keep"),
	})
	a := factory(newClock())()
	req := request(boiler)
	req.State = st
	if _, err := a.Init(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	out := process(t, a, nil)
	if len(out.Alarms) != 1 || out.Alarms[0].Point != "plc1.pressure" || out.Alarms[0].State != "cleared" || out.Alarms[0].Level != "info" {
		t.Fatalf("%+v", out.Alarms)
	}
	if got := events(process(t, a, frameOf(r(1, "plc1.temperature", F(95))))); got != "boiler_overheat:raised" {
		t.Fatalf("%q", got)
	}
	if _, ok := st.Get("alarm/broken"); ok {
		t.Error("unreadable key kept")
	}
	if v, _ := st.Get("other"); string(v) != "keep" {
		t.Error("foreign key touched")
	}
}

// State is written in the call that changes an alarm, and only then.
func TestStateWrittenOnChangeOnly(t *testing.T) {
	a := factory(newClock())()
	req := initAlarm(t, a, boiler)
	st := req.State.(*sdk.MemState)
	st.TakeChanges()
	for i, c := range []struct {
		v    float64
		want int
	}{{80, 0}, {95, 1}, {96, 0}, {88, 0}, {80, 1}, {80, 0}} {
		process(t, a, frameOf(r(float64(i), "plc1.temperature", F(c.v))))
		if ch := st.TakeChanges(); len(ch) != c.want {
			t.Fatalf("reading %v: %d keys written, want %d", c.v, len(ch), c.want)
		}
	}
}

func TestEvaluationErrorsCounted(t *testing.T) {
	a := factory(newClock())()
	initAlarm(t, a, `
[[rules]]
name = "r"
point = "plc2.any"
condition = "value > 1"`)
	for i, v := range []sdk.Value{S("x"), B(true), {}, F(2)} {
		process(t, a, frameOf(r(float64(i), "plc2.any", v)))
	}
	h, _ := a.(*Alarm).Health(context.Background())
	if h.Counters["evaluation_errors"] != 3 || h.Counters["alarms_raised"] != 1 {
		t.Fatalf("counters %v", h.Counters)
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		conf string
		want []string
	}{
		{`
[[rules]]
name = "a"
point = "plc1.temperature"
condition = "value >"`, []string{`test.toml:5: rules[0].condition: does not compile: unexpected token EOF (column 7)`}},
		{`
[[rules]]
name = "a"
point = "plc1.nope"
condition = "value > 1"
[[rules]]
name = "a"
point = "plc1.setpoint"
condition = "value > 1"
level = "fatal"`, []string{
			`test.toml:4: rules[0].point: no point "plc1.nope" among the inputs' points`,
			`test.toml:7: rules[1].name: "a" is used by another rule`,
			`test.toml:10: rules[1].level: "fatal": want info, warning or critical`,
			`test.toml:8: rules[1].point: point "plc1.setpoint" is not read (access = sub)`,
		}},
		{`
[[rules]]
name = "a"
point = "plc1.temperature"
condition = 'value > 1 && points["plc9.x"] > 2'
clear = 'points["plc1.setpoint"] < 1'`, []string{
			`test.toml:5: rules[0].condition: points["plc9.x"]: no such point`,
			`test.toml:6: rules[0].clear: points["plc1.setpoint"] is not read (access = sub)`,
		}},
		{`
[[rules]]
name = "a"
point = "plc1.temperature"
condition = 'len(points) > 0'
[[rules]]
name = "b"
point = "plc1.temperature"
condition = 'points["plc1." + "x"] > 0'`, []string{
			`test.toml:5: rules[0].condition: points must be indexed by a quoted point name`,
			`test.toml:9: rules[1].condition: points must be indexed by a quoted point name`,
		}},
		{`
[[rules]]
name = "a"
point = "plc1.temperature"
condition = 'value + 1'
[[rules]]
name = "b"
point = "plc1.mode"
condition = 'value > 1'
[[rules]]
name = "c"
point = "plc1.running"

condition = 'value && frobnicate(1)'`, []string{
			`test.toml:5: rules[0].condition: does not compile: expected bool, but got float64`,
			`test.toml:9: rules[1].condition: does not compile: invalid operation: > (mismatched types string and int)`,
			`test.toml:14: rules[2].condition: does not compile: unknown name frobnicate (column 10)`,
		}},
		{`
[[rules]]
point = "plc1.temperature"
message = "at ${Value}"
camera = "cam9"`, []string{
			`test.toml:2: rules[0].name: is missing`,
			`test.toml:4: rules[0].message: unknown placeholder ${Value}`,
			`test.toml:5: rules[0].camera: no camera input named "cam9"`,
			`test.toml:2: rules[0].condition: is missing`,
		}},
		{`
[[rules]]
name = "a"
point = "plc1.temperature"
condition = "value > 1"
delay = "soon"`, []string{`test.toml:6: rules[0].delay: duration "soon"`}},
		{`
[[rules]]
name = "a"
pointt = "plc1.temperature"`, []string{`test.toml:4: rules[0].pointt: unknown key`}},
	}
	for _, c := range cases {
		sdktest.Run(t, func() sdk.Plugin { return New() }, func(t *testing.T, p sdk.Plugin) {
			_, err := p.Init(context.Background(), request(c.conf))
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

func TestNoRulesIsFine(t *testing.T) {
	a := New()
	initAlarm(t, a, "")
	f := frameOf(r(0, "plc1.temperature", F(1)))
	if out := process(t, a, f); out.NumPoints() != 1 || len(out.Alarms) != 0 {
		t.Fatalf("%+v", out)
	}
}

func TestRegisteredWithSample(t *testing.T) {
	reg, ok := sdk.Lookup("processors.alarm")
	if !ok || reg.SampleConfig == "" || reg.Description == "" {
		t.Fatalf("registration: %+v", reg)
	}
	// The sample, less its header, is a valid configuration against the
	// modbus sample's points.
	body := strings.Replace(reg.SampleConfig, "[[processors.alarm]]", "", 1)
	body = strings.ReplaceAll(body, "[[processors.alarm.rules]]", "[[rules]]")
	initAlarm(t, New(), body)
	// Its camera line, uncommented, is accepted when a camera "cam1" (a
	// device with a capture point) is configured.
	initAlarm(t, New(), strings.Replace(body, "# camera", "camera", 1))
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

func ExampleAlarm_Process() {
	a := New()
	req := sdktest.Request(boiler)
	req.Points = []sdk.PointSchema{{Device: "plc1", Name: "temperature", Kind: sdk.KindFloat}}
	if _, err := a.Init(context.Background(), req); err != nil {
		panic(err)
	}
	for _, v := range []float64{80, 93.2, 88, 84} {
		f := &sdk.Frame{Batches: []sdk.Batch{{Device: "plc1", TS: 1, Points: []sdk.Point{{Name: "temperature", Value: sdk.Float(v)}}}}}
		f, _ = a.Process(context.Background(), f)
		for _, al := range f.Alarms {
			fmt.Println(al.State, al.Level, al.Message)
		}
	}
	// Output:
	// raised critical Boiler at 93.2 degC
	// cleared critical Boiler at 84 degC
}
