package agent

import (
	"sort"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// Observer sees what flows through the pipeline without being part of it:
// the local console keeps its table of latest values and its alarm history
// from it. Its methods are called synchronously on the pipeline's
// goroutines, so they must return at once and must not keep the slices
// they are given (processors change them afterwards).
type Observer interface {
	// ObservePoints gets the batches an input read, after the core
	// stamped them, before any processor filtered them: the latest value
	// of every point, whatever a deadband holds back.
	ObservePoints(batches []sdk.Batch)
	// ObserveAlarms gets the alarm events of a frame (raised, cleared,
	// acked) before a template renders them into messages.
	ObserveAlarms(alarms []sdk.Alarm)
}

// observeAlarms hands new alarm events to the observer.
func (a *Agent) observeAlarms(alarms []sdk.Alarm) {
	if o := a.opts.Observer; o != nil && len(alarms) > 0 {
		o.ObserveAlarms(alarms)
	}
}

// ExecuteLocal is Execute for a caller outside the pipeline (the local
// console and API): the same checks and routes as a command from the
// server, holding the agent's read lock so that a reload cannot change the
// plugins under the command. A reload waits for it (a device write is
// bounded by writeTimeout).
func (a *Agent) ExecuteLocal(c sdk.Command) sdk.Result {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.Execute(c)
}

// Device is a field device as the agent knows it from the point registry.
type Device struct {
	Name   string `json:"name"`
	Input  string `json:"input"` // the input plugin that reads it
	Points int    `json:"points"`
}

// Devices lists the devices of the point registry, by name.
func (a *Agent) Devices() []Device {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.registry == nil {
		return nil
	}
	byName := map[string]*Device{}
	var out []*Device
	for i, s := range a.registry.schemas {
		d := byName[s.Device]
		if d == nil {
			d = &Device{Name: s.Device, Input: a.registry.owners[i].cfg.ID}
			byName[d.Name] = d
			out = append(out, d)
		}
		d.Points++
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	res := make([]Device, len(out))
	for i, d := range out {
		res[i] = *d
	}
	return res
}
