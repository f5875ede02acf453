package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgepipe/edgepipe/core/queue"
	"github.com/edgepipe/edgepipe/internal/backoff"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// publishRetry spaces the retries of a failed publish (the output is
// usually waiting for its broker to come back); commandReopen the
// reopening of a command stream that ended.
var (
	publishRetry  = backoff.Policy{Initial: 100 * time.Millisecond, Max: 5 * time.Second}
	commandReopen = backoff.Policy{Initial: time.Second, Max: 30 * time.Second}
)

// publishBatch is how many queued messages one Publish call carries: enough
// to keep many QoS 1 messages in flight, few enough that a failed batch is
// cheap to resend.
const publishBatch = 256

// outputRunner feeds one output from its queue.
type outputRunner struct {
	a       *Agent
	in      *instance
	q       queue.Queue
	enabled atomic.Bool
	resume  chan struct{}
	// stopping asks the worker to stop after the publish in flight; ctx
	// cancels that publish too. The command loop has its own context: it
	// stops first, so no command arrives while the pipeline changes.
	stopping  chan struct{}
	ctx       context.Context
	cancel    context.CancelFunc
	cmdCtx    context.Context
	cmdCancel context.CancelFunc
	// running says the worker was started and not stopped: a reload keeps
	// an unchanged output's worker going. The goroutines that start and
	// stop the pipeline are the only ones to touch it.
	running  bool
	workerWG sync.WaitGroup
	cmdWG    sync.WaitGroup
}

func (a *Agent) newOutputRunner(in *instance) (*outputRunner, error) {
	p := in.cfg
	var q queue.Queue
	switch p.Buffer {
	case "", "disk":
		if a.opts.DryRun {
			q = queue.NewMemory(p.BufferLimit)
			break
		}
		var err error
		q, err = a.openDiskQueue(p.ID, filepath.Join(a.cfg.Agent.DataDir, "queue", safeID(p.ID)), p.BufferLimit)
		if err != nil {
			return nil, sdk.ConfigError{File: p.File, Line: p.Line, Path: p.ID + ".buffer", Msg: err.Error()}
		}
	case "memory":
		q = queue.NewMemory(p.BufferLimit)
	case "none":
		// No store-and-forward: hold only what one publish can carry.
		q = queue.NewMemory(1 << 20)
	default:
		return nil, sdk.ConfigError{File: p.File, Line: p.Line, Path: p.ID + ".buffer", Msg: fmt.Sprintf("want disk, memory or none, got %q", p.Buffer)}
	}
	r := &outputRunner{a: a, in: in, q: q, resume: make(chan struct{}, 1)}
	r.enabled.Store(p.Enabled)
	return r, nil
}

// SetEnabled pauses or resumes an output at run time; its queue keeps
// filling while paused.
func (a *Agent) SetEnabled(id string, on bool) error {
	o := a.outputByID(id)
	if o == nil {
		return fmt.Errorf("no output %q", id)
	}
	o.enabled.Store(on)
	select {
	case o.resume <- struct{}{}:
	default:
	}
	return nil
}

// start runs the output's worker, unless it still runs (a reload kept the
// output), and its command loop.
func (r *outputRunner) start() {
	if !r.running {
		r.ctx, r.cancel = context.WithCancel(context.Background())
		r.stopping = make(chan struct{})
		r.running = true
		r.workerWG.Add(1)
		go r.run(&r.workerWG)
	}
	r.cmdCtx, r.cmdCancel = context.WithCancel(context.Background())
	if r.in.caps.Commands {
		r.cmdWG.Add(1)
		go func() {
			defer r.cmdWG.Done()
			r.a.commandLoop(r)
		}()
	}
}

// stopCommands stops the command loop and waits for it.
func (r *outputRunner) stopCommands() {
	if r.cmdCancel != nil {
		r.cmdCancel()
	}
	r.cmdWG.Wait()
}

// stop stops the worker within ctx. While the output is connected it may
// empty its queue until stopGrace before ctx's deadline, then finish the
// publish in flight for up to stopGrace (so a live broker's
// acknowledgement is not thrown away and the batch resent). An output
// that is not connected is stopped at once: a broker that is not there
// acknowledges nothing, and what the output holds stays queued. A stop
// therefore never waits on a dead broker: neither a reload (polling is
// paused meanwhile) nor the gateway's documented stop time.
func (r *outputRunner) stop(ctx context.Context) {
	if !r.running {
		return
	}
	grace := stopGrace
	dctx := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		dctx, cancel = context.WithDeadline(ctx, dl.Add(-stopGrace))
		defer cancel()
		grace = max(min(grace, time.Until(dl)), 0)
	}
	up := r.drain(dctx)
	done := make(chan struct{})
	go func() {
		r.workerWG.Wait()
		close(done)
	}()
	close(r.stopping)
	if !up {
		r.cancel()
	}
	t := time.NewTimer(grace)
	select {
	case <-done:
	case <-t.C:
		r.cancel()
		<-done
	}
	t.Stop()
	r.cancel()
	r.running = false
}

// connected asks the output whether it is connected (outputs that cannot
// tell are taken as connected).
func (r *outputRunner) connected() bool {
	hr, ok := r.in.impl.(sdk.HealthReporter)
	if !ok || !(r.in.caps.Health || r.in.sup != nil) {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	h, err := hr.Health(ctx)
	return err == nil && h.OK
}

func (r *outputRunner) run(wg *sync.WaitGroup) {
	defer wg.Done()
	out := r.in.impl.(sdk.Output)
	retry := backoff.New(publishRetry)
	var lastLog time.Time
	for r.ctx.Err() == nil {
		select {
		case <-r.stopping:
			return
		default:
		}
		if !r.enabled.Load() {
			select {
			case <-r.resume:
			case <-r.stopping:
			case <-r.ctx.Done():
			}
			continue
		}
		msgs, err := r.q.Peek(publishBatch)
		if err != nil {
			r.in.log.Error("reading queue", "err", err)
		}
		if len(msgs) == 0 {
			select {
			case <-r.q.Ready():
			case <-r.resume:
			case <-r.stopping:
			case <-r.ctx.Done():
			}
			continue
		}
		pctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
		err = out.Publish(pctx, msgs)
		cancel()
		if err != nil {
			r.in.errors.Add(1)
			if time.Since(lastLog) > 30*time.Second {
				r.in.log.Warn("publish failed; messages stay queued", "err", err, "queued", r.q.Stats().Depth)
				lastLog = time.Now()
			}
			t := time.NewTimer(retry.Next())
			select {
			case <-t.C:
			case <-r.stopping:
			case <-r.ctx.Done():
			}
			t.Stop()
			continue
		}
		retry.Reset()
		if err := r.q.Ack(len(msgs)); err != nil {
			r.in.log.Error("acknowledging queue", "err", err)
		}
		r.in.published.Add(uint64(len(msgs)))
	}
}

// drain gives the output until ctx ends to empty its queue, while it is
// connected; it reports whether the output was connected when it stopped
// waiting.
func (r *outputRunner) drain(ctx context.Context) bool {
	if !r.connected() {
		return false
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for i := 1; r.enabled.Load() && r.q.Stats().Depth > 0; i++ {
		select {
		case <-ctx.Done():
			return true
		case <-t.C:
		}
		if i%10 == 0 && !r.connected() {
			return false
		}
	}
	return true
}

// commandLoop forwards the output's commands from the server to the core.
func (a *Agent) commandLoop(o *outputRunner) {
	retry := backoff.New(commandReopen)
	for o.cmdCtx.Err() == nil {
		opened := time.Now()
		err := o.in.impl.(sdk.CommandSource).Commands(o.cmdCtx, func(c sdk.Command) { a.handleCommand(o, c) })
		if o.cmdCtx.Err() != nil {
			return
		}
		if time.Since(opened) > commandReopen.Max {
			retry.Reset() // it ran fine for a while: this is a new failure
		}
		wait := retry.Next()
		o.in.log.Warn("command stream ended, reopening", "err", err, "in", wait)
		if !backoff.Sleep(o.cmdCtx, wait) {
			return
		}
	}
}

// stopGrace is how long a pausing output may finish the publish in flight:
// long enough for a live broker to acknowledge a batch (so a reload sends
// nothing twice), short enough that a dead one does not hold up a reload.
const stopGrace = 2 * time.Second

// openDiskQueue opens the disk-backed store-and-forward queue of an output,
// replaying what was never acknowledged.
func (a *Agent) openDiskQueue(id, dir string, limit int64) (queue.Queue, error) {
	q, err := queue.OpenDisk(dir, limit)
	if err != nil {
		return nil, err
	}
	if n := q.Truncated(); n > 0 {
		a.log.Warn("queue had a damaged tail (a crash mid-write); cut it off", "output", id, "bytes", n)
	}
	if d := q.Stats().Depth; d > 0 {
		a.log.Info("queue holds messages from before the restart; replaying", "output", id, "messages", d)
	}
	return q, nil
}

func safeID(id string) string {
	b := []byte(id)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}
