package alarm

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// How raised alarms are persisted, and why this way.
//
// Alarms change state rarely, so each raised alarm is one small key,
// "alarm/<rule>", written in the very call that raised, acknowledged or
// cleared it (a cleared alarm deletes its key). The core saves state after
// each call, so what the server was told and what a restart finds agree:
// no second "raised", no lost "cleared". A pending delay is not saved: it
// would be rewritten on every change of the condition, and after a restart
// the condition simply has to hold for the delay again.
const statePrefix = "alarm/"

// saved is the value of one key. Point and level let an alarm whose rule
// is gone be cleared with the point and level it was raised with.
type saved struct {
	Point string `json:"point"`
	Level string `json:"level"`
	Since int64  `json:"since"` // ms, when raised
	Acked bool   `json:"acked,omitempty"`
}

// save writes (or, when cleared, deletes) rule r's key.
func (a *Alarm) save(r *rule) {
	key := statePrefix + r.name
	if !r.raised {
		a.state.Set(key, nil)
		return
	}
	b, _ := json.Marshal(saved{Point: r.point, Level: r.level, Since: r.raisedAt, Acked: r.acked})
	a.state.Set(key, b)
}

// restore marks the rules left raised by an earlier run. An alarm whose
// rule no longer exists, or now watches another point, is queued to be
// cleared with the first frame; an unreadable key is dropped.
// Keys are read in sorted order so that such events come out in a stable
// order.
func (a *Alarm) restore() {
	a.orphans = nil
	now := a.now().UnixMilli()
	keys := a.state.Keys()
	slices.Sort(keys)
	for _, key := range keys {
		name, ok := strings.CutPrefix(key, statePrefix)
		if !ok {
			continue
		}
		b, _ := a.state.Get(key)
		var s saved
		if err := json.Unmarshal(b, &s); err != nil || name == "" {
			a.state.Set(key, nil)
			continue
		}
		if r := a.byName[name]; r != nil && r.point == s.Point {
			r.raised, r.acked, r.raisedAt = true, s.Acked, s.Since
			continue
		}
		level := s.Level
		if level == "" {
			level = DefaultLevel
		}
		a.orphans = append(a.orphans, sdk.Alarm{TS: now, Rule: name, Point: s.Point, Level: level, State: StateCleared,
			Message: "alarm " + name + " cleared: its rule is no longer configured"})
		// The key is deleted when the event is sent (Process), not here:
		// a crash before then must not lose the "cleared".
	}
}
