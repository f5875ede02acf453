package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/edgepipe/edgepipe/core/agent"
	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/core/console"
	"github.com/edgepipe/edgepipe/core/lint"
	"github.com/edgepipe/edgepipe/core/monitor"
	"github.com/edgepipe/edgepipe/core/reload"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

func init() {
	register(command{name: "run", summary: "run the gateway until SIGINT/SIGTERM; SIGHUP reloads",
		usage: `Usage: edgepipe run --config FILE [--config-directory DIR]

Runs the gateway until SIGINT or SIGTERM (graceful: what can be delivered
within 5 s is, the rest stays queued). SIGHUP reloads the configuration in
place; a file that does not check is refused and the running one stays.
Under systemd (Type=notify) it reports ready and feeds the watchdog.`,
		flags: func() *flag.FlagSet { return pipelineFlags("run", new(pipelineArgs)) }, run: runRun})
	register(command{name: "check", summary: "validate a configuration and show what it does",
		usage: `Usage: edgepipe check --config FILE

Validates everything and exits 0, printing the plugins, the points and one
sample message per template; or exits 1 printing every error found as
FILE:LINE: message.`,
		flags: func() *flag.FlagSet { return pipelineFlags("check", new(pipelineArgs)) }, run: runCheck})
	register(command{name: "once", summary: "poll every input once and print the messages, publishing nothing",
		usage: `Usage: edgepipe once --config FILE [--config-directory DIR] [--partial]

Polls every input once, runs the processors and prints each message the
outputs would publish as TOPIC<TAB>PAYLOAD. Exits 1 when an input could not
be read at all (every point bad), unless --partial.`,
		flags: func() *flag.FlagSet { return pipelineFlags("once", new(pipelineArgs)) }, run: runOnce})
}

// pipelineArgs are the options of run, check and once.
type pipelineArgs struct {
	config    string
	configDir string // run, once
	partial   bool   // once
}

// pipelineFlags is the flag set of run, check or once.
func pipelineFlags(name string, a *pipelineArgs) *flag.FlagSet {
	fs := newFlags(name)
	fs.StringVar(&a.config, "config", "", "configuration file (TOML)")
	fs.StringVar(&a.config, "c", "", "shorthand for --config")
	if name != "check" {
		fs.StringVar(&a.configDir, "config-directory", "", "also load `DIR`/*.toml after --config, in name order (plugin tables; [agent] stays in --config)")
	}
	if name == "once" {
		fs.BoolVar(&a.partial, "partial", false, "exit 0 even when an input could not be read at all")
	}
	return fs
}

// parsePipeline parses the options of a pipeline command.
func parsePipeline(name string, args []string, stderr io.Writer) (pipelineArgs, bool) {
	var a pipelineArgs
	if !parseFlags(pipelineFlags(name, &a), args, 0, stderr) {
		return a, false
	}
	if a.config == "" {
		fmt.Fprintf(stderr, "edgepipe %s: --config FILE is required\nRun `edgepipe help %s` for usage.\n", name, name)
		return a, false
	}
	return a, true
}

// configFlag parses the --config option of check.
func configFlag(name string, args []string, stderr io.Writer) (string, bool) {
	a, ok := parsePipeline(name, args, stderr)
	return a.config, ok
}

// load loads the configuration of a pipeline command: --config, then the
// files of --config-directory.
func (a pipelineArgs) load() (*config.Config, error) {
	return config.LoadDirectory(a.config, a.configDir)
}

// loadConfig loads the configuration of command name, printing every
// error as "edgepipe NAME: FILE:LINE: message".
func loadConfig(name string, args pipelineArgs, stderr io.Writer) (*config.Config, bool) {
	cfg, err := args.load()
	if err != nil {
		printErrorsAs(stderr, name, err)
		return nil, false
	}
	return cfg, true
}

// printErrorsAs prints every error of err on its own line, prefixed with
// the command.
func printErrorsAs(w io.Writer, name string, err error) {
	for _, e := range sdk.AsConfigErrors(err) {
		fmt.Fprintf(w, "edgepipe %s: %s\n", name, e.Error())
	}
}

func printErrors(w io.Writer, err error) {
	for _, e := range sdk.AsConfigErrors(err) {
		fmt.Fprintln(w, e.Error())
	}
}

func newLogger(level string, w io.Writer) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// shutdownGrace is how long a stopping gateway keeps delivering what is
// queued; the rest stays in the queues.
const shutdownGrace = 5 * time.Second

func runRun(argv []string, _, stderr io.Writer) int {
	args, ok := parsePipeline("run", argv, stderr)
	if !ok {
		return exitUsage
	}
	src := reload.Source{Config: args.config, Dir: args.configDir}
	start, err := src.Load()
	if err != nil {
		printErrorsAs(stderr, "run", err)
		return 1
	}
	cfg := start.Cfg
	log, level := gatewayLogger(cfg.Agent, stderr)
	// The console's log page keeps the last records the log lets through.
	logs := console.NewLogRing(1000)
	log = slog.New(logs.Handler(log.Handler()))
	slog.SetDefault(log)
	agent.TuneRuntime()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Every change of configuration goes through the reloader: SIGHUP,
	// the Reboot command and the server's remote configuration.
	rl := reload.New(start, reload.Options{Source: src, Logger: log, Version: versionString(), Lint: lint.Config,
		OnApplied: func(prev, next *config.Config) {
			if next.Agent.LogFormat != cfg.Agent.LogFormat {
				log.Warn("log_format takes effect at the next start", "log_format", next.Agent.LogFormat)
			}
			if next.Agent.HTTPListen != prev.Agent.HTTPListen || next.Console.TLSCert != prev.Console.TLSCert ||
				next.Console.TLSKey != prev.Console.TLSKey || next.Console.On() && !prev.Console.On() {
				// Users, passwords and tokens apply at once; the listener does not move.
				log.Warn("http_listen, [agent.console] tls_cert/tls_key and enabling the console take effect at the next start")
			}
			applyLogLevel(level, next.Agent)
		}})
	opts := agent.Options{Logger: log, Version: versionString(), OnReboot: rl.Reboot, OnConfig: rl.Command}
	// The console's table of latest values, only when there is a console
	// (enabling it takes a restart): it holds an entry per point (~100 B)
	// and is updated for every point of every poll.
	var live *console.Live
	if cfg.Agent.HTTPListen != "" && cfg.Console.On() {
		live = console.NewLive()
		opts.Observer = live
	}
	a := agent.New(cfg, opts)
	rl.Attach(a)
	if err := a.Open(ctx, true); err != nil {
		printErrorsAs(stderr, "run", err)
		return 1
	}
	a.Start()
	go rl.Run(ctx)
	if cfg.Agent.HTTPListen != "" {
		monitor.SetBuildInfo(buildVersion())
		mc := monitor.Config{Addr: cfg.Agent.HTTPListen, Source: a, Logger: log}
		if cfg.Console.On() {
			// The console checks and applies through the reloader, the one
			// path SIGHUP, Reboot and remote configuration take.
			mc.Console = console.New(console.Options{Agent: a, Live: live, Logs: logs, Running: rl.Config,
				Version: versionString(), Logger: log, CheckConfig: rl.CheckText, ApplyConfig: rl.ApplyText})
			mc.TLSCert, mc.TLSKey = cfg.Console.TLSCert, cfg.Console.TLSKey
		}
		mon, err := monitor.Serve(mc)
		if err != nil {
			log.Error("cannot serve /healthz and /metrics", "listen", cfg.Agent.HTTPListen, "err", err)
		} else {
			defer mon.Close()
			log.Info("serving /healthz and /metrics", "listen", mon.Addr(), "console", mc.Console != nil, "https", mc.TLSCert != "")
		}
	}
	if start.Version > 0 {
		log.Info("starting from the newest confirmed configuration set by the server: it is newer than the --config file",
			"file", start.From, "config", args.config)
	}
	log.Info("edgepipe running", "device_id", cfg.Agent.DeviceID, "config", start.From, "version", versionString())
	defer notifySystemd(a, log)()
	for s := range sigs {
		if s == syscall.SIGHUP {
			if err := rl.Reload(ctx); err != nil {
				log.Error("reload refused, the running configuration stays", "err", err)
			}
			continue
		}
		log.Info("stopping", "signal", s.String())
		cancel()
		sctx, scancel := context.WithTimeout(context.Background(), shutdownGrace)
		a.Stop(sctx)
		scancel()
		return 0
	}
	return 0
}

func runCheck(args []string, stdout, stderr io.Writer) int {
	path, ok := configFlag("check", args, stderr)
	if !ok {
		return 2
	}
	cfg, err := config.Load(path)
	if cfg == nil {
		printErrors(stderr, err)
		return 1
	}
	// Open the plugins even when loading found mistakes, so that one run
	// reports the plugins' errors too, all sorted by line.
	ctx := context.Background()
	a := agent.New(cfg, agent.Options{Logger: newLogger("error", stderr), DryRun: true})
	oerr := a.Open(ctx, true)
	if oerr == nil {
		defer a.Close(ctx)
	}
	// Warnings are printed with the errors, in line order, and do not
	// fail the check.
	failed := false
	for _, e := range sdk.AsConfigErrors(cfg.Collate(err, oerr, lint.Config(cfg, a.Points()))) {
		fmt.Fprintln(stderr, e.Error())
		failed = failed || !e.Warning
	}
	if failed {
		return 1
	}
	fmt.Fprintf(stdout, "%s: OK (device_id %q, topic prefix %q)\n\nPlugins:\n", path, cfg.Agent.DeviceID, cfg.Agent.TopicPrefix)
	for _, p := range cfg.Plugins() {
		mode := "in-process"
		if p.Isolated {
			mode = "isolated"
		}
		fmt.Fprintf(stdout, "  %-28s %-22s %s\n", p.ID, p.FullName(), mode)
	}
	fmt.Fprintln(stdout, "\nPoints:")
	for _, s := range a.Points() {
		unit := ""
		if s.Unit != "" {
			unit = " [" + s.Unit + "]"
		}
		fmt.Fprintf(stdout, "  %-32s %-8s %-6s%s\n", s.FullName(), s.Type, s.Access, unit)
	}
	alarms, pictures := sampleEvents(cfg, a.Points())
	msgs, err := a.Samples(ctx, alarms, pictures)
	fmt.Fprintln(stdout, "\nSample messages:")
	if err != nil {
		fmt.Fprintf(stdout, "  (rendering failed: %v)\n", err)
	}
	for _, m := range msgs {
		printMessage(stdout, m)
	}
	return 0
}

func runOnce(argv []string, stdout, stderr io.Writer) int {
	args, ok := parsePipeline("once", argv, stderr)
	if !ok {
		return exitUsage
	}
	cfg, ok := loadConfig("once", args, stderr)
	if !ok {
		return 1
	}
	log, _ := gatewayLogger(cfg.Agent, stderr)
	a := agent.New(cfg, agent.Options{Logger: log, DryRun: true})
	ctx := context.Background()
	if err := a.Open(ctx, false); err != nil {
		printErrorsAs(stderr, "once", err)
		return 1
	}
	defer a.Close(ctx)
	msgs, err := a.Once(ctx, 5*time.Second)
	for _, m := range msgs {
		printMessage(stdout, m)
	}
	code := exitOK
	for _, e := range unwrapAll(err) {
		if e == nil {
			continue
		}
		fmt.Fprintln(stderr, "edgepipe once:", e)
		if !args.partial || !errors.Is(e, agent.ErrNothingRead) {
			code = exitError
		}
	}
	return code
}

func unwrapAll(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
