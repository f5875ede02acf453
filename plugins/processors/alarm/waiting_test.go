package alarm

import (
	"context"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/plugins/processors/deadband"
	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// tick is one Process call made after moving the clock by dt (seconds):
// a frame of the readings rs (at the clock's time), and the events wanted.
type tick struct {
	dt   float64
	rs   []reading
	want string
}

// runTicks feeds the ticks to p, the plugin's clock moving with them; the
// readings' times are the clock's, as the core stamps them.
func runTicks(t *testing.T, p sdk.Plugin, clk *clock, ticks []tick) []sdk.Alarm {
	t.Helper()
	var all []sdk.Alarm
	at := 0.0
	for i, k := range ticks {
		clk.Add(time.Duration(k.dt * float64(time.Second)))
		at += k.dt
		rs := make([]reading, len(k.rs))
		for j, r := range k.rs {
			r.at = at
			rs[j] = r
		}
		out := process(t, p, frameOf(rs...))
		if got := events(out); got != k.want {
			t.Fatalf("tick %d (%.1fs) %v: events %q, want %q", i, at, k.rs, got, k.want)
		}
		all = append(all, out.Alarms...)
	}
	return all
}

// A rule waiting out its delay is raised at the first frame after the
// delay has passed on the clock, whatever points that frame carries: a
// deadband before the alarm holds back the unchanged readings of the
// rule's point, and "no reading" then means "unchanged within the band",
// so the condition still holds (SPEC section 3's delay, through a chain
// that filters).
func TestDelayPassesOnAnyLaterFrame(t *testing.T) {
	const T, flow = "plc1.temperature", "plc2.flow"
	hot := r(0, T, F(91))
	other := r(0, flow, F(3)) // a point no rule watches: the frame still counts
	cases := []struct {
		name  string
		conf  string
		ticks []tick
	}{
		{"raised on a frame of another point", boiler + `delay = "5s"`, []tick{
			{0, []reading{hot}, ""},
			{2, []reading{other}, ""},
			{2.9, []reading{other}, ""},
			{0.1, []reading{other}, "boiler_overheat:raised"},
			{1, []reading{other}, ""}, // no second raised
			{1, []reading{hot}, ""},
			{1, []reading{r(0, T, F(80))}, "boiler_overheat:cleared"},
		}},
		{"a bad reading holds the wait; the next usable one raises", boiler + `delay = "5s"`, []tick{
			{0, []reading{hot}, ""},
			{1, []reading{rq(0, T, sdk.Value{}, bad)}, ""},
			{5, []reading{other}, ""}, // the point is bad now: not known to hold
			{1, []reading{other}, ""},
			{1, []reading{hot}, "boiler_overheat:raised"},
		}},
		{"a reading where the condition fails restarts the wait", boiler + `delay = "5s"`, []tick{
			{0, []reading{hot}, ""},
			{4, []reading{r(0, T, F(89))}, ""},
			{1, []reading{hot}, ""},
			{4.9, []reading{other}, ""},
			{0.1, []reading{other}, "boiler_overheat:raised"},
		}},
		{"points[] read since: the condition is evaluated again", `
[[rules]]
name = "dry_run"
point = "plc1.running"
condition = 'value && points["plc2.flow"] < 1.0'
delay = "5s"`, []tick{
			{0, []reading{r(0, "plc1.running", B(true)), r(0, flow, F(0.5))}, ""},
			{1, []reading{r(0, flow, F(5))}, ""}, // flowing again; its rule is not evaluated on it
			{4, []reading{r(0, flow, F(5))}, ""}, // delay passed: evaluated, no longer holds
			{5, []reading{r(0, flow, F(0))}, ""}, // the wait ended: no raise without a new start
			{1, []reading{r(0, "plc1.running", B(true))}, ""},
			{5, []reading{r(0, flow, F(0))}, "dry_run:raised"},
		}},
		{"points[] bad: waits for a usable reading", `
[[rules]]
name = "dry_run"
point = "plc1.running"
condition = 'value && points["plc2.flow"] < 1.0'
delay = "5s"`, []tick{
			{0, []reading{r(0, "plc1.running", B(true)), r(0, flow, F(0.5))}, ""},
			{1, []reading{rq(0, flow, sdk.Value{}, bad)}, ""},
			{5, []reading{rq(0, flow, sdk.Value{}, bad)}, ""},
			{1, []reading{r(0, flow, F(0.5))}, "dry_run:raised"},
		}},
		{"evaluated as a repeat of the latest reading: prev is value", `
[[rules]]
name = "jump"
point = "plc1.temperature"
condition = "value - prev > 10"
delay = "1s"`, []tick{
			{0, []reading{r(0, T, F(50))}, ""},
			{1, []reading{r(0, T, F(61))}, ""},
			{1, []reading{other}, ""}, // a steady 61 is no jump, as read by an alarm first
			{1, []reading{r(0, T, F(72))}, ""},
			{1, []reading{r(0, T, F(83))}, "jump:raised"},
		}},
		{"a raised alarm is not cleared by the clock", `
[[rules]]
name = "hot"
point = "plc1.temperature"
condition = "value > 90"
delay = "1s"`, []tick{
			{0, []reading{hot}, ""},
			{1, []reading{other}, "hot:raised"},
			{60, []reading{other}, ""},
			{1, []reading{r(0, T, F(80))}, "hot:cleared"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Run makes the plugin of each mode just before running it:
			// each gets a fresh clock, shared with the test.
			var clk *clock
			fresh := func() sdk.Plugin { clk = newClock(); return factory(clk)() }
			sdktest.Run(t, fresh, func(t *testing.T, p sdk.Plugin) {
				initAlarm(t, p, c.conf)
				runTicks(t, p, clk, c.ticks)
			})
		})
	}
}

// The raised event of a rule whose delay passed without a reading of its
// point carries the time the alarm was decided (the clock's, at that
// frame) and the last usable reading.
func TestDelayPassedEventFields(t *testing.T) {
	clk := newClock()
	a := factory(clk)()
	initAlarm(t, a, boiler+`delay = "5s"`)
	process(t, a, frameOf(r(0, "plc1.temperature", F(93.5))))
	clk.Add(7 * time.Second)
	out := process(t, a, frameOf(r(7, "plc2.flow", F(1))))
	if len(out.Alarms) != 1 {
		t.Fatalf("alarms %+v", out.Alarms)
	}
	if g := out.Alarms[0]; g.State != StateRaised || g.TS != t0+7000 || !g.Value.Equal(F(93.5)) ||
		g.Point != "plc1.temperature" || g.Message != "Boiler at 93.5 degC" {
		t.Fatalf("raised %+v", g)
	}
	if out.NumPoints() != 1 {
		t.Fatalf("points not passed through: %+v", out.Batches)
	}
}

// The chain of the issue: a deadband holding back every unchanged reading
// of the rule's point, before the alarm, on one clock. The alarm is
// raised once the delay has passed, at the next frame that reaches it.
func TestDeadbandBeforeDelayedRule(t *testing.T) {
	clk := newClock()
	db := deadband.New() // on the wall clock: with report = "change" only, time does not matter
	if _, err := db.Init(context.Background(), request(`points = ["plc1.*"]`+"\nabsolute = 1.0")); err != nil {
		t.Fatal(err)
	}
	al := factory(clk)()
	initAlarm(t, al, boiler+`delay = "5s"`)
	raised := 0
	for i := 0; i <= 10; i++ { // one poll a second, the temperature steady above 90
		f := frameOf(r(float64(i), "plc1.temperature", F(95+0.1*float64(i%2))), r(float64(i), "plc2.flow", F(2)))
		f, err := db.Process(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && f.NumPoints() != 1 {
			t.Fatalf("poll %d: the deadband passed %+v", i, f.Batches)
		}
		out := process(t, al, f)
		for _, a := range out.Alarms {
			if a.State == StateRaised {
				raised++
				if i != 5 {
					t.Fatalf("raised at poll %d, want 5 (the delay)", i)
				}
			}
		}
		clk.Add(time.Second)
	}
	if raised != 1 {
		t.Fatalf("raised %d times, want once", raised)
	}
}
