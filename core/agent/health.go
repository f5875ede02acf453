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
// is up, every enabled output reports itself connected and every output's
// queue can be written; a paused output does not make it unwell.
func (a *Agent) Health(ctx context.Context) Health {
	a.mu.RLock()
	defer a.mu.RUnlock()
	h := Health{OK: true}
	check := func(in *instance) PluginHealth {
		ph := PluginHealth{ID: in.cfg.ID, Plugin: in.cfg.FullName(), Kind: string(in.cfg.Kind), OK: true,
			Isolated: in.sup != nil, Restarts: in.restarts()}
		if in.caps.Health || in.sup != nil {
			hctx, cancel := context.WithTimeout(ctx, healthTimeout)
			r, err := in.impl.(sdk.HealthReporter).Health(hctx)
			cancel()
			switch {
			case err != nil:
				ph.OK, ph.Reason = false, "health check failed: "+err.Error()
			default:
				ph.OK, ph.Reason, ph.Counters = r.OK, r.Reason, r.Counters
			}
		}
		return ph
	}
	for _, in := range a.inputs {
		ph := check(in)
		h.OK = h.OK && ph.OK
		h.Plugins = append(h.Plugins, ph)
	}
	for _, in := range a.processors {
		ph := check(in)
		h.OK = h.OK && ph.OK
		h.Plugins = append(h.Plugins, ph)
	}
	for _, o := range a.outputs {
		ph := check(o.in)
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
