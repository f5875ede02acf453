package reload

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/fbox"
)

// remoteFile names a pushed configuration in its errors.
const remoteFile = "remote.toml"

// trial is a set applied on trial: rolled back unless confirmed in time.
type trial struct {
	id       string // the set's request id
	hash     string
	seq      int // its stored version
	deadline time.Time
	output   string // the output it came through, which must reconnect
	reached  bool   // that output has been connected since the set
	prev     Loaded
}

// rollbackWait bounds how long a rollback's announcement waits for the
// restored output to be connected before it is queued anyway.
const rollbackWait = 60 * time.Second

func (r *Reloader) topics() fbox.Topics {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fbox.NewTopics(r.cur.Cfg.Agent.TopicPrefix, r.cur.Cfg.Agent.DeviceID)
}

// Command serves a configuration command from the server that arrived
// through output (agent OnConfig). get and confirm are answered at once; a
// set that checks is answered once applied (through the agent's Announce),
// and a refused one at once with every error.
func (r *Reloader) Command(output string, c sdk.Command) sdk.Message {
	t := r.topics()
	req, err := fbox.ParseConfig(c)
	r.mu.Lock()
	remote := r.cur.Cfg.Agent.Remote
	r.mu.Unlock()
	reply := func(res fbox.ConfigResult) sdk.Message {
		r.log.Info("configuration command", "command", req.Op.String(), "id", fbox.Clip(c.ID), "output", output,
			"result", map[bool]string{true: "ok", false: res.Error}[res.Error == ""])
		return t.ConfigAnswer(c.ID, res)
	}
	switch {
	case !remote.Enabled:
		return reply(fbox.ConfigResult{Error: "remote configuration is not enabled on this gateway ([agent.remote] enabled = false)"})
	case err != nil:
		return reply(fbox.ConfigResult{Error: err.Error()})
	}
	switch req.Op {
	case fbox.ConfigGet:
		text, hash, state := r.Running()
		return reply(fbox.ConfigResult{Hash: hash, Config: text, HasConfig: true, State: state})
	case fbox.ConfigConfirm:
		return reply(r.confirm(req.Hash))
	}
	// set
	if err := verify(remote.PublicKeys, req); err != nil {
		return reply(fbox.ConfigResult{Error: err.Error()})
	}
	text := []byte(req.Config)
	cfg, err := r.Check(context.Background(), remoteFile, text)
	warnings := errorTexts(sdk.Warnings(err).Err())
	if err = sdk.Failures(err); err == nil {
		err = literalSecrets(cfg)
	}
	if err != nil {
		return reply(fbox.ConfigResult{Error: "configuration refused, the running one stays", Errors: errorTexts(err), Warnings: warnings})
	}
	confirm := time.Duration(remote.ConfirmDefault)
	if req.HasConfirm {
		confirm = req.Confirm
	}
	id := c.ID
	if err := r.later(func() { r.set(id, output, cfg, text, confirm, warnings) }); err != nil {
		return reply(fbox.ConfigResult{Error: err.Error()})
	}
	r.log.Info("configuration command", "command", "set", "id", fbox.Clip(c.ID), "output", output, "result", "accepted", "confirm", confirm)
	return sdk.Message{} // answered once applied
}

// verify checks a set's signature when keys are configured.
func verify(keys []string, req fbox.ConfigRequest) error {
	if len(keys) == 0 {
		return nil
	}
	if req.Signature == nil {
		return fmt.Errorf("configuration refused: this gateway takes only signed configurations and the set has no \"signature\"")
	}
	for _, k := range keys {
		pub, err := base64.StdEncoding.DecodeString(k)
		if err != nil || len(pub) != ed25519.PublicKeySize {
			continue
		}
		if ed25519.Verify(ed25519.PublicKey(pub), []byte(req.Config), req.Signature) {
			return nil
		}
	}
	return fmt.Errorf("configuration refused: the signature does not verify with any of [agent.remote] public_keys")
}

// literalSecrets refuses a pushed configuration that holds a secret
// itself rather than a ${VAR} reference to the box's environment.
func literalSecrets(cfg *config.Config) error {
	var errs sdk.ConfigErrors
	for _, k := range cfg.LiteralSecrets() {
		errs = append(errs, sdk.ConfigError{File: remoteFile,
			Msg: fmt.Sprintf("%s is given literally; a pushed configuration may hold secrets only as ${VAR} references to the gateway's environment", k)})
	}
	return errs.Err()
}

// set applies a checked configuration from the server, on trial when
// confirm > 0, and answers the set.
func (r *Reloader) set(id, output string, cfg *config.Config, text []byte, confirm time.Duration, warnings []string) {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	// A set replacing one still on trial rolls back, if it must, to what
	// ran before either: the last configuration known to work.
	r.mu.Lock()
	prev := r.cur
	if r.trial != nil {
		prev = r.trial.prev
	}
	r.mu.Unlock()
	r.endTrial()
	hash := Hash(text)
	state := StateConfirmed
	if confirm > 0 {
		state = StateTrial
	}
	v, serr := r.store.Save(text, Version{Hash: hash, State: state, ID: id})
	if serr != nil {
		r.log.Error("storing the configuration", "dir", r.store.Dir(), "err", serr)
	}
	err := r.apply(context.Background(), Loaded{Cfg: cfg, Text: text, Version: v.Seq, From: "remote set " + fbox.Clip(id)}, state)
	if confirm > 0 {
		r.mu.Lock()
		r.trial = &trial{id: id, hash: hash, seq: v.Seq, deadline: time.Now().Add(confirm), output: output, prev: prev}
		r.mu.Unlock()
		r.log.Info("configuration on trial", "hash", hash, "confirm_within", confirm)
	}
	res := fbox.ConfigResult{Hash: hash, State: state, Warnings: warnings}
	if err != nil {
		res.Error = "applied, but some plugins did not open"
		res.Errors = errorTexts(err)
	}
	r.a.Announce(r.topics().ConfigAnswer(id, res))
}

// confirm makes the configuration on trial final when hash is its hash.
func (r *Reloader) confirm(hash string) fbox.ConfigResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, running := r.shown()
	switch {
	case r.trial == nil && hash == running:
		return fbox.ConfigResult{Hash: running, State: r.state}
	case r.trial == nil:
		return fbox.ConfigResult{Error: "no configuration is on trial", Hash: running, State: r.state}
	case hash != r.trial.hash:
		return fbox.ConfigResult{Error: "the hash is not the configuration on trial's", Hash: r.trial.hash, State: r.state}
	}
	if err := r.store.SetState(r.trial.seq, StateConfirmed); err != nil {
		r.log.Error("storing the configuration's state", "err", err)
	}
	r.trial, r.state = nil, StateConfirmed
	r.log.Info("configuration confirmed", "hash", hash)
	r.statusChanged()
	return fbox.ConfigResult{Hash: hash, State: StateConfirmed}
}

// endTrial drops a trial (another change replaces it); the caller holds
// applyMu.
func (r *Reloader) endTrial() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.trial != nil {
		_ = r.store.SetState(r.trial.seq, StateRolledBack)
		r.trial = nil
	}
}

// outputConnected tells whether output id is up (connected to its
// server) now, and whether there is such an output at all.
func (r *Reloader) outputConnected(ctx context.Context, id string) (up, exists bool) {
	for _, p := range r.a.Health(ctx).Plugins {
		if p.ID == id && p.Kind == string(sdk.KindOutput) {
			return p.OK, true
		}
	}
	return false, false
}

// watchTrial notes whether the trial's output reached its server, and
// rolls back when the trial's time is up.
func (r *Reloader) watchTrial(ctx context.Context) {
	r.mu.Lock()
	t := r.trial
	r.mu.Unlock()
	if t == nil {
		return
	}
	if up, _ := r.outputConnected(ctx, t.output); !t.reached && up {
		r.mu.Lock()
		t.reached = true
		r.mu.Unlock()
	}
	if time.Now().Before(t.deadline) {
		return
	}
	why := "no confirm with the configuration's hash arrived in time"
	if !t.reached {
		why = "the gateway could not reach the server with the new configuration (output " + t.output + " never connected)"
	}
	r.rollback(ctx, t, why)
}

// rollback puts the configuration before trial t back, and announces it
// once the output is connected again with it.
func (r *Reloader) rollback(ctx context.Context, t *trial, why string) {
	r.applyMu.Lock()
	r.mu.Lock()
	if r.trial != t { // confirmed or replaced meanwhile
		r.mu.Unlock()
		r.applyMu.Unlock()
		return
	}
	r.trial = nil
	r.mu.Unlock()
	if err := r.store.SetState(t.seq, StateRolledBack); err != nil {
		r.log.Error("storing the configuration's state", "err", err)
	}
	r.log.Warn("rolling back the configuration on trial", "hash", t.hash, "reason", why)
	prev := t.prev
	prev.From = "rollback to " + prev.From
	err := r.apply(ctx, prev, StateRolledBack)
	r.applyMu.Unlock()
	msg := "rolled back: " + why
	if err != nil {
		msg += "; some plugins of the previous configuration did not open: " + firstLine(err.Error())
	}
	// Announce once the restored output is back on its server, so the
	// server hears it from the configuration that works.
	deadline := time.Now().Add(rollbackWait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if up, exists := r.outputConnected(ctx, t.output); up || !exists {
			break
		}
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	r.a.Announce(r.topics().ConfigAnswer(t.id, fbox.ConfigResult{Error: msg, RolledBack: true, Hash: t.hash, State: StateRolledBack}))
	r.publishStatus(ctx)
}

// publishStatus publishes the retained status: the running
// configuration's hash and state, uptime and plugin health.
//
// It is published only while an output that takes commands is connected,
// otherwise it stays pending until one connects (see Run). A status is
// news, not data: Announce hands it to the output ahead of its backlog,
// a newer one replacing it, and never through the store-and-forward
// queue; the mqtt output republishes the last one on every reconnect.
func (r *Reloader) publishStatus(ctx context.Context) {
	if r.a == nil {
		return
	}
	h := r.a.Health(ctx)
	var s fbox.StatusInfo
	connected := false
	for _, p := range h.Plugins {
		if p.OK {
			s.OK++
		} else {
			s.Failed++
		}
		connected = connected || (p.OK && p.Kind == string(sdk.KindOutput) && (p.Enabled == nil || *p.Enabled))
	}
	r.mu.Lock()
	r.statusPending = !connected
	r.mu.Unlock()
	if !connected {
		return
	}
	r.mu.Lock()
	_, s.Config = r.shown()
	s.ConfigState = r.state
	s.DeviceID = r.cur.Cfg.Agent.DeviceID
	r.mu.Unlock()
	s.Uptime = time.Since(r.start)
	r.a.Announce(r.topics().StatusMessage(time.Now(), r.opts.Version, s))
}

// State is the running configuration's state: confirmed, trial or
// rolled_back.
func (r *Reloader) State() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Clone(r.state)
}
