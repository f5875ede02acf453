// Package isolate runs a plugin in its own process under hashicorp/go-plugin
// and keeps it running: a Supervised plugin restarts a crashed process with
// exponential backoff, re-initialises it with the same configuration and
// state, and retries the call that found it dead. The rest of the pipeline
// never notices more than a slow call.
package isolate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/edgepipe/edgepipe/internal/backoff"
	"github.com/edgepipe/edgepipe/internal/runtimecfg"
	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/grpcplugin"
)

// ServeArg is the hidden first argument with which the edgepipe binary (or a
// test binary) serves one of its built-in plugins: `edgepipe __plugin
// inputs.modbus`. One binary ships every plugin.
const ServeArg = "__plugin"

// MaybeServe serves a built-in plugin and exits when this process was
// started as one; call it first thing in main and in TestMain.
func MaybeServe() {
	if len(os.Args) >= 3 && os.Args[1] == ServeArg && grpcplugin.IsPluginProcess() {
		// Before the gateway can know this process: it trims the tree's
		// pages at one moment (runtimecfg.TrimAgainAfter).
		runtimecfg.TrimOnSignal()
		runtimecfg.Apply() // the gateway's settings, see there
		go watchParent(os.Getppid(), time.Second)
		if err := grpcplugin.ServeBuiltin(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// watchParent ends a built-in plugin's process when the gateway that
// started it is gone: the second guard beside the parent-death signal
// (which a future change to how processes are started could lose). An
// orphan is re-parented (to init or a subreaper), so its parent pid changes.
func watchParent(ppid int, every time.Duration) {
	for {
		time.Sleep(every)
		if os.Getppid() != ppid {
			fmt.Fprintf(os.Stderr, "edgepipe plugin: the gateway (pid %d) is gone; exiting\n", ppid)
			os.Exit(2)
		}
	}
}

// Spec says how to start a plugin process.
type Spec struct {
	Name    string   // for logs: the plugin's ID
	Command string   // executable
	Args    []string //
	SHA256  string   // hex; refuse to start a binary that does not match
	Logger  *slog.Logger
	// builtin: the process runs this executable's MaybeServe, so its log
	// lines are at most grpcplugin.LogLineBytes (the host reads them
	// through a buffer that size instead of go-plugin's 64 KB, held while
	// the process runs) and it trims with the gateway
	// (runtimecfg.AddTrimPeer).
	builtin bool
}

// BuiltinSpec re-executes the running binary to serve a built-in plugin.
func BuiltinSpec(id, fullName string, log *slog.Logger) (Spec, error) {
	exe, err := os.Executable()
	if err != nil {
		return Spec{}, fmt.Errorf("find own executable to isolate %s: %w", fullName, err)
	}
	return Spec{Name: id, Command: exe, Args: []string{ServeArg, fullName}, Logger: log, builtin: true}, nil
}

// process is one running plugin process.
type process struct {
	client   *plugin.Client
	rpc      grpcplugin.Client
	released chan struct{} // closed by kill: frees the thread that forked it
	once     sync.Once
	socket   bool        // the Session runs on its own socket (grpcplugin.SessionSocket)
	peer     *os.Process // a runtimecfg trim peer, or nil
}

// kill stops the process (go-plugin asks it to exit, then kills it) and
// releases the OS thread it was forked from.
func (p *process) kill() {
	if p.peer != nil {
		runtimecfg.RemoveTrimPeer(p.peer)
	}
	p.client.Kill()
	p.once.Do(func() { close(p.released) })
}

// start starts a plugin process from an OS thread of its own that lives
// as long as the process does.
//
// The child is started with a parent-death signal (SIGKILL, see
// dieWithParent) so that it dies with the gateway on every exit, kill -9
// included. Linux sends that signal when the *thread* that forked the child
// ends, not the process (prctl(2), golang/go#27505), and the Go runtime
// ends a thread whenever a goroutine exits while locked to it: forked from
// an arbitrary thread, a healthy plugin could be killed at random. Locking
// the forking goroutine to its thread and keeping it parked there until
// the process was killed makes the signal mean what it should. The plugin
// side has a second guard (watchParent in MaybeServe).
func start(spec Spec) (*process, error) {
	type result struct {
		p   *process
		err error
	}
	res := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		p, err := startHere(spec)
		res <- result{p, err}
		if err == nil {
			<-p.released
		}
	}()
	r := <-res
	return r.p, r.err
}

// startHere starts the process from the calling thread; see start.
func startHere(spec Spec) (*process, error) {
	cmd := exec.Command(spec.Command, spec.Args...)
	dieWithParent(cmd)
	// The Session's own socket (grpcplugin.SessionSocket); without it (a
	// platform without socket pairs) the Session runs on gRPC.
	sess := grpcplugin.NewSessionSocket()
	defer sess.Close()
	sess.Pass(cmd)
	cfg := &plugin.ClientConfig{
		HandshakeConfig:  *grpcplugin.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{sdk.ProtocolVersion: grpcplugin.PluginSet()},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		GRPCDialOptions:  grpcplugin.DialOptions(),
		Logger:           newHCLogger(spec.Logger),
		StartTimeout:     20 * time.Second,
	}
	if spec.builtin {
		cfg.PluginLogBufferSize = grpcplugin.LogLineBytes
	}
	if spec.SHA256 != "" {
		sum, err := hex.DecodeString(spec.SHA256)
		if err != nil {
			return nil, fmt.Errorf("sha256 of %s: %w", spec.Command, err)
		}
		cfg.SecureConfig = &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
	}
	c := plugin.NewClient(cfg)
	rc, err := c.Client()
	if err != nil {
		c.Kill()
		if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
			return nil, fmt.Errorf("refusing to start %s: its sha256 does not match the configured one (%s)", spec.Command, spec.SHA256)
		}
		return nil, fmt.Errorf("start plugin %s: %w", spec.Command, err)
	}
	raw, err := rc.Dispense(grpcplugin.PluginName)
	g, ok := raw.(grpcplugin.Client)
	if err != nil || !ok {
		c.Kill()
		if err != nil {
			return nil, fmt.Errorf("plugin %s: %w", spec.Command, err)
		}
		return nil, fmt.Errorf("plugin %s: unexpected client type %T", spec.Command, raw)
	}
	socket := sess.Use(g)
	p := &process{client: c, rpc: g, released: make(chan struct{}), socket: socket}
	// A built-in plugin's process runs this executable: once it has done
	// its first trim, it and the gateway (and the other plugin processes)
	// trim again together (runtimecfg.TrimAgainAfter). Another
	// executable's process is never signalled; the gateway's pass is then
	// a needless but harmless one.
	if spec.builtin && cmd.Process != nil {
		p.peer = cmd.Process
		runtimecfg.AddTrimPeer(p.peer)
	}
	runtimecfg.TrimAgainAfter(runtimecfg.StartupGrace + time.Second)
	return p, nil
}

// ErrDown is returned by calls made while the plugin process is being
// restarted and the caller's context ran out first.
var ErrDown = errors.New("plugin process is down, restarting")

// Supervised is an isolated plugin that restarts itself. It implements every
// SDK plugin interface, like grpcplugin.Client.
type Supervised struct {
	spec    Spec
	log     *slog.Logger
	initReq *sdk.InitRequest

	mu       sync.Mutex
	cur      *process
	up       chan struct{} // closed while a process is up
	closed   bool
	gone     chan struct{} // closed by Close: ends a restart backoff early
	restarts atomic.Uint64
	// Restart spaces the attempts to restart a crashed process.
	Restart backoff.Policy
}

// defaultRestart is how a crashed plugin process is restarted: at once
// (within 100 ms) after a crash, backing off to 30 s while it keeps
// failing to start.
var defaultRestart = backoff.Policy{Initial: 100 * time.Millisecond, Max: 30 * time.Second}

// Start starts the plugin process. The returned plugin must be Init-ed
// like any other.
func Start(spec Spec) (*Supervised, error) {
	if spec.Logger == nil {
		spec.Logger = slog.Default()
	}
	p, err := start(spec)
	if err != nil {
		return nil, err
	}
	up := make(chan struct{})
	close(up)
	return &Supervised{spec: spec, log: spec.Logger, cur: p, up: up, gone: make(chan struct{}),
		Restart: defaultRestart}, nil
}

// Restarts counts how often the process was restarted after a crash.
func (s *Supervised) Restarts() uint64 { return s.restarts.Load() }

// SessionSocket reports whether the calls of every poll travel on the
// current process's session socket rather than on gRPC (a plugin of an
// SDK without it); false while down.
func (s *Supervised) SessionSocket() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur != nil && s.cur.socket
}

// Pid is the process id of the current plugin process (0 while down).
func (s *Supervised) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return 0
	}
	if rc := s.cur.client.ReattachConfig(); rc != nil {
		return rc.Pid
	}
	return 0
}

// current waits for a live process.
func (s *Supervised) current(ctx context.Context) (*process, error) {
	for {
		s.mu.Lock()
		p, up, closed := s.cur, s.up, s.closed
		s.mu.Unlock()
		if closed {
			return nil, errors.New("plugin closed")
		}
		if p != nil {
			return p, nil
		}
		select {
		case <-up:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %v", ErrDown, ctx.Err())
		}
	}
}

// failed handles an error from process p: when the process is gone it
// starts the restart loop (once) and reports true so the call is retried.
func (s *Supervised) failed(p *process, err error) bool {
	if err == nil || (!grpcplugin.IsTransportError(err) && !p.client.Exited()) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.cur == p {
		s.log.Warn("plugin process died, restarting", "plugin", s.spec.Name, "err", err)
		p.kill()
		s.cur = nil
		s.up = make(chan struct{})
		go s.restart(s.up)
	}
	return true
}

func (s *Supervised) restart(up chan struct{}) {
	retry := backoff.New(s.Restart)
	for {
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if closed {
			close(up)
			return
		}
		p, err := start(s.spec)
		if err == nil && s.initReq != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			_, err = p.rpc.Init(ctx, s.initReq)
			cancel()
			if err != nil {
				p.kill()
			}
		}
		if err == nil {
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				p.kill()
				close(up)
				return
			}
			s.cur = p
			s.restarts.Add(1)
			close(up)
			s.mu.Unlock()
			s.log.Info("plugin process restarted", "plugin", s.spec.Name, "restarts", s.restarts.Load())
			return
		}
		wait := retry.Next()
		s.log.Error("plugin restart failed", "plugin", s.spec.Name, "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.gone:
			t.Stop()
		}
	}
}

// call runs fn against the live process, retrying after a restart.
func call[T any](ctx context.Context, s *Supervised, fn func(grpcplugin.Client) (T, error)) (T, error) {
	for {
		p, err := s.current(ctx)
		if err != nil {
			var zero T
			return zero, err
		}
		v, err := fn(p.rpc)
		if s.failed(p, err) {
			continue
		}
		return v, err
	}
}

// Caps is the remote plugin's abilities.
func (s *Supervised) Caps() sdk.Caps {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return sdk.Caps{}
	}
	return s.cur.rpc.Caps()
}

// Kinds are the roles the plugin process serves, learnt in Init (see
// sdk.KindsOf).
func (s *Supervised) Kinds() ([]sdk.PluginKind, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return nil, false
	}
	return s.cur.rpc.Kinds()
}

// Init initialises the plugin and remembers the request to re-initialise a
// restarted process. A failed Init is not retried: it is a configuration
// error, not a crash.
func (s *Supervised) Init(ctx context.Context, req *sdk.InitRequest) (*sdk.InitResponse, error) {
	s.mu.Lock()
	s.initReq = req
	s.mu.Unlock()
	return call(ctx, s, func(c grpcplugin.Client) (*sdk.InitResponse, error) { return c.Init(ctx, req) })
}

// Close closes the plugin and stops its process.
func (s *Supervised) Close(ctx context.Context) error {
	s.mu.Lock()
	p := s.cur
	if !s.closed {
		close(s.gone)
	}
	s.closed = true
	s.cur = nil
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	err := p.rpc.Close(ctx)
	p.kill()
	if grpcplugin.IsTransportError(err) {
		err = nil
	}
	return err
}

func (s *Supervised) Gather(ctx context.Context) (*sdk.Frame, error) {
	return call(ctx, s, func(c grpcplugin.Client) (*sdk.Frame, error) { return c.Gather(ctx) })
}

// ReleaseFrame gives a frame Gather returned back to the connection that
// decoded it (sdk.FrameReleaser), whose next frame reuses its points: the
// gateway then no longer allocates a poll's points per isolated input. A
// frame of a process since restarted is unknown to the new connection,
// which ignores it.
func (s *Supervised) ReleaseFrame(f *sdk.Frame) {
	s.mu.Lock()
	p := s.cur
	s.mu.Unlock()
	if p != nil {
		p.rpc.ReleaseFrame(f)
	}
}

func (s *Supervised) Process(ctx context.Context, f *sdk.Frame) (*sdk.Frame, error) {
	return call(ctx, s, func(c grpcplugin.Client) (*sdk.Frame, error) { return c.Process(ctx, f) })
}

func (s *Supervised) Publish(ctx context.Context, msgs []sdk.Message) error {
	_, err := call(ctx, s, func(c grpcplugin.Client) (struct{}, error) { return struct{}{}, c.Publish(ctx, msgs) })
	return err
}

func (s *Supervised) Write(ctx context.Context, reqs []sdk.WriteRequest) ([]sdk.WriteResult, error) {
	return call(ctx, s, func(c grpcplugin.Client) ([]sdk.WriteResult, error) { return c.Write(ctx, reqs) })
}

func (s *Supervised) Health(ctx context.Context) (sdk.Health, error) {
	s.mu.Lock()
	p := s.cur
	s.mu.Unlock()
	if p == nil {
		return sdk.Health{OK: false, Reason: "plugin process restarting"}, nil
	}
	if !p.rpc.Caps().Health {
		return sdk.Health{OK: true}, nil
	}
	return p.rpc.Health(ctx)
}

func (s *Supervised) HandleCommand(ctx context.Context, c sdk.Command) (*sdk.Frame, error) {
	return call(ctx, s, func(g grpcplugin.Client) (*sdk.Frame, error) { return g.HandleCommand(ctx, c) })
}

// Stream runs the remote stream and re-opens it after a restart.
func (s *Supervised) Stream(ctx context.Context, emit func(*sdk.Frame)) error {
	_, err := call(ctx, s, func(c grpcplugin.Client) (struct{}, error) { return struct{}{}, c.Stream(ctx, emit) })
	return err
}

// Commands runs the remote command stream and re-opens it after a restart.
func (s *Supervised) Commands(ctx context.Context, handle func(sdk.Command)) error {
	_, err := call(ctx, s, func(c grpcplugin.Client) (struct{}, error) { return struct{}{}, c.Commands(ctx, handle) })
	return err
}

var (
	_ sdk.Input          = (*Supervised)(nil)
	_ sdk.StreamingInput = (*Supervised)(nil)
	_ sdk.Processor      = (*Supervised)(nil)
	_ sdk.Output         = (*Supervised)(nil)
	_ sdk.Writer         = (*Supervised)(nil)
	_ sdk.CommandSource  = (*Supervised)(nil)
	_ sdk.HealthReporter = (*Supervised)(nil)
	_ sdk.CommandHandler = (*Supervised)(nil)
)
