package agent

import (
	"context"
	"time"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// Health is the gateway's account of itself for /healthz and /metrics.
type Health struct {
	OK      bool           `json:"ok"`
	Plugins []PluginHealth `json:"plugins"`
	// Devices are the field devices the inputs report, input by input in
	// configuration order. A device that is down is listed here and never
	// makes OK false.
	Devices []DeviceHealth `json:"devices"`
}

// DeviceHealth is one field device behind an input (sdk.DeviceHealth).
type DeviceHealth struct {
	Plugin      string    `json:"plugin"` // the input's id (alias)
	Device      string    `json:"device"`
	Up          bool      `json:"up"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	LastGood    time.Time `json:"last_good,omitzero"`
	ReadErrors  uint64    `json:"read_errors"`
}

// PluginHealth is one plugin's state.
type PluginHealth struct {
	ID       string            `json:"id"`
	Plugin   string            `json:"plugin"`
	Kind     string            `json:"kind"`
	OK       bool              `json:"ok"`
	Reason   string            `json:"reason,omitempty"`
	Isolated bool              `json:"isolated"`
	Restarts uint64            `json:"restarts"`
	Counters map[string]uint64 `json:"counters,omitempty"`
	// Outputs only.
	Enabled    *bool   `json:"enabled,omitempty"`
	QueueDepth *int    `json:"queue_depth,omitempty"`
	QueueBytes *int64  `json:"queue_bytes,omitempty"`
	Dropped    *uint64 `json:"queue_dropped,omitempty"`
	// QueueError is why the output's queue cannot be written (disk full):
	// new messages are being dropped, so the gateway is unwell even when
	// the output is paused.
	QueueError string `json:"queue_error,omitempty"`
}

// healthTimeout bounds one plugin's health answer: a hung plugin is
// reported as unwell, not waited for.
const healthTimeout = 2 * time.Second

// Health asks every plugin how it is. The gateway is OK when every plugin
// process is up, every processor is well, every enabled output reports
// itself connected and every output's queue can be written; a paused
// output does not make it unwell. An input that reports itself unwell
// (its PLC unreachable, its serial port missing) is shown as such, with
// its devices, but does not make the gateway unwell: /healthz is a
// liveness probe, and restarting the gateway revives no field device.
// Only an input that cannot answer at all (its process down, its health
// call failing) does.
func (a *Agent) Health(ctx context.Context) Health {
	a.mu.RLock()
	defer a.mu.RUnlock()
	h := Health{OK: true, Devices: []DeviceHealth{}}
	// check asks one plugin; down is true when it could not answer for
	// itself (its process is down, or the call failed).
	check := func(in *instance) (ph PluginHealth, devices []sdk.DeviceHealth, down bool) {
		ph = PluginHealth{ID: in.cfg.ID, Plugin: in.cfg.FullName(), Kind: string(in.cfg.Kind), OK: true,
			Isolated: in.sup != nil, Restarts: in.restarts()}
		if r, asked, err := in.askHealth(ctx); asked {
			switch {
			case err != nil:
				ph.OK, ph.Reason, down = false, "health check failed: "+err.Error(), true
			default:
				ph.OK, ph.Reason, ph.Counters, devices = r.OK, r.Reason, r.Counters, r.Devices
				// Pid is 0 while the supervisor restarts the process.
				down = in.sup != nil && in.sup.Pid() == 0
			}
		}
		return ph, devices, down
	}
	for _, in := range a.inputs {
		ph, devices, down := check(in)
		h.OK = h.OK && !down
		h.Plugins = append(h.Plugins, ph)
		for _, d := range devices {
			h.Devices = append(h.Devices, DeviceHealth{Plugin: in.cfg.ID, Device: d.Name, Up: d.Up,
				LastError: d.LastError, LastErrorAt: d.LastErrorAt, LastGood: d.LastGood, ReadErrors: d.ReadErrors})
		}
	}
	for _, in := range a.processors {
		ph, _, _ := check(in)
		h.OK = h.OK && ph.OK
		h.Plugins = append(h.Plugins, ph)
	}
	for _, o := range a.outputs {
		ph, _, _ := check(o.in)
		en := o.enabled.Load()
		st := o.q.Stats()
		ph.Enabled, ph.QueueDepth, ph.QueueBytes, ph.Dropped = &en, &st.Depth, &st.Bytes, &st.Dropped
		if !en {
			ph.Reason = "paused (enabled = false)"
		} else {
			h.OK = h.OK && ph.OK
		}
		if st.WriteErr != "" {
			ph.QueueError = st.WriteErr
			reason := "queue cannot be written, new messages are dropped: " + st.WriteErr
			if ph.Reason != "" {
				reason += "; " + ph.Reason
			}
			ph.OK, ph.Reason, h.OK = false, reason, false
		}
		h.Plugins = append(h.Plugins, ph)
	}
	return h
}

// askHealth asks a plugin for its own account, within healthTimeout.
// asked is false for a plugin that cannot tell (no HealthReporter, not
// isolated): the callers then take it as well.
func (in *instance) askHealth(ctx context.Context) (h sdk.Health, asked bool, err error) {
	hr, ok := in.impl.(sdk.HealthReporter)
	if !ok || !(in.caps.Health || in.sup != nil) {
		return sdk.Health{}, false, nil
	}
	hctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	h, err = hr.Health(hctx)
	return h, true, err
}
