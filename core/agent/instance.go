package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/core/isolate"
	"github.com/edgepipe/edgepipe/core/statestore"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// instance is one configured plugin, running in the core's process or
// supervised in its own.
type instance struct {
	cfg      *config.Plugin
	impl     sdk.Plugin
	sup      *isolate.Supervised // nil when in-process
	state    sdk.State
	save     func() error // persists state changes, paced; nil when not persisted
	flush    func() error // persists pending state changes now
	caps     sdk.Caps
	points   []sdk.PointSchema
	interval time.Duration
	log      *slog.Logger
	pollNow  chan struct{} // polled inputs: poll at once (read back a write)
	readBack readBacks     // polled inputs: devices to read back at the next poll

	// counters, read by Stats
	gathered   atomic.Uint64 // points gathered (inputs)
	badQuality atomic.Uint64 // of those, failed reads (quality bad)
	heldBack   atomic.Uint64 // points a processor took out without rendering them
	errors     atomic.Uint64 // failed calls
	published  atomic.Uint64 // messages delivered (outputs)
}

// open creates, starts and initialises a plugin.
func (a *Agent) open(ctx context.Context, p *config.Plugin, registry []sdk.PointSchema) (*instance, error) {
	in := &instance{cfg: p, log: a.log.With("plugin", p.ID), pollNow: make(chan struct{}, 1)}
	if a.opts.DryRun {
		in.state = sdk.NewMemState(nil)
	} else {
		st, err := statestore.Open(filepath.Join(a.cfg.Agent.DataDir, "state"), p.ID)
		if err != nil {
			return nil, err
		}
		in.state, in.save, in.flush = st, st.Save, st.Flush
	}
	isolated := p.Isolated
	if a.opts.Isolation != nil && !p.External() {
		isolated = a.opts.Isolation(p)
	}
	if isolated {
		var spec isolate.Spec
		if p.External() {
			spec = isolate.Spec{Name: p.ID, Command: p.Command, Args: p.Args, SHA256: p.SHA256, Logger: in.log}
		} else {
			var err error
			if spec, err = isolate.BuiltinSpec(p.ID, p.FullName(), in.log); err != nil {
				return nil, err
			}
		}
		sup, err := isolate.Start(spec)
		if err != nil {
			return nil, sdk.ConfigError{File: p.File, Line: p.Line, Path: p.ID, Msg: err.Error()}
		}
		in.sup, in.impl = sup, sup
	} else {
		reg, ok := sdk.Lookup(p.FullName())
		if !ok {
			return nil, sdk.ConfigError{File: p.File, Line: p.Line, Msg: "unknown plugin " + p.FullName()}
		}
		in.impl = reg.Factory()
	}
	resp, err := in.impl.Init(ctx, &sdk.InitRequest{
		Config: p.Text(), File: p.File, Line: p.Line, Name: p.FullName(), Alias: p.ID,
		Agent: sdk.AgentInfo{DeviceID: a.cfg.Agent.DeviceID, TopicPrefix: a.cfg.Agent.TopicPrefix,
			DataDir: a.cfg.Agent.DataDir, MaxCommandSize: int64(a.cfg.Agent.MaxCommandSize), Version: a.opts.Version},
		Points: registry, State: in.state,
	})
	if err == nil || sdk.AsConfigErrors(err) != nil {
		// A binary of the wrong kind cannot make sense of the table it
		// got: say that rather than its complaints about the keys.
		if kerr := kindMismatch(p, in.impl); kerr != nil {
			_ = in.impl.Close(context.Background())
			return nil, kerr
		}
	}
	if err != nil {
		_ = in.impl.Close(context.Background())
		return nil, a.cfg.Redact(placeErrors(p, err))
	}
	in.caps = sdk.CapsOf(in.impl)
	if resp != nil {
		in.points = resp.Points
		in.interval = resp.Interval
	}
	if in.interval <= 0 {
		in.interval = time.Second
	}
	if err := in.persist(); err != nil {
		in.log.Warn("saving plugin state failed", "err", err)
	}
	return in, nil
}

// kindMismatch refuses a plugin that does not serve the role its table
// gives it (a processor binary under [[inputs.external]]), which would
// otherwise pass `check` and fail every call with "Unimplemented".
func kindMismatch(p *config.Plugin, impl sdk.Plugin) error {
	if sdk.Serves(impl, p.Kind) {
		return nil
	}
	what := p.FullName()
	if p.External() {
		what = p.Command
	}
	kinds, _ := sdk.KindsOf(impl)
	msg := fmt.Sprintf("%s serves no pipeline role (neither input, processor nor output)", what)
	if len(kinds) > 0 {
		names := make([]string, len(kinds))
		for i, k := range kinds {
			names[i] = string(k)
		}
		msg = fmt.Sprintf("%s serves %s, not %s: configure it as [[%s.external]]", what, strings.Join(names, " and "), p.Kind, kinds[0])
	}
	return sdk.ConfigError{File: p.File, Line: p.Line, Path: p.ID, Msg: msg}
}

// placeErrors gives errors without a place the plugin's header line.
func placeErrors(p *config.Plugin, err error) error {
	ces := sdk.AsConfigErrors(err)
	for i := range ces {
		if ces[i].File == "" {
			ces[i].File = p.File
		}
		if ces[i].Line == 0 {
			ces[i].Line = p.Line
		}
		if ces[i].Path == "" {
			ces[i].Path = p.ID
		} else {
			ces[i].Path = p.ID + "." + ces[i].Path
		}
	}
	return ces
}

// persist saves state changes made by the last call (paced, see
// statestore.File).
func (in *instance) persist() error {
	if in.save == nil {
		return nil
	}
	return in.save()
}

func (in *instance) close(ctx context.Context) {
	if err := in.impl.Close(ctx); err != nil && !errors.Is(err, context.Canceled) {
		in.log.Warn("close", "err", err)
	}
	if in.flush == nil {
		return
	}
	if err := in.flush(); err != nil {
		in.log.Warn("saving plugin state failed", "err", err)
	}
}

// Restarts is how often the plugin's process was restarted.
func (in *instance) restarts() uint64 {
	if in.sup == nil {
		return 0
	}
	return in.sup.Restarts()
}

func (in *instance) String() string { return fmt.Sprintf("%s (%s)", in.cfg.ID, in.cfg.FullName()) }

// pollSoon asks a polled input for an extra poll (readBackAfter uses it).
func (in *instance) pollSoon() {
	if in.pollNow == nil {
		return
	}
	select {
	case in.pollNow <- struct{}{}:
	default:
	}
}
