// Package deadband is the processor that decides which point readings are
// worth a report: on a change beyond a threshold, periodically, or both, as
// the FBox "dead band" and "refresh period" settings do. Readings it holds
// back are removed from the frame; points its globs do not match pass
// through untouched, so several instances in a row give per-point settings.
//
// The last reported value, quality and time of every matched point are kept
// in the plugin's persisted state, so that a restarted plugin or gateway
// neither reports everything again nor forgets when a period started.
package deadband

import (
	"context"
	_ "embed"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/edgepipe/edgepipe/plugins/processors/internal/glob"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

//go:embed sample.conf
var sampleConf string

func init() {
	sdk.Register(sdk.Registration{
		Kind:         sdk.KindProcessor,
		Name:         "deadband",
		Description:  "report points on change beyond a dead band, periodically, or both",
		SampleConfig: sampleConf,
		Factory:      func() sdk.Plugin { return New() },
	})
}

// Config is the processor's TOML table.
type Config struct {
	Points   []string      `toml:"points"`
	Exclude  []string      `toml:"exclude"`
	Report   string        `toml:"report"`
	Absolute float64       `toml:"absolute"`
	Percent  float64       `toml:"percent"`
	Period   *sdk.Duration `toml:"period"`
}

// DefaultPeriod applies to report = "period" or "both" when period is not set.
const DefaultPeriod = 60 * time.Second

// Deadband is the processor. The zero value is not usable; call New.
type Deadband struct {
	include, exclude glob.List
	onChange         bool
	onPeriod         bool
	absolute         float64 // 0: unused
	fraction         float64 // percent / 100; 0: unused
	periodMS         int64

	// now is the clock; tests replace it to step through periods.
	now func() time.Time

	state   sdk.State
	savedAt int64 // ms of the last persist
	devices map[string]*device
	dirty   []*device // devices with state to persist after this call
	enc     []byte    // reused encoding buffer
}

// New returns an uninitialised processor using the wall clock.
func New() *Deadband {
	return &Deadband{now: time.Now, devices: map[string]*device{}}
}

var _ sdk.Processor = (*Deadband)(nil)

// Holds reports whether the processor (initialised) filters the readings
// of a point ("device.point"): it drops those that are not worth a report,
// so a processor after it sees only changes and periodic reports. `edgepipe
// check` uses it to warn about an alarm with a delay placed after it.
func (d *Deadband) Holds(point string) bool {
	return d.include.Match(point) && !d.exclude.Match(point)
}

// Init decodes and checks the configuration, then restores the state kept
// by an earlier run.
func (d *Deadband) Init(_ context.Context, req *sdk.InitRequest) (*sdk.InitResponse, error) {
	var cfg Config
	src, err := sdk.DecodeConfig(req, &cfg)
	if err != nil {
		return nil, err
	}
	var errs sdk.ConfigErrors
	if cfg.Points == nil {
		cfg.Points = []string{"*"}
	}
	if len(cfg.Points) == 0 {
		errs = append(errs, src.Errorf("points", "is empty: the processor would match no point (leave it out to match all)"))
	}
	compile := func(key string, pats []string) glob.List {
		l, i, err := glob.CompileList(pats)
		if err != nil {
			errs = append(errs, src.Errorf(fmt.Sprintf("%s[%d]", key, i), "%v", err))
			return nil
		}
		// A pattern that matches no point of the registry is almost always
		// a typo; say so at load rather than never filtering.
		if len(req.Points) > 0 {
			for i, p := range l {
				found := false
				for _, s := range req.Points {
					if s.Access.Publishes() && p.Match(s.FullName()) {
						found = true
						break
					}
				}
				if !found {
					errs = append(errs, src.Errorf(fmt.Sprintf("%s[%d]", key, i), "pattern %q matches no reported point", p.String()))
				}
			}
		}
		return l
	}
	d.include = compile("points", cfg.Points)
	d.exclude = compile("exclude", cfg.Exclude)

	switch strings.ToLower(cfg.Report) {
	case "", "change":
		d.onChange = true
	case "period":
		d.onPeriod = true
	case "both":
		d.onChange, d.onPeriod = true, true
	default:
		errs = append(errs, src.Errorf("report", "%q: want change, period or both", cfg.Report))
	}
	if !(cfg.Absolute >= 0) || math.IsInf(cfg.Absolute, 0) {
		errs = append(errs, src.Errorf("absolute", "must be a finite number >= 0, got %v", cfg.Absolute))
	}
	if !(cfg.Percent >= 0) || math.IsInf(cfg.Percent, 0) {
		errs = append(errs, src.Errorf("percent", "must be a finite number >= 0, got %v", cfg.Percent))
	}
	d.absolute, d.fraction = cfg.Absolute, cfg.Percent/100
	period := DefaultPeriod
	if cfg.Period != nil {
		period = cfg.Period.D()
	}
	if d.onPeriod && period < time.Millisecond {
		errs = append(errs, src.Errorf("period", "must be at least 1ms with report = %q", cfg.Report))
	}
	d.periodMS = period.Milliseconds()
	if len(errs) > 0 {
		return nil, errs
	}

	d.state = req.State
	if d.state == nil {
		d.state = sdk.NewMemState(nil)
	}
	d.restore()
	d.persist()
	return &sdk.InitResponse{}, nil
}

// Close saves what was reported since the last save.
func (d *Deadband) Close(context.Context) error {
	if d.state != nil {
		d.persist()
	}
	return nil
}

// Process removes the readings that need no report, in place; a batch
// marked ReadBack (read back after a write) passes whole. It allocates
// nothing per point once every point has been seen (see BenchmarkProcess).
func (d *Deadband) Process(_ context.Context, f *sdk.Frame) (*sdk.Frame, error) {
	if f == nil {
		return f, nil
	}
	now := d.now().UnixMilli()
	nb := 0
	for bi := range f.Batches {
		b := &f.Batches[bi]
		dev := d.device(b.Device)
		kept := 0
		for pi := range b.Points {
			p := &b.Points[pi]
			e := dev.lookup(d, pi, p.Name)
			if e.matched {
				// A read-back after a write is always reported (SPEC 5),
				// and becomes the value later readings are compared with.
				if !b.ReadBack && !d.report(e, p, now) {
					continue
				}
				e.last, e.quality, e.at, e.seen = p.Value, p.Quality, now, true
				dev.markDirty(d, e.idx)
			}
			if kept != pi {
				b.Points[kept] = *p
			}
			kept++
		}
		// Clear the dropped tail so the frame does not keep their strings
		// alive longer than needed.
		clear(b.Points[kept:])
		b.Points = b.Points[:kept]
		if kept > 0 {
			if nb != bi {
				f.Batches[nb] = *b
			}
			nb++
		}
	}
	clear(f.Batches[nb:])
	f.Batches = f.Batches[:nb]
	if now-d.savedAt >= persistEveryMs || now < d.savedAt {
		d.persist()
		d.savedAt = now
	}
	return f, nil
}

// report decides whether reading p of entry e is reported now.
func (d *Deadband) report(e *entry, p *sdk.Point, now int64) bool {
	if !e.seen || p.Quality != e.quality {
		return true
	}
	if d.onPeriod {
		// A clock that went backwards (an RTC corrected by NTP) would hold
		// reports back until it caught up again: report instead.
		if el := now - e.at; el < 0 || el >= d.periodMS {
			return true
		}
	}
	return d.onChange && d.changed(e.last, p.Value)
}

// changed applies the dead band between the last reported value and v.
func (d *Deadband) changed(last, v sdk.Value) bool {
	if last.Equal(v) {
		return false
	}
	k := v.Kind()
	if last.Kind() != k {
		return true
	}
	var diff float64
	switch k {
	case sdk.KindInt:
		// Exact magnitude of the difference: float64 conversion of two
		// large integers first would lose a change of 1 near 2^60.
		a, b := last.IntValue(), v.IntValue()
		if a > b {
			diff = float64(uint64(a) - uint64(b))
		} else {
			diff = float64(uint64(b) - uint64(a))
		}
	case sdk.KindUint:
		a, b := last.UintValue(), v.UintValue()
		if a > b {
			diff = float64(a - b)
		} else {
			diff = float64(b - a)
		}
	case sdk.KindFloat:
		diff = math.Abs(v.FloatValue() - last.FloatValue())
		if math.IsNaN(diff) {
			return true // to or from NaN, or +Inf to +Inf's other side
		}
		if diff == 0 {
			return false // -0 and +0
		}
	default:
		return true // bool, string: any change
	}
	if d.absolute == 0 && d.fraction == 0 {
		return true
	}
	if d.absolute > 0 && diff >= d.absolute {
		return true
	}
	if d.fraction > 0 {
		l, _ := last.AsFloat()
		// Near zero the percentage band shrinks to nothing: from a last
		// value of 0 any change is reported. That is what "percent of the
		// last reported value" means; `absolute` alone bounds noise there.
		if diff >= d.fraction*math.Abs(l) {
			return true
		}
	}
	return false
}

// device is the memory of one device's points. Entries are appended and
// never removed, so an entry's index is stable: it places the entry in its
// state shard.
type device struct {
	name    string
	index   map[string]int32
	entries []*entry
	// order[i] is the entry of the point at position i of the last batch:
	// devices report their points in the same order every poll, so this
	// spares the map lookup in the common case.
	order  []int32
	shards []bool   // shard i needs writing
	keys   []string // state key of shard i, made once
	listed bool     // in Deadband.dirty
}

type entry struct {
	name    string
	idx     int32
	matched bool // the globs select it (decided once)
	seen    bool // reported at least once (or restored)
	quality sdk.Quality
	last    sdk.Value
	at      int64 // ms since the epoch of the last report, by d.now
}

func (d *Deadband) device(name string) *device {
	dev, ok := d.devices[name]
	if !ok {
		dev = &device{name: strings.Clone(name), index: map[string]int32{}}
		d.devices[dev.name] = dev
	}
	return dev
}

func (dev *device) lookup(d *Deadband, pos int, name string) *entry {
	if pos < len(dev.order) {
		if e := dev.entries[dev.order[pos]]; e.name == name {
			return e
		}
	}
	i, ok := dev.index[name]
	if !ok {
		i = dev.add(d, strings.Clone(name))
	}
	for len(dev.order) <= pos {
		dev.order = append(dev.order, 0)
	}
	dev.order[pos] = i
	return dev.entries[i]
}

func (dev *device) add(d *Deadband, name string) int32 {
	full := dev.name + "." + name
	e := &entry{name: name, idx: int32(len(dev.entries)),
		matched: d.Holds(full)}
	dev.entries = append(dev.entries, e)
	dev.index[name] = e.idx
	return e.idx
}

func (dev *device) markDirty(d *Deadband, idx int32) {
	s := int(idx) / shardSize
	for len(dev.shards) <= s {
		dev.shards = append(dev.shards, false)
	}
	dev.shards[s] = true
	if !dev.listed {
		dev.listed = true
		d.dirty = append(d.dirty, dev)
	}
}
