package agent

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edgepipe/edgepipe/core/command"
	"github.com/edgepipe/edgepipe/internal/backoff"
	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/fbox"
)

// writeTimeout bounds a write to a device, so that a dead device answers
// with an error reply rather than never.
const writeTimeout = 10 * time.Second

// commandSlots bounds the commands the core holds for one output beside
// the one it serves. Past it the output's handle call blocks, the output's
// own bounded intake fills, and the output answers busy: the bound is
// end to end, and nothing is dropped silently.
const commandSlots = 64

// replyBatch is how many replies go into the output's queue at once: one
// Push (one fsync with a disk queue) per burst of commands, not per
// command.
const replyBatch = 256

// commandLoop receives the output's commands from the server and serves
// them on a second goroutine, so that a slow device write holds up only
// commands, never polling. It returns when the output's command context
// ends, having answered every command it took.
func (a *Agent) commandLoop(o *outputRunner) {
	queue := make(chan sdk.Command, commandSlots)
	served := make(chan struct{})
	go func() {
		defer close(served)
		a.serveCommands(o, queue)
	}()
	handle := func(c sdk.Command) {
		select {
		case queue <- c:
		case <-o.cmdCtx.Done():
			a.replyAll(o, []sdk.Message{fbox.Reply(c, fbox.Busy("the gateway is reloading or stopping; send it again"))})
		}
	}
	retry := backoff.New(commandReopen)
	for o.cmdCtx.Err() == nil {
		opened := time.Now()
		err := o.in.impl.(sdk.CommandSource).Commands(o.cmdCtx, handle)
		if o.cmdCtx.Err() != nil {
			break
		}
		if time.Since(opened) > commandReopen.Max {
			retry.Reset() // it ran fine for a while: this is a new failure
		}
		wait := retry.Next()
		o.in.log.Warn("command stream ended, reopening", "err", err, "in", wait)
		if !backoff.Sleep(o.cmdCtx, wait) {
			break
		}
	}
	close(queue)
	<-served
}

// serveCommands serves commands in arrival order and queues their replies
// in bursts. Once the command context ends, what is still waiting is
// answered busy, not served: the pipeline is changing under it.
func (a *Agent) serveCommands(o *outputRunner, queue <-chan sdk.Command) {
	replies := make([]sdk.Message, 0, replyBatch)
	for c := range queue {
		replies = append(replies[:0], a.answer(o, c))
	more:
		for len(replies) < replyBatch {
			select {
			case c, ok := <-queue:
				if !ok {
					break more
				}
				replies = append(replies, a.answer(o, c))
			default:
				break more
			}
		}
		a.replyAll(o, replies)
	}
}

// answer serves one command and renders its reply.
func (a *Agent) answer(o *outputRunner, c sdk.Command) sdk.Message {
	if o.cmdCtx.Err() != nil {
		return fbox.Reply(c, fbox.Busy("the gateway is reloading or stopping; send it again"))
	}
	if c.Kind == sdk.CommandConfig && a.opts.OnConfig != nil {
		return a.opts.OnConfig(o.in.cfg.ID, c)
	}
	return fbox.Reply(c, a.Execute(c))
}

// Announce sends a message the gateway says of itself to the server (a
// delayed configuration reply, the status) on every output that takes
// commands: the outputs that talk to a server.
//
// A retained message (the status) is news, not data: it describes the
// gateway now, so it goes out ahead of the output's backlog and a newer
// one replaces it while it waits; it never enters the store-and-forward
// queue, where it could be replayed after (and over) a fresher status or
// outlive a restart. Any other message (a reply) is queued like data, so
// it is not lost while the server is away.
func (a *Agent) Announce(m sdk.Message) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	for _, o := range a.outputs {
		if !o.in.caps.Commands {
			continue
		}
		if m.Retain && m.Topic != "" {
			o.announce(m)
			continue
		}
		a.replyAll(o, []sdk.Message{m})
	}
}

func (a *Agent) replyAll(o *outputRunner, msgs []sdk.Message) {
	msgs = slices.DeleteFunc(msgs, func(m sdk.Message) bool { return m.Topic == "" })
	if len(msgs) == 0 {
		return
	}
	if err := o.q.Push(msgs); err != nil {
		a.log.Error("queueing replies", "output", o.in.cfg.ID, "replies", len(msgs), "err", err)
	}
}

// Execute serves one command from the server and returns its result: it
// checks a write against the point registry and routes it to the inputs,
// gives an acknowledgement to the processors, and runs system commands.
// A command that arrived with Err set is refused as it is.
func (a *Agent) Execute(c sdk.Command) sdk.Result {
	switch c.Kind {
	case sdk.CommandWrite:
		return a.write(c)
	case sdk.CommandAck:
		if c.Err != "" {
			return sdk.Result{Error: c.Err}
		}
		if err := a.handleByProcessors(c); err != nil {
			return sdk.Result{Error: err.Error()}
		}
		return sdk.Result{}
	case sdk.CommandSystem:
		return a.system(c)
	case sdk.CommandConfig:
		if c.Err != "" {
			return sdk.Result{Error: c.Err}
		}
		return sdk.Result{Error: "remote configuration is not enabled on this gateway"}
	}
	a.log.Warn("unknown command kind from an output", "kind", c.Kind)
	return sdk.Result{Error: "unknown command"}
}

// system runs a system command.
func (a *Agent) system(c sdk.Command) sdk.Result {
	if c.Err != "" {
		return sdk.Result{Error: c.Err}
	}
	var err error
	switch c.System {
	case sdk.SystemReboot:
		if a.opts.OnReboot == nil {
			err = errString("reload is not available in this mode")
		} else {
			err = a.opts.OnReboot()
		}
	case sdk.SystemPause, sdk.SystemResume:
		err = a.SetEnabled(c.Output, c.System == sdk.SystemResume)
	default:
		err = errString("unknown system command " + fbox.Clip(c.Name))
	}
	a.log.Info("system command", "command", c.System.String(), "id", fbox.Clip(c.ID), "output", fbox.Clip(c.Output),
		"result", resultText(err))
	if err != nil {
		return sdk.Result{Error: err.Error()}
	}
	return sdk.Result{}
}

type errString string

func (e errString) Error() string { return string(e) }

const errNoAlarms = errString("no alarm processor handles acknowledgements in this configuration")

// handleByProcessors gives a command to the processors that handle
// commands, in chain order; what one returns (an "acked" event) travels
// down the rest of the chain to the outputs. The first error ends it.
func (a *Agent) handleByProcessors(c sdk.Command) error {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	a.procMu.Lock()
	defer a.procMu.Unlock()
	var notMine error
	handled := false
	var out []sdk.Message
	points := 0
	for i, p := range a.processors {
		if !p.caps.Handle {
			continue
		}
		f, err := p.impl.(sdk.CommandHandler).HandleCommand(ctx, c)
		if perr := p.persist(); perr != nil {
			p.log.Warn("saving plugin state failed", "err", perr)
		}
		if errors.Is(err, sdk.ErrNotMine) {
			notMine = err
			continue
		}
		handled = true
		if err != nil {
			return err
		}
		if f != nil && len(f.Requests) > 0 {
			a.request(p, f.Requests)
			f.Requests = nil
		}
		if !f.Empty() {
			msgs, n, err := a.process(ctx, f, i+1)
			if err != nil {
				return err
			}
			out = append(out, msgs...)
			points += n
		}
	}
	if !handled {
		if notMine != nil {
			return notMine
		}
		return errNoAlarms
	}
	a.deliver(out, points)
	return nil
}

// target is a point a write may go to: it exists, accepts writes, and its
// input takes them.
func (a *Agent) target(name string) (sdk.PointSchema, *instance, error) {
	s, owner, ok := a.registry.Lookup(name)
	switch {
	case !ok:
		return s, nil, errString("unknown point " + fbox.Clip(name))
	case !s.Access.Subscribes():
		return s, nil, errString("point " + fbox.Clip(name) + " is read-only (access=" + s.Access.String() + ")")
	case !owner.caps.Write:
		return s, nil, errString("input " + owner.cfg.ID + " does not accept writes")
	}
	return s, owner, nil
}

// convert checks a value, as the JSON text sent, against the point's type
// and bounds (command.Convert), clipping the value in the error.
func convert(raw json.RawMessage, s sdk.PointSchema) (sdk.Value, error) {
	v, err := command.Convert(raw, s)
	if err != nil {
		return v, errString("point " + fbox.Clip(s.FullName()) + ": " + clipValue(err.Error(), raw))
	}
	return v, nil
}

// clipValue keeps an error message from quoting more than fbox.MaxQuoted
// characters of the value it refuses, however it quoted it.
func clipValue(msg string, raw json.RawMessage) string {
	text := string(raw)
	if len(text) <= fbox.MaxQuoted {
		return msg
	}
	forms := []string{text}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		forms = append(forms, strconv.Quote(s), s)
	}
	for _, f := range forms {
		if len(f) > fbox.MaxQuoted {
			msg = strings.ReplaceAll(msg, f, fbox.Clip(f))
		}
	}
	// Quoted some other way (a prefix of it): cut the message.
	if len(msg) > maxErrorText {
		msg = strings.ToValidUTF8(msg[:maxErrorText], "") + "…"
	}
	return msg
}

// maxErrorText bounds an error message about a refused value: its fixed
// text and a clipped value fit easily.
const maxErrorText = 4 * fbox.MaxQuoted

// writeJob is the part of a write that goes to one input.
type writeJob struct {
	idx []int
	req []sdk.WriteRequest
}

// write checks every point of a write command against the registry, sends
// the good ones to their inputs (one call per input) and returns a result
// per point. A bad point never blocks the good ones. Every point is
// logged at info level: the audit trail of SPEC 5.
func (a *Agent) write(c sdk.Command) sdk.Result {
	if c.Err != "" {
		a.log.Info("write refused", "id", fbox.Clip(c.ID), "result", c.Err)
		return sdk.Result{Error: c.Err}
	}
	res := sdk.Result{Points: make([]sdk.PointResult, len(c.Points))}
	jobs := map[*instance]*writeJob{}
	var order []*instance
	for i, p := range c.Points {
		res.Points[i].Name = p.Name
		s, owner, err := a.target(p.Name)
		var v sdk.Value
		if err == nil {
			v, err = convert(p.Value, s)
		}
		if err != nil {
			res.Points[i].Error = err.Error()
			continue
		}
		j := jobs[owner]
		if j == nil {
			j = &writeJob{}
			jobs[owner] = j
			order = append(order, owner)
		}
		j.idx = append(j.idx, i)
		j.req = append(j.req, sdk.WriteRequest{Device: s.Device, Name: s.Name, Value: v})
	}
	for _, in := range order {
		j := jobs[in]
		errs := a.writeTo(in, j.req)
		for k, i := range j.idx {
			// An input's error may quote the value too.
			res.Points[i].Error = clipValue(errs[k], c.Points[i].Value)
		}
	}
	for i, p := range c.Points {
		a.log.Info("write", "id", fbox.Clip(c.ID), "point", fbox.Clip(p.Name), "value", fbox.Clip(string(p.Value)),
			"result", resultText(errOrNil(res.Points[i].Error)))
	}
	return res
}

// writeTo sends checked requests to their input and returns one error
// text per request ("" for success); the points written successfully are
// read back at once (readBackAfter).
func (a *Agent) writeTo(in *instance, reqs []sdk.WriteRequest) []string {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	res, err := in.impl.(sdk.Writer).Write(ctx, reqs)
	cancel()
	out := make([]string, len(reqs))
	for k := range reqs {
		switch {
		case err != nil:
			out[k] = err.Error()
		case k < len(res):
			out[k] = res[k].Error
		default:
			out[k] = "no result from input"
		}
	}
	in.readBackAfter(reqs, res, err)
	return out
}

// writeValue writes one typed value through the same checks as a write
// from the server (a processor's Request).
func (a *Agent) writeValue(name string, v sdk.Value) error {
	s, owner, err := a.target(name)
	if err != nil {
		return err
	}
	raw := v.AppendJSON(nil)
	if v, err = convert(raw, s); err != nil {
		return err
	}
	if e := a.writeTo(owner, []sdk.WriteRequest{{Device: s.Device, Name: s.Name, Value: v}})[0]; e != "" {
		return errString(e)
	}
	return nil
}

func errOrNil(s string) error {
	if s == "" {
		return nil
	}
	return errString(s)
}

// resultText is a result for the log: "ok" or the error.
func resultText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// maxSideRequests bounds the processors' requests served at once: a
// processor gone wild cannot start a goroutine per point.
const maxSideRequests = 16

// request serves the requests processor p put in its frame (an alarm
// asking a camera for a picture): each goes through the checked write
// path, beside the pipeline (a device may take seconds), on a goroutine
// that pausing and closing the agent wait for. A dry run (check, once)
// has no side effects and serves none.
func (a *Agent) request(p *instance, reqs []sdk.Request) {
	for _, r := range reqs {
		if a.opts.DryRun {
			p.log.Debug("request not served in a dry run", "point", fbox.Clip(r.Point), "reason", r.Reason)
			continue
		}
		select {
		case a.sideSlots <- struct{}{}:
		default:
			p.log.Warn("request refused: too many are being served", "point", fbox.Clip(r.Point), "reason", r.Reason)
			continue
		}
		a.sideWG.Add(1)
		go func() {
			defer func() {
				<-a.sideSlots
				a.sideWG.Done()
			}()
			err := a.writeValue(r.Point, r.Value)
			a.log.Info("write", "by", p.cfg.ID, "reason", r.Reason, "point", fbox.Clip(r.Point),
				"value", fbox.Clip(r.Value.String()), "result", resultText(err))
		}()
	}
}
