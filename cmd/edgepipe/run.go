package main

import (
	"context"
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
	"github.com/edgepipe/edgepipe/core/monitor"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

func init() {
	register("run", "run the gateway: `edgepipe run --config FILE`", runRun)
	register("check", "validate a configuration and show what it does: `edgepipe check --config FILE`", runCheck)
	register("once", "poll every input once and print the messages: `edgepipe once --config FILE`", runOnce)
}

// configFlag parses the --config option every pipeline command takes.
func configFlag(name string, args []string, stderr io.Writer) (string, bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (TOML)")
	fs.StringVar(path, "c", "", "shorthand for --config")
	if err := fs.Parse(args); err != nil {
		return "", false
	}
	if *path == "" {
		fmt.Fprintf(stderr, "edgepipe %s: --config FILE is required\n", name)
		return "", false
	}
	return *path, true
}

// loadConfig loads a file, printing every error as FILE:LINE: message.
func loadConfig(path string, stderr io.Writer) (*config.Config, bool) {
	cfg, err := config.Load(path)
	if err != nil {
		printErrors(stderr, err)
		return nil, false
	}
	return cfg, true
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

func runRun(args []string, _, stderr io.Writer) int {
	path, ok := configFlag("run", args, stderr)
	if !ok {
		return 2
	}
	cfg, ok := loadConfig(path, stderr)
	if !ok {
		return 1
	}
	log := newLogger(cfg.Agent.LogLevel, stderr)
	slog.SetDefault(log)
	agent.TuneRuntime()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	ctx := context.Background()
	reload := make(chan *config.Config, 1) // validated by OnReboot
	var a *agent.Agent
	a = agent.New(cfg, agent.Options{Logger: log, OnReboot: func() error {
		// The server's Reboot command: validate now so that the reply
		// says whether the new configuration was taken.
		next, err := config.Load(path)
		if err == nil {
			err = a.Validate(ctx, next)
		}
		if err != nil {
			return fmt.Errorf("configuration refused, the running one stays: %v", err)
		}
		select {
		case reload <- next:
		default:
		}
		return nil
	}})
	if err := a.Open(ctx, true); err != nil {
		printErrors(stderr, err)
		return 1
	}
	a.Start()
	if cfg.Agent.HTTPListen != "" {
		mon, err := monitor.Start(cfg.Agent.HTTPListen, a, log)
		if err != nil {
			log.Error("cannot serve /healthz and /metrics", "listen", cfg.Agent.HTTPListen, "err", err)
		} else {
			defer mon.Close()
			log.Info("serving /healthz and /metrics", "listen", mon.Addr())
		}
	}
	log.Info("edgepipe running", "device_id", cfg.Agent.DeviceID, "config", path, "version", version)
	for {
		var next *config.Config
		select {
		case s := <-sigs:
			if s != syscall.SIGHUP {
				log.Info("stopping", "signal", s.String())
				sctx, cancel := context.WithTimeout(ctx, shutdownGrace)
				a.Stop(sctx)
				cancel()
				return 0
			}
			c, err := config.Load(path)
			if err == nil {
				err = a.Validate(ctx, c)
			}
			if err != nil {
				log.Error("reload refused, the running configuration stays", "err", err)
				continue
			}
			next = c
		case next = <-reload:
		}
		log.Info("reloading configuration")
		if err := a.Apply(ctx, next); err != nil {
			// Validated, yet a plugin failed to open for real: the rest runs.
			log.Error("reload incomplete: some plugins did not open", "err", err)
			continue
		}
		log.Info("configuration reloaded")
	}
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
	for _, e := range sdk.AsConfigErrors(cfg.Collate(err, oerr, lint(cfg, a.Points()))) {
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

func runOnce(args []string, stdout, stderr io.Writer) int {
	path, ok := configFlag("once", args, stderr)
	if !ok {
		return 2
	}
	cfg, ok := loadConfig(path, stderr)
	if !ok {
		return 1
	}
	a := agent.New(cfg, agent.Options{Logger: newLogger(cfg.Agent.LogLevel, stderr), DryRun: true})
	ctx := context.Background()
	if err := a.Open(ctx, false); err != nil {
		printErrors(stderr, err)
		return 1
	}
	defer a.Close(ctx)
	msgs, err := a.Once(ctx, 5*time.Second)
	for _, m := range msgs {
		printMessage(stdout, m)
	}
	if err != nil {
		for _, e := range unwrapAll(err) {
			fmt.Fprintln(stderr, e)
		}
		return 1
	}
	return 0
}

func unwrapAll(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
