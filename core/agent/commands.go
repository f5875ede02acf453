package agent

import (
	"context"
	"errors"
	"path"
	"strings"
	"time"

	"github.com/edgepipe/edgepipe/core/command"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// writeTimeout bounds a write to a device, so that a dead device answers
// with an error reply rather than never.
const writeTimeout = 10 * time.Second

// handleCommand serves one command from the server. It runs on the output's
// command goroutine, never on the polling path; the reply goes back through
// the output that received the command.
func (a *Agent) handleCommand(o *outputRunner, c sdk.Command) {
	base := a.cfg.Agent.TopicPrefix + a.cfg.Agent.DeviceID
	switch c.Kind {
	case "write":
		a.reply(o, base+"/data/write/reply", a.write(c.Payload))
	case "ack":
		ack, err := command.ParseAck(c.Payload)
		r := newJSON().str("id", ack.ID).ts()
		if err == nil {
			err = a.handleByProcessors(c)
		}
		if err != nil {
			r.bool("ok", false).str("error", err.Error())
		} else {
			r.bool("ok", true)
		}
		a.reply(o, base+"/alarm/ack/reply", r.done())
	case "system":
		name := path.Base(c.Topic)
		r := newJSON().str("command", name).ts()
		switch strings.ToLower(name) {
		case "reboot":
			if a.opts.OnReboot == nil {
				r.bool("ok", false).str("error", "reload is not available in this mode")
			} else if err := a.opts.OnReboot(); err != nil {
				r.bool("ok", false).str("error", err.Error())
			} else {
				r.bool("ok", true)
			}
		default:
			r.bool("ok", false).str("error", "unknown system command "+name)
		}
		a.reply(o, base+"/system/reply", r.done())
	default:
		a.log.Warn("unknown command kind from output", "output", o.in.cfg.ID, "kind", c.Kind)
	}
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
		if !f.Empty() {
			msgs, err := a.process(ctx, f, i+1)
			if err != nil {
				return err
			}
			out = append(out, msgs...)
		}
	}
	if !handled {
		if notMine != nil {
			return notMine
		}
		return errNoAlarms
	}
	a.deliver(out)
	return nil
}

func (a *Agent) reply(o *outputRunner, topic string, payload []byte) {
	if err := o.q.Push([]sdk.Message{{Topic: topic, Payload: payload, QoS: 1}}); err != nil {
		a.log.Error("queueing reply", "err", err)
	}
}

// write checks every point of a write command against the registry, sends
// the good ones to their inputs (one call per input) and builds the reply.
// A bad point never blocks the good ones.
func (a *Agent) write(payload []byte) []byte {
	w, err := command.ParseWrite(payload)
	r := newJSON().str("id", w.ID).ts()
	if err != nil {
		return r.bool("ok", false).str("error", err.Error()).done()
	}
	results := make([]string, len(w.Points)) // "" = ok
	type job struct {
		idx []int
		req []sdk.WriteRequest
	}
	jobs := map[*instance]*job{}
	var order []*instance
	for i, p := range w.Points {
		s, owner, ok := a.registry.Lookup(p.Name)
		switch {
		case !ok:
			results[i] = "unknown point " + p.Name
			continue
		case !s.Access.Subscribes():
			results[i] = "point " + p.Name + " is read-only (access=" + s.Access.String() + ")"
			continue
		case !owner.caps.Write:
			results[i] = "input " + owner.cfg.ID + " does not accept writes"
			continue
		}
		v, err := command.Convert(p.Value, s)
		if err != nil {
			results[i] = "point " + p.Name + ": " + err.Error()
			continue
		}
		j := jobs[owner]
		if j == nil {
			j = &job{}
			jobs[owner] = j
			order = append(order, owner)
		}
		j.idx = append(j.idx, i)
		j.req = append(j.req, sdk.WriteRequest{Device: s.Device, Name: s.Name, Value: v})
	}
	for _, in := range order {
		j := jobs[in]
		ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
		res, err := in.impl.(sdk.Writer).Write(ctx, j.req)
		cancel()
		for k, i := range j.idx {
			switch {
			case err != nil:
				results[i] = err.Error()
			case k < len(res):
				results[i] = res[k].Error
			default:
				results[i] = "no result from input"
			}
		}
		in.readBackAfter(j.req, res, err)
	}
	res := newJSON()
	for i, p := range w.Points {
		e := newJSON()
		if results[i] == "" {
			e.bool("ok", true)
		} else {
			e.bool("ok", false).str("error", results[i])
		}
		res.raw(p.Name, e.done())
	}
	return r.raw("results", res.done()).done()
}

// jsonObj builds the small reply objects without reflection.
type jsonObj struct{ b []byte }

func newJSON() *jsonObj { return &jsonObj{b: []byte{'{'}} }

func (j *jsonObj) key(k string) *jsonObj {
	if len(j.b) > 1 {
		j.b = append(j.b, ',')
	}
	j.b = sdk.AppendJSONString(j.b, k)
	j.b = append(j.b, ':')
	return j
}
func (j *jsonObj) str(k, v string) *jsonObj { j.key(k).b = sdk.AppendJSONString(j.b, v); return j }
func (j *jsonObj) bool(k string, v bool) *jsonObj {
	j.key(k).b = sdk.Bool(v).AppendJSON(j.b)
	return j
}
func (j *jsonObj) ts() *jsonObj {
	j.key("ts").b = sdk.Int(time.Now().UnixMilli()).AppendJSON(j.b)
	return j
}
func (j *jsonObj) raw(k string, v []byte) *jsonObj { j.key(k).b = append(j.b, v...); return j }
func (j *jsonObj) done() []byte                    { return append(j.b, '}') }
