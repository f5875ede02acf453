// Package alarm is the processor that turns point readings into alarm
// events, as the FBox alarm reports do: each rule watches one point, raises
// when its condition has held for a delay, clears when its clear condition
// (by default, the condition no longer holding) is met, and is acknowledged
// by the server. Events are appended to the frame's Alarms; points pass
// through untouched, so the template processor after it renders both.
//
// Which alarms are raised (and acknowledged) is kept in the plugin's
// persisted state, written in the call that changes it: a restarted plugin
// or gateway neither raises an alarm twice nor forgets to clear one.
package alarm

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

//go:embed sample.conf
var sampleConf string

func init() {
	sdk.Register(sdk.Registration{
		Kind:         sdk.KindProcessor,
		Name:         "alarm",
		Description:  "raise, clear and acknowledge alarms from rules over point values",
		SampleConfig: sampleConf,
		Factory:      func() sdk.Plugin { return New() },
	})
}

// Config is the processor's TOML table.
type Config struct {
	Rules []RuleConfig `toml:"rules"`
}

// RuleConfig is one [[rules]] table.
type RuleConfig struct {
	Name      string       `toml:"name"`
	Point     string       `toml:"point"`
	Condition string       `toml:"condition"`
	Clear     string       `toml:"clear"`
	Level     string       `toml:"level"`
	Message   string       `toml:"message"`
	Delay     sdk.Duration `toml:"delay"`
	Camera    string       `toml:"camera"`
}

// DefaultLevel applies to a rule without `level`.
const DefaultLevel = "warning"

// Event states, as they appear in sdk.Alarm.State.
const (
	StateRaised  = "raised"
	StateCleared = "cleared"
	StateAcked   = "acked"
)

// Alarm is the processor. The zero value is not usable; call New.
type Alarm struct {
	rules  []*rule
	byName map[string]*rule
	// slots holds the latest reading of every point a rule watches or
	// names in points[...], by device.
	slots map[string]*device
	// env is the expression environment, one map reused for every
	// evaluation: "points" is fixed, "value", "prev" and "quality" are set
	// before each run.
	env    map[string]any
	points map[string]any // env["points"]
	vm     vm.VM

	// orphans are alarms restored as raised whose rule is no longer
	// configured (removed, renamed, or now on another point): they are
	// cleared with the first frame, so the server is not left with an
	// alarm nothing will ever clear.
	orphans []sdk.Alarm

	// now is the clock for readings without a timestamp and for
	// acknowledgements; tests replace it.
	now   func() time.Time
	state sdk.State
	log   *slog.Logger

	// touched collects, during one Process call, the slots read in it.
	touched []*slot
	// waiting is the rules whose condition holds while their delay runs
	// (those with pending set, and some that no longer are, dropped at
	// the next frame): every frame checks them against the clock, see
	// waited.
	waiting []*rule
	// clock is a.now() read at most once per Process call (see tick).
	clock time.Time

	evalErrors, raised, cleared, acked atomic.Uint64
}

// New returns an uninitialised processor using the wall clock.
func New() *Alarm {
	return &Alarm{now: time.Now, log: slog.Default()}
}

var (
	_ sdk.Processor      = (*Alarm)(nil)
	_ sdk.CommandHandler = (*Alarm)(nil)
	_ sdk.HealthReporter = (*Alarm)(nil)
)

// rule is a compiled rule and its live state.
type rule struct {
	name, point, level, camera string
	cond, clear                *vm.Program // clear nil: not cond
	msg                        []segment
	delayMS                    int64
	slot                       *slot   // the watched point
	refs                       []*slot // points named in points[...]

	raised, acked bool
	raisedAt      int64 // ms, when raised (kept in the state)
	pending       bool  // the condition holds, waiting for the delay
	since         int64 // ms, when it started to hold (reading time)
	// waitFrom is the processor's clock when the wait started: the delay
	// also ends on it when no reading of the point comes (see waited).
	waitFrom time.Time
	failing  string
}

// slot is the latest reading of one point, with its value already boxed
// the way expressions see it, so that evaluating several rules over one
// reading boxes it once.
type slot struct {
	full    string
	value   sdk.Value // latest usable (not bad) value
	cur     any       // value as expressions see it
	prev    any       // the usable value before it
	quality sdk.Quality
	ts      int64 // ms of the latest reading
	seen    bool  // a usable value was read
	named   bool  // some rule reads it through points[...]
	touched bool  // read in the current Process call
	rules   []*rule
}

// device is the slots of one device. Devices report their points in the
// same order every poll, so the slot (or its absence) at each position of
// the last batch is remembered: most points are then found without a map
// lookup, which was most of the cost of a frame where few points have
// rules (see BenchmarkProcess).
type device struct {
	byName map[string]*slot
	order  []placed
}

type placed struct {
	name string
	slot *slot // nil: no rule uses this point
}

func (d *device) lookup(pos int, name string) *slot {
	if pos < len(d.order) && d.order[pos].name == name {
		return d.order[pos].slot
	}
	s := d.byName[name]
	for len(d.order) <= pos {
		d.order = append(d.order, placed{})
	}
	// Cloned: the frame's strings must not be kept alive by the cache.
	d.order[pos] = placed{name: strings.Clone(name), slot: s}
	return s
}

// Close has nothing to save: state is written in the call that changes it.
func (a *Alarm) Close(context.Context) error { return nil }

// Process evaluates the rules of the points read in f and appends the
// resulting events to f.Alarms. Points are left as they are.
//
// The frame is read in two passes so that a rule sees, through
// points[...], the values of the whole frame (one poll), not only those
// that happen to come before its point.
func (a *Alarm) Process(_ context.Context, f *sdk.Frame) (*sdk.Frame, error) {
	if len(a.orphans) > 0 {
		if f == nil {
			f = &sdk.Frame{}
		}
		f.Alarms = append(f.Alarms, a.orphans...)
		for _, o := range a.orphans {
			a.state.Set(statePrefix+o.Rule, nil)
		}
		a.cleared.Add(uint64(len(a.orphans)))
		a.orphans = nil
	}
	if f == nil {
		return f, nil
	}
	a.touched = a.touched[:0]
	a.clock = time.Time{}
	var now int64 // read the clock only when a reading has no time
	for bi := range f.Batches {
		b := &f.Batches[bi]
		dev := a.slots[b.Device]
		if dev == nil {
			continue
		}
		for pi := range b.Points {
			p := &b.Points[pi]
			s := dev.lookup(pi, p.Name)
			if s == nil {
				continue
			}
			ts := p.TS
			if ts <= 0 {
				ts = b.TS
			}
			if ts <= 0 {
				if now == 0 {
					now = a.tick().UnixMilli()
				}
				ts = now
			}
			a.update(s, p, ts)
		}
	}
	for _, s := range a.touched {
		for _, r := range s.rules {
			if ev, ok := a.evaluate(r); ok {
				a.emit(f, r, ev)
			}
		}
	}
	a.waited(f)
	for _, s := range a.touched {
		s.touched = false
	}
	clear(a.touched)
	return f, nil
}

// emit appends rule r's event to the frame, with the picture a raised
// alarm of a rule with a camera asks for.
func (a *Alarm) emit(f *sdk.Frame, r *rule, ev sdk.Alarm) {
	f.Alarms = append(f.Alarms, ev)
	if ev.State == StateRaised && r.camera != "" {
		f.Requests = append(f.Requests, captureRequest(r))
	}
}

// tick is the processor's clock for the current Process call, read once.
func (a *Alarm) tick() time.Time {
	if a.clock.IsZero() {
		a.clock = a.now()
	}
	return a.clock
}

// waited raises the rules whose delay has passed on the clock although
// their point was not read in this frame. A reading that does not come
// is one a deadband before the alarm held back as unchanged within its
// band (it always passes a change of quality), or one not polled yet: in
// both, the latest reading stands, so the rule is evaluated again as if
// it had come once more (with the latest points[...]), and raises if the
// condition still holds. Without this, a deadband in front of the alarm
// would stop every delayed rule on a steady value: the wait would start
// on the first reading and no later one would come to end it.
//
// Processors cannot emit on their own (the SDK calls them with frames
// only), so the alarm comes with the first frame of any point after the
// delay, not at the delay itself.
func (a *Alarm) waited(f *sdk.Frame) {
	if len(a.waiting) == 0 {
		return
	}
	kept := a.waiting[:0]
	for _, r := range a.waiting {
		if !r.pending || r.raised {
			continue
		}
		if !r.slot.touched { // evaluated just now otherwise
			if ev, ok := a.evaluateLate(r); ok {
				a.emit(f, r, ev)
			}
		}
		if r.pending {
			kept = append(kept, r)
		}
	}
	clear(a.waiting[len(kept):])
	a.waiting = kept
}

// evaluateLate decides a waiting rule whose point was not read in this
// frame: nothing before the delay has passed on the clock, then the
// condition on the latest readings.
func (a *Alarm) evaluateLate(r *rule) (sdk.Alarm, bool) {
	now := a.tick()
	if now.Sub(r.waitFrom) < time.Duration(r.delayMS)*time.Millisecond {
		return sdk.Alarm{}, false
	}
	if !a.usable(r) {
		return sdk.Alarm{}, false
	}
	// As if the latest reading had come again, which is what a reading
	// held back as unchanged stands for: prev is value, as for a steady
	// value read by an alarm placed before the deadband.
	s := r.slot
	a.env["value"], a.env["prev"], a.env["quality"] = s.cur, s.cur, qualityAny(s.quality)
	hold, err := a.run(r, r.cond, "condition")
	if err != nil {
		return sdk.Alarm{}, false
	}
	if !hold {
		r.pending = false
		return sdk.Alarm{}, false
	}
	return a.raise(r, now.UnixMilli()), true
}

// usable reports whether rule r's point and the points it names have a
// usable latest reading: a rule is not decided on a bad or missing one.
func (a *Alarm) usable(r *rule) bool {
	s := r.slot
	if s.quality == sdk.QualityBad || !s.seen {
		return false
	}
	for _, ref := range r.refs {
		if !ref.seen || ref.quality == sdk.QualityBad {
			return false
		}
	}
	return true
}

// raise marks rule r raised at t (ms) and returns its event.
func (a *Alarm) raise(r *rule, t int64) sdk.Alarm {
	r.pending, r.raised, r.acked, r.raisedAt = false, true, false, t
	a.save(r)
	a.raised.Add(1)
	return a.event(r, StateRaised, t, r.slot.value)
}

// capturePoint is the camera input's point whose write of true takes a
// picture ("<camera>.capture"); checked against the registry at Init.
const capturePoint = "capture"

// captureRequest asks the rule's camera for a picture: a write of true to
// its capture point, which the core checks and routes like any write.
func captureRequest(r *rule) sdk.Request {
	return sdk.Request{Point: r.camera + "." + capturePoint, Value: sdk.Bool(true),
		Reason: "alarm " + r.name + " raised"}
}

// update records a reading. A bad reading keeps the last usable value (so
// prev and points[...] stay meaningful) but marks the point bad, which
// holds every rule that depends on it where it stands.
func (a *Alarm) update(s *slot, p *sdk.Point, ts int64) {
	s.quality, s.ts = p.Quality, ts
	if p.Quality != sdk.QualityBad {
		if !s.seen || !p.Value.Equal(s.value) {
			cur := boxValue(p.Value)
			if s.seen {
				s.prev = s.cur
			} else {
				s.prev = cur // the first reading is its own prev: value - prev is 0
			}
			s.cur = cur
			s.value = p.Value
			if s.named {
				a.points[s.full] = cur
			}
		} else {
			s.prev = s.cur
		}
		s.seen = true
	}
	if !s.touched && len(s.rules) > 0 {
		s.touched = true
		a.touched = append(a.touched, s)
	}
}

// boxValue converts a point value to what expressions see: the point's
// own type, so that integer operations work on integer registers
// (`value % 40`, `bitand(value, 8)` on a status word) and a float is never
// mistaken for an exact count. Signed integers are int64, unsigned ones
// int64 too when they fit (every register up to uint32, and most uint64
// counters), so that `value > 90` and the bit functions need no
// conversions; a uint64 above math.MaxInt64 is a float64 (compared
// exactly enough, but integer operations on it fail at run time and are
// counted, see run). Floats are float64, booleans bool, text string.
func boxValue(v sdk.Value) any {
	switch v.Kind() {
	case sdk.KindBool:
		return v.BoolValue()
	case sdk.KindInt:
		return v.IntValue()
	case sdk.KindUint:
		if u := v.UintValue(); u <= math.MaxInt64 {
			return int64(u)
		}
		f, _ := v.AsFloat()
		return f
	case sdk.KindFloat:
		return v.FloatValue()
	case sdk.KindString:
		return v.StringValue()
	}
	return nil
}

var qualityNames = [...]any{sdk.QualityGood: "good", sdk.QualityBad: "bad", sdk.QualityUncertain: "uncertain"}

func qualityAny(q sdk.Quality) any {
	if int(q) < len(qualityNames) {
		return qualityNames[q]
	}
	return q.String()
}

// evaluate runs rule r on the latest reading of its point and returns the
// event it causes, if any.
func (a *Alarm) evaluate(r *rule) (sdk.Alarm, bool) {
	if !a.usable(r) {
		return sdk.Alarm{}, false // not known well enough to decide
	}
	s := r.slot
	a.env["value"], a.env["prev"], a.env["quality"] = s.cur, s.prev, qualityAny(s.quality)
	t := s.ts
	if !r.raised {
		hold, err := a.run(r, r.cond, "condition")
		if err != nil {
			return sdk.Alarm{}, false
		}
		if !hold {
			r.pending = false
			return sdk.Alarm{}, false
		}
		// A reading older than the start (a clock set back) restarts the
		// wait rather than raising early or never.
		if !r.pending || t < r.since {
			if r.delayMS > 0 {
				if !r.pending {
					a.waiting = append(a.waiting, r)
				}
				r.waitFrom = a.tick()
			}
			r.pending, r.since = true, t
		}
		if t-r.since < r.delayMS {
			return sdk.Alarm{}, false
		}
		return a.raise(r, t), true
	}
	prog, what, negate := r.clear, "clear", false
	if prog == nil {
		prog, what, negate = r.cond, "condition", true
	}
	res, err := a.run(r, prog, what)
	if err != nil || res == negate {
		return sdk.Alarm{}, false
	}
	r.raised, r.acked, r.pending = false, false, false
	a.save(r)
	a.cleared.Add(1)
	return a.event(r, StateCleared, t, s.value), true
}

// run evaluates one expression of r. A failure (a type mismatch at run
// time, a division by zero, anything the expression engine rejects) is
// counted and logged, once each time the failure changes, and leaves the
// alarm as it was: a broken rule must not raise or clear on its own.
func (a *Alarm) run(r *rule, p *vm.Program, what string) (res bool, err error) {
	defer func() {
		// The engine recovers its own panics; this guards the rest (a
		// panic in the engine's error path) so that a value from the field
		// can never take the plugin down.
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
			a.fail(r, what, err)
		}
	}()
	out, err := a.vm.Run(p, a.env)
	if err == nil {
		b, ok := out.(bool)
		if !ok {
			err = fmt.Errorf("result is %T, not bool", out)
		} else {
			res = b
		}
	}
	if err != nil {
		a.fail(r, what, err)
		return false, err
	}
	if r.failing != "" {
		a.log.Info("alarm: rule evaluates again", "rule", r.name)
		r.failing = ""
	}
	return res, nil
}

func (a *Alarm) fail(r *rule, what string, err error) {
	a.evalErrors.Add(1)
	msg := what + ": " + oneLine(err)
	if msg != r.failing {
		r.failing = msg
		a.log.Warn("alarm: rule evaluation failed; the alarm keeps its state", "rule", r.name, "point", r.point, "err", msg)
	}
}

// oneLine keeps the first line of an expression engine error (the rest is
// a source snippet with a caret).
func oneLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// event builds an event of rule r.
func (a *Alarm) event(r *rule, state string, ts int64, v sdk.Value) sdk.Alarm {
	return sdk.Alarm{TS: ts, Rule: r.name, Point: r.point, Level: r.level, State: state, Value: v,
		Message: render(r, state, v)}
}

// HandleCommand acknowledges a raised alarm (an sdk.CommandAck, parsed by
// the output that received it). Acknowledging an alarm that is already
// acknowledged succeeds without a second event, because the server may
// deliver a command twice (QoS 1).
func (a *Alarm) HandleCommand(_ context.Context, c sdk.Command) (*sdk.Frame, error) {
	if c.Kind != sdk.CommandAck {
		return nil, fmt.Errorf("the alarm processor handles ack commands, not %s", c.Kind)
	}
	if c.Err != "" {
		return nil, errors.New(c.Err)
	}
	name := c.Rule
	if name == "" {
		return nil, errNoRule
	}
	r := a.byName[name]
	if r == nil {
		return nil, fmt.Errorf("alarm %s is not raised: no rule of that name (%w)", name, sdk.ErrNotMine)
	}
	if !r.raised {
		return nil, fmt.Errorf("alarm %s is not raised", name)
	}
	if r.acked {
		return nil, nil
	}
	r.acked = true
	a.save(r)
	a.acked.Add(1)
	return &sdk.Frame{Alarms: []sdk.Alarm{a.event(r, StateAcked, a.now().UnixMilli(), r.slot.value)}}, nil
}

// Health is always OK (a failing rule is a configuration matter, logged);
// the counters tell how many events were made and how many evaluations
// failed.
func (a *Alarm) Health(context.Context) (sdk.Health, error) {
	return sdk.Health{OK: true, Counters: map[string]uint64{
		"alarms_raised":     a.raised.Load(),
		"alarms_cleared":    a.cleared.Load(),
		"alarms_acked":      a.acked.Load(),
		"evaluation_errors": a.evalErrors.Load(),
	}}, nil
}

var errNoRule = errors.New(`"rule" is missing; want {"id":"...","rule":"name"}`)
