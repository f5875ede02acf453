// Package agent runs a configured pipeline: it opens every plugin (in the
// core's process or isolated), polls the inputs on their intervals, runs
// each frame through the processors in order, and fans the rendered
// messages out to one store-and-forward queue per output, from which an
// output worker publishes and acknowledges.
//
//	inputs ──► frames ──► processors (in order) ──► queue per output ──► outputs
//
// Nothing downstream can block polling for long: the frame channel is
// bounded, and queues drop their oldest messages past their limit rather
// than push back on the processors.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/internal/backoff"
	"github.com/edgepipe/edgepipe/internal/runtimecfg"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// processTimeout bounds one frame's trip through the processors: a hung
// (or endlessly restarting) processor costs that frame, not the pipeline.
const processTimeout = 30 * time.Second

// DefaultTemplate is the processor appended to a chain that has no
// template, so that points become the messages of SPEC section 4.
const DefaultTemplate = "processors.template"

// Options tune an Agent.
type Options struct {
	Logger *slog.Logger
	// Version is the gateway's version as its status says it, handed to
	// the plugins (sdk.AgentInfo.Version) so that an output's own online
	// message says the same.
	Version string
	// Isolation, when set, decides for every built-in plugin whether it runs
	// in its own process, overriding the configuration (tests, benchmarks).
	Isolation func(*config.Plugin) bool
	// DryRun keeps state in memory and opens no outputs' queues on disk
	// (check, once).
	DryRun bool
	// OnMessage, when set, sees every message handed to the outputs'
	// queues (demo printing, tests).
	OnMessage func(sdk.Message)
	// OnReboot serves the server's Reboot command (reload in place).
	OnReboot func() error
	// Observer, when set, sees the points read and the alarm events (the
	// local console's live table; see Observer).
	Observer Observer
	// OnConfig serves the server's configuration commands (SPEC 9, the
	// reload package) that arrived through output: the reply, or a
	// message with no Topic when the reply comes later (a set is answered
	// once applied, through Announce). Unset, they are refused.
	OnConfig func(output string, c sdk.Command) sdk.Message
}

// Agent is a running (or runnable) pipeline.
type Agent struct {
	cfg  *config.Config
	opts Options
	log  *slog.Logger

	inputs     []*instance
	processors []*instance
	outputs    []*outputRunner
	registry   *Registry

	// mu guards the plugin lists against readers outside the pipeline
	// (Stats, Health from the HTTP server) while Open, Reload and Close
	// change them. The pipeline's own goroutines never take it: they are
	// stopped whenever the lists change.
	mu sync.RWMutex
	// outMu guards the outputs list and each runner's instance for
	// SetEnabled, which must not take mu: the command goroutines call it,
	// and Reload waits for them while holding mu. Writers hold both.
	outMu sync.RWMutex

	frames  chan inputFrame
	returns frameReturns // processor frames to give back (settle.go)
	cancel  context.CancelFunc
	inputWG sync.WaitGroup
	procWG  sync.WaitGroup
	// procCtx bounds the processors' calls; cancelled only when a stopping
	// pipeline's processors do not finish in time (a hung plugin).
	// procMu makes processor calls one at a time: the processing loop
	// holds it per frame, a command handled by a processor (an alarm
	// acknowledgement) holds it for its trip down the chain.
	procMu     sync.Mutex
	procCtx    context.Context
	procCancel context.CancelFunc
	// sideWG tracks the processors' requests being served (see request);
	// sideSlots bounds how many run at once.
	sideWG    sync.WaitGroup
	sideSlots chan struct{}
	stats     counters
	// busySince is when the processing loop took its current frame (unix
	// ns), 0 while it waits for one: the pipeline's heartbeat (Stalled).
	busySince atomic.Int64
}

// New prepares an agent; nothing is started.
func New(cfg *config.Config, opts Options) *Agent {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Agent{cfg: cfg, opts: opts, log: opts.Logger, sideSlots: make(chan struct{}, maxSideRequests)}
}

// Open starts and initialises every plugin, inputs first so that their
// point schemas can be lent to processors and outputs. It reports every
// configuration error of every plugin at once. withOutputs false leaves the
// outputs closed (check without side effects, once).
func (a *Agent) Open(ctx context.Context, withOutputs bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs sdk.ConfigErrors
	add := func(err error) {
		errs = append(errs, sdk.AsConfigErrors(err)...)
	}
	// The errors a failed input causes in the plugins naming its points
	// are left out: its own error stands alone (see unopened).
	var failed unopened
	for _, p := range a.cfg.Inputs {
		in, err := a.open(ctx, p, nil)
		if err != nil {
			add(err)
			failed.add(p)
			continue
		}
		a.inputs = append(a.inputs, in)
	}
	reg, rerrs := buildRegistry(a.inputs)
	errs = append(errs, rerrs...)
	a.registry = reg
	points := reg.Schemas()
	for _, p := range a.chain() {
		in, err := a.open(ctx, p, points)
		if err != nil {
			errs = append(errs, failed.filter(err, reg)...)
			continue
		}
		a.processors = append(a.processors, in)
	}
	if withOutputs {
		for _, p := range a.cfg.Outputs {
			in, err := a.open(ctx, p, points)
			if err != nil {
				errs = append(errs, failed.filter(err, reg)...)
				continue
			}
			r, err := a.newOutputRunner(in)
			if err != nil {
				in.close(ctx)
				add(err)
				continue
			}
			a.outMu.Lock()
			a.outputs = append(a.outputs, r)
			a.outMu.Unlock()
		}
	}
	if len(errs) > 0 {
		a.closeAll(context.Background())
		return errs
	}
	return nil
}

// chain is the configured processors, with the default template appended
// when none is configured.
func (a *Agent) chain() []*config.Plugin {
	procs := a.cfg.Processors
	if !hasPlugin(procs, DefaultTemplate) {
		if _, ok := sdk.Lookup(DefaultTemplate); ok {
			procs = append(slices.Clip(procs), &config.Plugin{Kind: sdk.KindProcessor, Name: "template",
				ID: DefaultTemplate + "#default", File: a.cfg.File})
		}
	}
	return procs
}

func hasPlugin(ps []*config.Plugin, fullName string) bool {
	for _, p := range ps {
		if p.FullName() == fullName {
			return true
		}
	}
	return false
}

// Start runs the pipeline in the background; Open must have succeeded.
func (a *Agent) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.frames = make(chan inputFrame, 16)
	for _, in := range a.inputs {
		a.inputWG.Add(1)
		if in.caps.Stream {
			go a.streamLoop(ctx, in)
		} else {
			go a.pollLoop(ctx, in)
		}
	}
	a.procCtx, a.procCancel = context.WithCancel(context.Background())
	a.procWG.Add(1)
	go a.processLoop()
	for _, o := range a.outputs {
		o.start()
	}
}

// pause stops the pipeline (stopPipeline) and the output workers, after
// giving them until ctx ends to empty their queues (outputRunner.stop).
// Plugins stay open and queues keep what is left.
func (a *Agent) pause(ctx context.Context) {
	a.stopPipeline()
	a.stopOutputs(ctx, a.outputs)
}

// stopPipeline stops command intake, then polling, and lets the processors
// finish the frames they hold, so that everything polled is queued. The
// output workers keep running: a reload stops only those it replaces.
func (a *Agent) stopPipeline() {
	if a.cancel == nil {
		return
	}
	for _, o := range a.outputs {
		o.stopCommands() // no command may change things while the pipeline stops
	}
	a.cancel()
	a.inputWG.Wait()
	close(a.frames)
	done := make(chan struct{})
	go func() {
		a.procWG.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(processTimeout):
		a.log.Warn("processors did not finish the frames they hold; abandoning them")
		a.procCancel()
		<-done
	}
	a.procCancel()
	// Processors' requests still being served: nothing can add one now
	// (the processing and command goroutines have ended).
	a.sideWG.Wait()
	a.forgetHeld()
	a.cancel = nil
}

// stopOutputs stops the workers of outs, side by side, within ctx.
func (a *Agent) stopOutputs(ctx context.Context, outs []*outputRunner) {
	var wg sync.WaitGroup
	for _, o := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o.stop(ctx)
		}()
	}
	wg.Wait()
}

// Stop stops polling, lets the processors finish what they hold, gives the
// outputs until ctx ends to deliver their queues, then closes everything.
// What is left stays in the queues (on disk with buffer = "disk").
func (a *Agent) Stop(ctx context.Context) {
	a.pause(ctx)
	a.Close(ctx)
}

// Close closes every plugin and queue.
func (a *Agent) Close(ctx context.Context) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closeAll(ctx)
}

func (a *Agent) closeAll(ctx context.Context) {
	a.sideWG.Wait() // no request may reach a closed input
	for _, in := range a.inputs {
		in.close(ctx)
	}
	for _, in := range a.processors {
		in.close(ctx)
	}
	for _, o := range a.outputs {
		o.in.close(ctx)
		if err := o.q.Close(); err != nil {
			a.log.Warn("closing queue", "output", o.in.cfg.ID, "err", err)
		}
	}
	a.outMu.Lock()
	a.inputs, a.processors, a.outputs = nil, nil, nil
	a.outMu.Unlock()
}

// Run opens the pipeline, runs it until ctx is cancelled and stops it,
// allowing up to grace for delivery of what is queued.
func (a *Agent) Run(ctx context.Context, grace time.Duration) error {
	if err := a.Open(ctx, true); err != nil {
		return err
	}
	a.Start()
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	a.Stop(sctx)
	return nil
}

// pollLoop gathers an input every interval. Calls never overlap: a poll
// slower than the interval delays the next tick instead of stacking up
// (the ticker drops the ticks it could not deliver), and the schedule
// does not drift because ticks keep their phase.
func (a *Agent) pollLoop(ctx context.Context, in *instance) {
	defer a.inputWG.Done()
	t := newTicker(in.interval)
	defer t.stop()
	timeout := max(5*in.interval, 30*time.Second)
	for {
		gctx, cancel := context.WithTimeout(ctx, timeout)
		f, err := in.gather(gctx)
		cancel()
		switch {
		case err == nil:
			// Even when the pipeline is stopping: a poll that was read is
			// reported, never thrown away (a reload must not lose one).
			a.accept(in, f)
		case ctx.Err() == nil:
			in.errors.Add(1)
			a.stats.gatherErrors.Add(1)
			in.log.Warn("gather failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-in.pollNow:
		}
	}
}

// streamReopen spaces the reopening of a stream that ended.
var streamReopen = backoff.Policy{Initial: 100 * time.Millisecond, Max: 30 * time.Second}

// streamLoop runs a streaming input, reopening its stream after an error.
func (a *Agent) streamLoop(ctx context.Context, in *instance) {
	defer a.inputWG.Done()
	retry := backoff.New(streamReopen)
	for ctx.Err() == nil {
		opened := time.Now()
		err := in.impl.(sdk.StreamingInput).Stream(ctx, func(f *sdk.Frame) { a.accept(in, f) })
		if ctx.Err() != nil {
			return
		}
		if time.Since(opened) > streamReopen.Max {
			retry.Reset() // it ran fine for a while: this is a new failure
		}
		in.errors.Add(1)
		wait := retry.Next()
		in.log.Warn("stream ended, reopening", "err", err, "in", wait)
		if !backoff.Sleep(ctx, wait) {
			return
		}
	}
}

// accept stamps, filters and forwards a frame from an input. The send
// blocks while the processors are busy (backpressure on polling), and may
// do so while the pipeline stops: the processor loop drains the channel
// until every input has returned, so nothing read is lost.
func (a *Agent) accept(in *instance, f *sdk.Frame) {
	if err := in.persist(); err != nil {
		in.log.Warn("saving plugin state failed", "err", err)
	}
	if f.Empty() {
		return
	}
	n, bad := a.prepare(f)
	if o := a.opts.Observer; o != nil {
		o.ObservePoints(f.Batches)
	}
	in.gathered.Add(uint64(n))
	in.badQuality.Add(uint64(bad))
	a.stats.gathered.Add(uint64(n))
	a.frames <- inputFrame{f, in}
}

// inputFrame is a frame on its way to the processors and the input it
// came from, which gets it back when it wants to (sdk.FrameReleaser).
type inputFrame struct {
	f  *sdk.Frame
	in *instance
}

// prepare readies a frame from an input for the processors: readings
// without a time get the poll's (or now), and points whose access is sub
// are dropped. It returns the points left, and how many of them are
// failed reads (quality bad).
func (a *Agent) prepare(f *sdk.Frame) (n, bad int) {
	now := time.Now().UnixMilli()
	for i := range f.Batches {
		b := &f.Batches[i]
		if b.TS == 0 {
			b.TS = now
		}
		a.registry.filterUnpublished(b)
		n += len(b.Points)
		for j := range b.Points {
			p := &b.Points[j]
			if p.TS == 0 {
				p.TS = b.TS
			}
			if p.Quality == sdk.QualityBad {
				bad++
			}
		}
	}
	return n, bad
}

// processLoop runs every frame through the processors, in order, in one
// goroutine: processors see frames one at a time and need no locking.
func (a *Agent) processLoop() {
	defer a.procWG.Done()
	for it := range a.frames {
		a.busySince.Store(time.Now().UnixNano())
		ctx, cancel := context.WithTimeout(a.procCtx, processTimeout)
		a.procMu.Lock()
		out, rendered, err := a.processFrame(ctx, it.f, 0)
		back := a.returnable(out)
		a.procMu.Unlock()
		cancel()
		if err == nil && out != nil {
			a.deliver(out.Messages, rendered)
			if back != nil {
				a.hold(back, out)
			}
		}
		// The processors have run and the queues hold the messages:
		// nothing refers to the input's points any more. The last
		// processor's frame goes back once its messages are delivered,
		// where that is safe (settle.go).
		if r, ok := it.in.impl.(sdk.FrameReleaser); ok {
			r.ReleaseFrame(it.f)
		}
		a.busySince.Store(0)
	}
}

// process runs one frame through the chain, from processor index from on,
// and returns its messages and how many points were rendered into them.
//
// Points are followed by count, across any isolation: a processor that
// takes points out of the frame while adding messages (the template)
// rendered them; one that takes them out without adding any (a deadband
// holding back unchanged readings) held them back, counted against it.
//
// Alarm events are followed the same way: those that enter the chain (an
// "acked" event from a command handler) and those a processor adds are
// shown to the Observer as they appear, before a later processor (the
// template) renders them away.
func (a *Agent) process(ctx context.Context, f *sdk.Frame, from int) (msgs []sdk.Message, rendered int, err error) {
	out, rendered, err := a.processFrame(ctx, f, from)
	if out == nil {
		return nil, rendered, err
	}
	return out.Messages, rendered, err
}

// processFrame is process, returning the frame the chain ended with (nil
// when it ended empty or failed).
func (a *Agent) processFrame(ctx context.Context, f *sdk.Frame, from int) (out *sdk.Frame, rendered int, err error) {
	a.observeAlarms(f.Alarms)
	for _, p := range a.processors[from:] {
		points, messages, alarms := f.NumPoints(), len(f.Messages), len(f.Alarms)
		next, err := p.impl.(sdk.Processor).Process(ctx, f)
		if perr := p.persist(); perr != nil {
			p.log.Warn("saving plugin state failed", "err", perr)
		}
		if err != nil {
			p.errors.Add(1)
			a.stats.dropped.Add(uint64(f.NumPoints()))
			p.log.Warn("process failed, frame dropped", "err", err, "points", f.NumPoints())
			return nil, 0, err
		}
		f = next
		if f != nil && len(f.Alarms) > alarms {
			a.observeAlarms(f.Alarms[alarms:])
		}
		if gone := points - f.NumPoints(); gone > 0 {
			if f != nil && len(f.Messages) > messages {
				rendered += gone
			} else {
				p.heldBack.Add(uint64(gone))
			}
		}
		if f != nil && len(f.Requests) > 0 {
			a.request(p, f.Requests)
			f.Requests = nil
		}
		if f.Empty() {
			return nil, rendered, nil
		}
	}
	return f, rendered, nil
}

// deliver hands messages to every output's queue; points is how many
// points they carry, counted as reported once a queue took them.
func (a *Agent) deliver(msgs []sdk.Message, points int) {
	if len(msgs) == 0 {
		return
	}
	if a.opts.OnMessage != nil {
		for _, m := range msgs {
			a.opts.OnMessage(m)
		}
	}
	// Counted as queued when a queue took them: messages a full disk
	// refused are counted by the queue as dropped instead.
	queued := len(a.outputs) == 0
	for _, o := range a.outputs {
		if o.push(msgs) {
			queued = true
		}
	}
	if queued {
		a.stats.messages.Add(uint64(len(msgs)))
		a.stats.reported.Add(uint64(points))
	}
}

// Once polls every input once, runs the processors and returns the
// messages the outputs would publish. Streaming inputs contribute what
// they emit within wait.
func (a *Agent) Once(ctx context.Context, wait time.Duration) ([]sdk.Message, error) {
	var out []sdk.Message
	var errs []error
	for _, in := range a.inputs {
		var frames []*sdk.Frame
		if in.caps.Stream {
			sctx, cancel := context.WithTimeout(ctx, wait)
			var mu sync.Mutex
			_ = in.impl.(sdk.StreamingInput).Stream(sctx, func(f *sdk.Frame) {
				mu.Lock()
				frames = append(frames, f)
				mu.Unlock()
				cancel()
			})
			cancel()
		} else {
			f, err := in.impl.(sdk.Input).Gather(ctx)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", in.cfg.ID, err))
				continue
			}
			frames = append(frames, f)
		}
		if !anyRead(frames) {
			errs = append(errs, fmt.Errorf("%s: %w", in.cfg.ID, ErrNothingRead))
		}
		for _, f := range frames {
			a.prepare(f)
			msgs, _, err := a.process(ctx, f, 0)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out = append(out, msgs...)
		}
	}
	return out, errors.Join(errs...)
}

// ErrNothingRead is Once's error for an input that gave no point of good
// or uncertain quality: its device could not be read at all.
var ErrNothingRead = errors.New("no point could be read")

// anyRead reports whether frames carry a point that was read.
func anyRead(frames []*sdk.Frame) bool {
	for _, f := range frames {
		if f == nil {
			continue
		}
		for _, b := range f.Batches {
			for _, p := range b.Points {
				if p.Quality != sdk.QualityBad {
					return true
				}
			}
		}
		if len(f.Alarms) > 0 || len(f.Pictures) > 0 {
			return true
		}
	}
	return false
}

// Points is the point registry (check's listing, the console).
func (a *Agent) Points() []sdk.PointSchema {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.registry.Schemas()
}

// outputByID finds an output's runner.
func (a *Agent) outputByID(id string) *outputRunner {
	for _, o := range a.outputs {
		if o.in.cfg.ID == id {
			return o
		}
	}
	return nil
}

// TuneRuntime sets the Go runtime of a gateway process up for its work:
// runtimecfg.Apply, the settings every edgepipe process (the gateway and each
// built-in plugin's process) runs with, the environment's GOMAXPROCS and GOMEMLIMIT
// winning.
func TuneRuntime() { runtimecfg.Apply() }
