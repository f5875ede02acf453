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
	"github.com/edgepipe/edgepipe/plugins/sdk/fbox"
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

// maxBatchBytes caps a batch by size as well (queue.MessageSize; a single
// larger message still goes alone). What an output had in flight when its
// connection dropped is sent again, so this bounds the duplicates per
// reconnect; and whatever the output sends after the batch (an MQTT
// keepalive ping) waits behind it: 256 KiB cross a 60 KB/s link in about
// 4 s, within the default ping_timeout of 10 s, where 1 MiB (17 s) had the
// connection dropped for a late PINGRESP. Small messages are capped by
// publishBatch long before this.
const maxBatchBytes = 256 << 10

// The time budget of one Publish grows with the batch's bytes:
//
//	budget = publishBaseBudget + bytes / publishMinRate
//
// 30 s for the round trips and a reconnect, plus the time the bytes take at
// 16 KiB/s (128 kbit/s, a poor cellular uplink): 30 s for a batch of small
// messages, 46 s for a full 256 KiB batch, 30 s + 1 s per 16 KiB for one
// larger message (a picture). It is a backstop for a server
// that takes the bytes and never confirms them; a link that is merely slow
// is not cut short by it (the output's socket fails only when it stalls),
// and what was confirmed when it runs out is acknowledged all the same.
const (
	publishBaseBudget = 30 * time.Second
	publishMinRate    = 16 << 10 // bytes per second
)

// publishBudget is the time allowed for a batch of the given bytes.
func publishBudget(bytes int64) time.Duration {
	return publishBaseBudget + time.Duration(bytes)*time.Second/publishMinRate
}

// nextBatch trims what the queue offered to at most maxBatchBytes (at
// least one message) and returns it with its size.
func nextBatch(msgs []sdk.Message) ([]sdk.Message, int64) {
	var bytes int64
	for i := range msgs {
		sz := queue.MessageSize(&msgs[i])
		if i > 0 && bytes+sz > maxBatchBytes {
			return msgs[:i], bytes
		}
		bytes += sz
	}
	return msgs, bytes
}

// nextPeek is how many messages to read from the queue next time: about
// as many as fitted in the last batch when maxBatchBytes trimmed it, so
// that a queue of pictures is not read by the 256 to send a handful, and
// back up to publishBatch (doubling) once batches fit whole again.
func nextPeek(peek, offered, taken int) int {
	if taken < offered {
		return taken + 1
	}
	if offered == peek {
		return min(2*peek, publishBatch)
	}
	return peek
}

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
	// pushLog rate-limits the log of a queue that cannot be written.
	pushLog pushLog
	// news is the latest retained message the gateway announced of itself
	// (the status) and not yet confirmed; newsReady wakes the worker for
	// it. News never enters the queue: only the latest is worth sending,
	// ahead of any backlog, and it is not kept across a restart.
	news      atomic.Pointer[sdk.Message]
	newsReady chan struct{}
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
	r := &outputRunner{a: a, in: in, q: q, resume: make(chan struct{}, 1), newsReady: make(chan struct{}, 1)}
	r.enabled.Store(p.Enabled)
	return r, nil
}

// SetEnabled pauses or resumes an output at run time; its queue keeps
// filling while paused, and drains on resume. It is the one way to do so:
// the server's system/Pause and system/Resume commands call it, and so
// does the local API. id is the output's alias (or generated id). A
// reload keeps the state of an output whose table did not change and
// applies the configured `enabled` to one whose table did. It is safe to
// call from anywhere at any time, also during a reload (it takes only
// a.outMu, never a.mu, which Reload holds while it waits for the command
// goroutines that call this).
func (a *Agent) SetEnabled(id string, on bool) error {
	a.outMu.RLock()
	defer a.outMu.RUnlock()
	o := a.outputByID(id)
	if o == nil {
		return fmt.Errorf("no output %q", fbox.Clip(id))
	}
	if o.enabled.Swap(on) != on {
		a.log.Info(map[bool]string{false: "output paused", true: "output resumed"}[on], "output", id)
	}
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
	dctx := ctx
	dl, hasDeadline := ctx.Deadline()
	if hasDeadline {
		var cancel context.CancelFunc
		dctx, cancel = context.WithDeadline(ctx, dl.Add(-stopGrace))
		defer cancel()
	}
	up := r.drain(dctx)
	// The grace is what is left of ctx once the drain ended, not what was
	// left when the stop began: a drain that overran its deadline (a slow
	// health answer) must not push the stop past ctx.
	grace := stopGrace
	if hasDeadline {
		grace = max(min(grace, time.Until(dl)), 0)
	}
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
// tell are taken as connected), within ctx.
func (r *outputRunner) connected(ctx context.Context) bool {
	// A second, not healthTimeout: stop and reload ask this on their way.
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	h, asked, err := r.in.askHealth(ctx)
	return !asked || err == nil && h.OK
}

func (r *outputRunner) run(wg *sync.WaitGroup) {
	defer wg.Done()
	out := r.in.impl.(sdk.Output)
	retry := backoff.New(publishRetry)
	var lastLog time.Time
	peek := publishBatch
	// failed logs a failed publish (rate-limited) and waits out the retry.
	failed := func(err error, batch int) {
		r.in.errors.Add(1)
		if time.Since(lastLog) > 30*time.Second {
			r.in.log.Warn("publish failed; messages stay queued", "err", err,
				"confirmed", sdk.ConfirmedOf(err, batch), "batch", batch, "queued", r.q.Stats().Depth)
			lastLog = time.Now()
		}
		t := time.NewTimer(retry.Next())
		select {
		case <-t.C:
		case <-r.stopping:
		case <-r.ctx.Done():
		}
		t.Stop()
	}
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
		if n := r.news.Load(); n != nil {
			pctx, cancel := context.WithTimeout(r.ctx, publishBudget(queue.MessageSize(n)))
			err := out.Publish(pctx, []sdk.Message{*n})
			cancel()
			if sdk.ConfirmedOf(err, 1) == 1 {
				r.news.CompareAndSwap(n, nil) // unless a newer one came meanwhile
				retry.Reset()
				continue
			}
			failed(err, 1)
			continue
		}
		msgs, err := r.q.Peek(peek)
		if err != nil {
			r.in.log.Error("reading queue", "err", err)
		}
		if len(msgs) == 0 {
			select {
			case <-r.q.Ready():
			case <-r.newsReady:
			case <-r.resume:
			case <-r.stopping:
			case <-r.ctx.Done():
			}
			continue
		}
		offered := len(msgs)
		msgs, bytes := nextBatch(msgs)
		peek = nextPeek(peek, offered, len(msgs))
		pctx, cancel := context.WithTimeout(r.ctx, publishBudget(bytes))
		err = out.Publish(pctx, msgs)
		cancel()
		// The confirmed prefix leaves the queue even when the rest failed
		// (sdk.PartialError), so a slow link drains instead of resending
		// the same first messages for ever.
		if n := sdk.ConfirmedOf(err, len(msgs)); n > 0 {
			if aerr := r.q.Ack(n); aerr != nil {
				r.in.log.Error("acknowledging queue", "err", aerr)
			}
			r.a.settle() // processor frames whose messages left (settle.go)
			r.in.published.Add(uint64(n))
			retry.Reset() // the link moves: retry the rest soon
		}
		if err != nil {
			failed(err, len(msgs))
			continue
		}
		retry.Reset()
	}
}

// announce hands the output a piece of news to send before its backlog,
// replacing any news not yet sent: only the latest counts.
func (r *outputRunner) announce(m sdk.Message) {
	r.news.Store(&m)
	select {
	case r.newsReady <- struct{}{}:
	default:
	}
}

// drain gives the output until ctx ends to empty its queue, while it is
// connected; it reports whether the output was connected when it stopped
// waiting.
func (r *outputRunner) drain(ctx context.Context) bool {
	if !r.connected(ctx) {
		return ctx.Err() != nil // out of time asking: no answer is not "down"
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for i := 1; r.enabled.Load() && r.q.Stats().Depth > 0; i++ {
		select {
		case <-ctx.Done():
			return true
		case <-t.C:
		}
		if i%10 == 0 && !r.connected(ctx) {
			return ctx.Err() != nil
		}
	}
	return true
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
	a.logDamage(id, q.Damage())
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

// OutputState is one output as the local API lists it.
type OutputState struct {
	ID     string `json:"id"`     // the alias (or generated id) SetEnabled takes
	Plugin string `json:"plugin"` // "outputs.mqtt"
	// Enabled is false while the output is paused.
	Enabled bool `json:"enabled"`
	// Connected is the output's own account (sdk.HealthReporter): false
	// with Reason when it says it is not connected or does not answer. An
	// output that reports no health counts as connected.
	Connected  bool   `json:"connected"`
	Reason     string `json:"reason,omitempty"`
	QueueDepth int    `json:"queue_depth"` // messages waiting
	QueueBytes int64  `json:"queue_bytes"`
}

// Outputs lists the outputs in configuration order. Like Health it asks
// each output how it is (within healthTimeout), and it is safe to call
// from outside the pipeline at any time: a reload in progress is waited
// for.
func (a *Agent) Outputs(ctx context.Context) []OutputState {
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := make([]OutputState, 0, len(a.outputs))
	for _, o := range a.outputs {
		st := o.q.Stats()
		s := OutputState{ID: o.in.cfg.ID, Plugin: o.in.cfg.FullName(), Enabled: o.enabled.Load(), Connected: true,
			QueueDepth: st.Depth, QueueBytes: st.Bytes}
		if h, asked, err := o.in.askHealth(ctx); asked {
			switch {
			case err != nil:
				s.Connected, s.Reason = false, "health check failed: "+err.Error()
			default:
				s.Connected, s.Reason = h.OK, h.Reason
			}
		}
		out = append(out, s)
	}
	return out
}
