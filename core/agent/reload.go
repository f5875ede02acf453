package agent

import (
	"bytes"
	"context"
	"log/slog"
	"reflect"
	"slices"

	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// Validate opens every plugin of cfg in dry-run mode (state in memory, no
// queues on disk, outputs not started) and closes them again: what
// `edgepipe check` does, and what a reload does before it touches the
// running pipeline.
func (a *Agent) Validate(ctx context.Context, cfg *config.Config) error {
	_, err := a.Check(ctx, cfg, nil)
	return err
}

// Check is Validate that also lints a configuration that opens: lint
// (nil: none) gets the points cfg's inputs offer and returns warnings,
// which do not refuse it. It is how the reload path warns as `edgepipe
// check` does.
func (a *Agent) Check(ctx context.Context, cfg *config.Config, lint func(*config.Config, []sdk.PointSchema) sdk.ConfigErrors) (sdk.ConfigErrors, error) {
	v := New(cfg, Options{Logger: slog.New(slog.DiscardHandler), DryRun: true, Isolation: a.opts.Isolation})
	if err := v.Open(ctx, true); err != nil {
		return nil, err
	}
	defer v.Close(ctx)
	if lint == nil {
		return nil, nil
	}
	return lint(cfg, v.Points()), nil
}

// Reload switches a running agent to cfg in place. A configuration that
// does not validate is refused and the running one stays. Otherwise the
// pipeline pauses, plugins whose configuration did not change keep running
// (their processes and connections too), changed and new ones are opened,
// removed ones closed, and every output keeps its queue — what was waiting
// for a dead broker is still delivered when it returns. An unchanged
// output's worker is not even paused, and a changed output waiting for a
// dead broker is let go at once (outputRunner.stop): the pause of polling
// never depends on a broker.
func (a *Agent) Reload(ctx context.Context, cfg *config.Config) error {
	if err := a.Validate(ctx, cfg); err != nil {
		return err
	}
	return a.Apply(ctx, cfg)
}

// Apply is Reload for a configuration that already passed Validate (the
// Reboot command validates first, to answer the server): it does not start
// every plugin a second time to check it again.
func (a *Agent) Apply(ctx context.Context, cfg *config.Config) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	stopped, cancel := context.WithCancel(ctx)
	cancel() // no draining: queues are kept, not flushed
	a.stopPipeline()

	agentChanged := !reflect.DeepEqual(pluginView(a.cfg.Agent), pluginView(cfg.Agent))
	a.cfg = cfg
	keep := func(old *instance, p *config.Plugin) bool {
		return !agentChanged && samePlugin(old.cfg, p)
	}

	var errs sdk.ConfigErrors
	oldInputs := byID(a.inputs)
	a.inputs = nil
	inputsChanged := false
	for _, p := range cfg.Inputs {
		if old, ok := oldInputs[p.ID]; ok && keep(old, p) {
			a.inputs = append(a.inputs, old)
			delete(oldInputs, p.ID)
			continue
		}
		inputsChanged = true
		if old, ok := oldInputs[p.ID]; ok {
			old.close(ctx)
			delete(oldInputs, p.ID)
		}
		in, err := a.open(ctx, p, nil)
		if err != nil {
			errs = append(errs, sdk.AsConfigErrors(err)...)
			continue
		}
		a.inputs = append(a.inputs, in)
	}
	for _, old := range oldInputs {
		inputsChanged = true
		old.close(ctx)
	}
	reg, rerrs := buildRegistry(a.inputs)
	errs = append(errs, rerrs...)
	a.registry = reg
	points := reg.Schemas()

	// Processors see the point registry at Init: when inputs changed, they
	// are all opened afresh.
	oldProcs := byID(a.processors)
	a.processors = nil
	for _, p := range a.chain() {
		if old, ok := oldProcs[p.ID]; ok && !inputsChanged && keep(old, p) {
			a.processors = append(a.processors, old)
			delete(oldProcs, p.ID)
			continue
		}
		if old, ok := oldProcs[p.ID]; ok {
			old.close(ctx)
			delete(oldProcs, p.ID)
		}
		in, err := a.open(ctx, p, points)
		if err != nil {
			errs = append(errs, sdk.AsConfigErrors(err)...)
			continue
		}
		a.processors = append(a.processors, in)
	}
	for _, old := range oldProcs {
		old.close(ctx)
	}

	oldOuts := map[string]*outputRunner{}
	for _, o := range a.outputs {
		oldOuts[o.in.cfg.ID] = o
	}
	var outs []*outputRunner
	for _, p := range cfg.Outputs {
		old, ok := oldOuts[p.ID]
		if ok && keep(old.in, p) {
			outs = append(outs, old)
			delete(oldOuts, p.ID)
			continue
		}
		if ok {
			// Changed: its worker stops before anything else opens its
			// queue or takes its place.
			old.stop(stopped)
		}
		in, err := a.open(ctx, p, points)
		if err != nil {
			errs = append(errs, sdk.AsConfigErrors(err)...)
			continue
		}
		if ok && old.in.cfg.Buffer == p.Buffer && old.in.cfg.BufferLimit == p.BufferLimit {
			// Same output, new settings: the queue carries over.
			old.in.close(ctx)
			delete(oldOuts, p.ID)
			a.outMu.Lock()
			old.in = in
			a.outMu.Unlock()
			old.enabled.Store(p.Enabled)
			outs = append(outs, old)
			continue
		}
		r, err := a.newOutputRunner(in)
		if err != nil {
			in.close(ctx)
			errs = append(errs, sdk.AsConfigErrors(err)...)
			continue
		}
		outs = append(outs, r)
	}
	a.outMu.Lock()
	a.outputs = outs
	a.outMu.Unlock()
	for _, o := range oldOuts {
		o.stop(stopped)
		o.in.close(ctx)
		if err := o.q.Close(); err != nil {
			a.log.Warn("closing queue", "output", o.in.cfg.ID, "err", err)
		}
	}
	a.Start()
	return errs.Err()
}

// pluginView is the part of [agent] that plugins see (device ID, topics,
// data directory): only a change there restarts them. Log settings and
// the monitor's address are the command's business (edgepipe run applies
// log_level in place).
func pluginView(a config.Agent) config.Agent {
	a.LogLevel, a.LogFormat, a.HTTPListen = "", "", ""
	a.Remote = config.Remote{} // the reload package's business
	return a
}

func byID(ins []*instance) map[string]*instance {
	m := make(map[string]*instance, len(ins))
	for _, in := range ins {
		m[in.cfg.ID] = in
	}
	return m
}

// samePlugin reports whether two plugin tables configure the same thing.
// Line numbers may differ: moving a table does not restart its plugin.
func samePlugin(a, b *config.Plugin) bool {
	return a.FullName() == b.FullName() && bytes.Equal(trimLines(a.Text()), trimLines(b.Text())) &&
		a.Isolated == b.Isolated && a.Command == b.Command && slices.Equal(a.Args, b.Args) &&
		a.SHA256 == b.SHA256 && a.Buffer == b.Buffer && a.BufferLimit == b.BufferLimit && a.Enabled == b.Enabled
}

// trimLines drops blank lines so that only the content counts.
func trimLines(b []byte) []byte {
	var out []byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(l)) > 0 {
			out = append(out, l...)
			out = append(out, '\n')
		}
	}
	return out
}
