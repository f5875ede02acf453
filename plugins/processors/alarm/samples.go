package alarm

import "github.com/edgepipe/edgepipe/plugins/sdk"

// SampleEvents returns, for an initialised processor, one raised event per
// rule, rendered as the rule would raise it with the value value(point):
// `edgepipe check` shows the alarm messages of the rules configured, with
// their own names, levels and messages, and none when there is no rule.
func (a *Alarm) SampleEvents(ts int64, value func(point string) sdk.Value) []sdk.Alarm {
	out := make([]sdk.Alarm, 0, len(a.rules))
	for _, r := range a.rules {
		// No camera request: a sample must not take a picture.
		out = append(out, a.event(r, StateRaised, ts, value(r.point)))
	}
	return out
}
