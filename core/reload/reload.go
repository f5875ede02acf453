// Package reload owns the one way a running gateway changes its
// configuration: check it exactly as `edgepipe check` does (every error),
// then apply it in place through agent.Apply (unchanged plugins keep
// running, queues are kept). SIGHUP, the server's Reboot command, the
// console's apply and the server's remote configuration (SPEC 9: get, set
// on trial, confirm, rollback, signatures, stored versions) all come here;
// edgepipe run only forwards them.
package reload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/edgepipe/edgepipe/core/agent"
	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// Source is the files a gateway was started with: --config and
// --config-directory.
type Source struct {
	Config string
	Dir    string
}

// Loaded is a configuration with the text it came from.
type Loaded struct {
	Cfg  *config.Config
	Text []byte // as received or read (${VAR} unexpanded)
	// Version is the stored version it is (0: the files).
	Version int
	// From says where it came from, for the log: the --config file or a
	// stored version's file.
	From string
	// DataDir is the data directory of the --config file, whose config/
	// holds the versions (a pushed configuration may name another
	// data_dir; the store stays where the next start looks for it).
	DataDir string
}

// Hash is SPEC 9's hash of a configuration text: "sha256:" + hex.
func Hash(text []byte) string {
	h := sha256.Sum256(text)
	return "sha256:" + hex.EncodeToString(h[:])
}

// Load reads the configuration to run: the files, unless the newest
// confirmed version stored under data_dir/config/ is newer than every one
// of them (the server set it after the files were last edited). It is
// what `run` starts from and what SIGHUP re-reads.
func (s Source) Load() (Loaded, error) {
	cfg, err := config.LoadDirectory(s.Config, s.Dir)
	if err != nil {
		return Loaded{}, err
	}
	text, newest, err := s.read(cfg)
	if err != nil {
		return Loaded{}, err
	}
	l := Loaded{Cfg: cfg, Text: text, From: s.Config, DataDir: cfg.Agent.DataDir}
	st := OpenStore(cfg.Agent.DataDir)
	v, vtext, ok, err := st.NewestConfirmed()
	if err != nil {
		slog.Warn("stored configurations unreadable; starting from the files", "dir", st.Dir(), "err", err)
		return l, nil
	}
	if !ok || !v.Time.After(newest) {
		return l, nil
	}
	path := st.Path(v.Seq)
	vcfg, err := config.Parse(path, vtext, os.LookupEnv)
	if err != nil {
		slog.Warn("the newest confirmed configuration does not load; starting from the files", "file", path, "err", err)
		return l, nil
	}
	return Loaded{Cfg: vcfg, Text: vtext, Version: v.Seq, From: path, DataDir: cfg.Agent.DataDir}, nil
}

// read is the text of the files (the main one, then the directory's in
// name order) and the newest modification time among them. Without a
// directory the text is the one cfg was parsed from (cfg.Text), not a second
// copy: a gateway keeps its running text for the console and remote
// configuration, ~100 B per configured point.
func (s Source) read(cfg *config.Config) ([]byte, time.Time, error) {
	if s.Dir == "" {
		fi, err := os.Stat(s.Config)
		if err != nil {
			return nil, time.Time{}, err
		}
		return cfg.Text, fi.ModTime(), nil
	}
	files := []string{s.Config}
	if s.Dir != "" {
		more, _ := filepath.Glob(filepath.Join(s.Dir, "*.toml"))
		sort.Strings(more)
		files = append(files, more...)
	}
	var text []byte
	var newest time.Time
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, newest, err
		}
		if fi, err := os.Stat(f); err == nil && fi.ModTime().After(newest) {
			newest = fi.ModTime()
		}
		if i > 0 {
			text = append(text, "\n# --- "+filepath.Base(f)+"\n"...)
		}
		text = append(text, b...)
	}
	return text, newest, nil
}

// Options tune a Reloader.
type Options struct {
	Source Source
	Logger *slog.Logger
	// Version is the build's version, for the status.
	Version string
	// OnApplied runs after every change (edgepipe run applies the log
	// level).
	OnApplied func(prev, next *config.Config)
	// StatusEvery is how often the status is published again (uptime,
	// plugin health); 0 is a minute.
	StatusEvery time.Duration
	// Lint finds the warnings of a configuration that checks, given the
	// points its inputs offer (core/lint.Config, as `edgepipe check`
	// prints them); nil: none. Warnings never refuse a configuration:
	// they are logged on SIGHUP and Reboot, shown by the console's check
	// and apply, and listed in a remote set's reply.
	Lint func(*config.Config, []sdk.PointSchema) sdk.ConfigErrors
}

// Reloader changes a running agent's configuration.
type Reloader struct {
	opts  Options
	log   *slog.Logger
	a     *agent.Agent
	start time.Time

	// applyMu makes changes one at a time. Only callers outside the
	// pipeline take it (never a command goroutine: Apply waits for them).
	applyMu sync.Mutex

	// mu guards the state below, held briefly.
	mu      sync.Mutex
	cur     Loaded
	state   string
	trial   *trial
	store   *Store
	jobs    chan func()
	changed chan struct{}
	// statusPending: a status is due but no output was connected.
	statusPending bool
}

// New prepares the reloader of a gateway starting with l; Attach gives it
// the agent.
func New(l Loaded, opts Options) *Reloader {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.StatusEvery <= 0 {
		opts.StatusEvery = time.Minute
	}
	dataDir := l.DataDir
	if dataDir == "" {
		dataDir = l.Cfg.Agent.DataDir
	}
	return &Reloader{opts: opts, log: opts.Logger, cur: l, state: StateConfirmed, start: time.Now(),
		store: OpenStore(dataDir), jobs: make(chan func(), 4), changed: make(chan struct{}, 1)}
}

// Attach gives the reloader the agent it changes (created with the
// reloader's Reboot and Command as its OnReboot and OnConfig).
func (r *Reloader) Attach(a *agent.Agent) { r.a = a }

// Store is where versions are kept.
func (r *Reloader) Store() *Store { return r.store }

// Check checks a configuration text exactly as `edgepipe check` does:
// it loads it, opens every plugin in dry-run mode, and returns every
// error found, sorted and redacted, with the warnings among them (marked
// Warning; sdk.Failures(err) is what refuses the text). file names the
// text in errors.
func (r *Reloader) Check(ctx context.Context, file string, text []byte) (*config.Config, error) {
	cfg, err := config.Parse(file, text, os.LookupEnv)
	if cfg == nil {
		return nil, err
	}
	return cfg, r.validate(ctx, cfg, err)
}

// validate opens cfg's plugins in dry-run mode and collates their errors
// with loadErr and, when they open, the warnings.
func (r *Reloader) validate(ctx context.Context, cfg *config.Config, loadErr error) error {
	lint := r.opts.Lint
	if loadErr != nil {
		lint = nil // check prints warnings with errors; a broken file is refused anyway
	}
	warnings, oerr := r.a.Check(ctx, cfg, lint)
	return cfg.Collate(loadErr, oerr, warnings.Err())
}

// apply switches the agent to l; the caller holds applyMu. The error says
// which plugins did not open for real (the rest runs).
func (r *Reloader) apply(ctx context.Context, l Loaded, state string) error {
	r.mu.Lock()
	prev := r.cur.Cfg
	r.mu.Unlock()
	r.log.Info("reloading configuration", "from", l.From)
	err := r.a.Apply(ctx, l.Cfg)
	r.mu.Lock()
	r.cur, r.state = l, state
	r.mu.Unlock()
	if r.opts.OnApplied != nil {
		// First, so that the lines below are logged at the new level.
		r.opts.OnApplied(prev, l.Cfg)
	}
	if err != nil {
		r.log.Error("reload incomplete: some plugins did not open", "err", err)
	} else {
		r.log.Info("configuration reloaded", "hash", Hash(l.Text), "state", state)
	}
	r.statusChanged()
	return err
}

// Reload re-reads the files (SIGHUP), checks them and applies them. A
// configuration that does not check is refused with every error and the
// running one stays. A trial in progress ends: the local change wins.
func (r *Reloader) Reload(ctx context.Context) error {
	l, err := r.check(ctx)
	if err != nil {
		return err
	}
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	r.endTrial()
	return r.apply(ctx, l, StateConfirmed)
}

// check re-reads and checks the files.
func (r *Reloader) check(ctx context.Context) (Loaded, error) {
	l, err := r.opts.Source.Load()
	if l.Cfg != nil && err == nil {
		err = r.validate(ctx, l.Cfg, nil)
	} else if err != nil {
		// Loading found errors: report the plugins' too, like check.
		if cfg, _ := config.LoadDirectory(r.opts.Source.Config, r.opts.Source.Dir); cfg != nil {
			err = r.validate(ctx, cfg, err)
		}
	}
	if f := sdk.Failures(err); f != nil {
		return l, fmt.Errorf("configuration refused, the running one stays: %w", f)
	}
	for _, w := range sdk.Warnings(err) {
		r.log.Warn("configuration warning", "warning", w.Error())
	}
	return l, nil
}

// Reboot serves the server's Reboot command (agent OnReboot): the files
// are checked now, so that the reply says whether they were taken, and
// applied once the command has been answered.
func (r *Reloader) Reboot() error {
	l, err := r.check(context.Background())
	if err != nil {
		return err
	}
	return r.later(func() {
		r.applyMu.Lock()
		defer r.applyMu.Unlock()
		r.endTrial()
		_ = r.apply(context.Background(), l, StateConfirmed)
	})
}

// later queues work for Run: a command goroutine cannot apply (Apply
// waits for it).
func (r *Reloader) later(f func()) error {
	select {
	case r.jobs <- f:
		return nil
	default:
		return errors.New("busy: a configuration change is already waiting; send it again")
	}
}

// CheckText is Check for a text given by a person (the console's check):
// every error, nothing applied.
func (r *Reloader) CheckText(ctx context.Context, text []byte) error {
	_, err := r.Check(ctx, "console.toml", text)
	return err
}

// ApplyText checks a configuration text given by a person (the console's
// apply: wire its hook to this method) and applies it in place; it
// returns every error of a text that does not check, and then nothing
// changed. It is final at once and is stored as a confirmed version. The
// warnings of a text applied are returned with what did not open, if
// anything (the console shows them beside "applied").
func (r *Reloader) ApplyText(ctx context.Context, text []byte) error {
	cfg, err := r.Check(ctx, "console.toml", text)
	if sdk.Failures(err) != nil {
		return err
	}
	warnings := err
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	r.endTrial()
	v, serr := r.store.Save(text, Version{Hash: Hash(text), State: StateConfirmed})
	if serr != nil {
		r.log.Error("storing the configuration", "dir", r.store.Dir(), "err", serr)
	}
	aerr := r.apply(ctx, Loaded{Cfg: cfg, Text: text, Version: v.Seq, From: "console"}, StateConfirmed)
	return cfg.Collate(aerr, warnings)
}

// Running is the running configuration: its text with every secret as
// ${VAR} (or withheld), its hash (of the text as received) and its state.
func (r *Reloader) Running() (text, hash, state string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	text, hash = r.shown()
	return text, hash, r.state
}

// Config is the configuration in force (the console reads its keys).
func (r *Reloader) Config() *config.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur.Cfg
}

// shown is the running text as the server may see it and its hash; the
// caller holds mu. A pushed text holds no secret, so this is the text as
// received and its hash. A local file may hold a secret literally: the
// hash is then of the text shown, since the hash of the real text next to
// everything else of it would let anyone who can read the reply guess the
// secret offline.
func (r *Reloader) shown() (string, string) {
	text := r.cur.Cfg.RedactText(string(r.cur.Text))
	return text, Hash([]byte(text))
}

// statusChanged asks Run to publish the status now.
func (r *Reloader) statusChanged() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// Run serves the changes queued by commands, ends trials, and publishes
// the status, until ctx ends.
func (r *Reloader) Run(ctx context.Context) {
	tick := time.NewTicker(r.opts.StatusEvery)
	defer tick.Stop()
	watch := time.NewTicker(500 * time.Millisecond)
	defer watch.Stop()
	r.publishStatus(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-r.jobs:
			f()
		case <-r.changed:
			r.publishStatus(ctx)
		case <-tick.C:
			r.publishStatus(ctx)
		case <-watch.C:
			r.watchTrial(ctx)
			r.mu.Lock()
			pending := r.statusPending
			r.mu.Unlock()
			if pending {
				r.publishStatus(ctx)
			}
		}
	}
}

func errorTexts(err error) []string {
	var out []string
	for _, e := range sdk.AsConfigErrors(err) {
		out = append(out, e.Error())
	}
	return out
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
