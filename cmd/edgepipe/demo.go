package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/edgepipe/edgepipe/core/agent"
	"github.com/edgepipe/edgepipe/core/console"
	"github.com/edgepipe/edgepipe/core/lint"
	"github.com/edgepipe/edgepipe/core/monitor"
	"github.com/edgepipe/edgepipe/core/reload"
	"github.com/edgepipe/edgepipe/internal/broker"
	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/fbox"
	"github.com/edgepipe/edgepipe/sim/modbussim"
	"github.com/edgepipe/edgepipe/sim/opcuasim"
)

//go:embed demo.toml
var demoConfig string

func init() {
	register(command{name: "demo", summary: "embedded MQTT broker + simulated Modbus and OPC UA devices + pipeline with its console, printing every message",
		usage: `Usage: edgepipe demo [--duration D] [--print-config]

Starts the Modbus and OPC UA simulators, an embedded MQTT broker and a
gateway between them, and prints every message published until Ctrl-C.
The gateway's web console is served on a free loopback port, its URL
printed at start. Needs nothing else.`,
		flags: func() *flag.FlagSet { fs, _, _ := demoFlags(); return fs }, run: runDemo})
	register(command{name: "sim", summary: "device simulators: `edgepipe sim modbus --listen tcp://127.0.0.1:5020`, `edgepipe sim opcua --listen opc.tcp://127.0.0.1:4840`",
		usage: `Usage: edgepipe sim modbus [--listen URL]... [--config FILE] [--print-config]
       edgepipe sim opcua [--listen opc.tcp://HOST:PORT]

modbus: a Modbus slave simulator with changing values. --listen takes
tcp://HOST:PORT, rtuovertcp://HOST:PORT, rtu:///dev/ttyX or rtu://pty
(repeatable; default tcp://127.0.0.1:5020); --config a register map.

opcua: an OPC UA server (security None, anonymous) with a temperature,
a counter, a bool, a string and a writable setpoint, changing once a
second (default opc.tcp://127.0.0.1:4840).`,
		run: runSim})
}

// demoFlags is demo's flag set.
func demoFlags() (fs *flag.FlagSet, duration *time.Duration, printConfig *bool) {
	fs = newFlags("demo")
	duration = fs.Duration("duration", 0, "stop after this long (default: run until Ctrl-C)")
	printConfig = fs.Bool("print-config", false, "print the demo's gateway configuration and exit")
	return fs, duration, printConfig
}

func runSim(args []string, stdout, stderr io.Writer) int {
	sims := map[string]func(context.Context, []string, io.Writer) error{
		"modbus": modbussim.Command,
		"opcua":  opcuasim.Command,
	}
	if len(args) == 0 || sims[args[0]] == nil {
		fmt.Fprintln(stderr, "edgepipe sim: want `edgepipe sim modbus --listen URL [--config FILE]` or `edgepipe sim opcua --listen opc.tcp://HOST:PORT`")
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := sims[args[0]](ctx, args[1:], stdout); err != nil {
		fmt.Fprintln(stderr, "edgepipe sim "+args[0]+":", err)
		return 1
	}
	return 0
}

// runDemo wires the whole product together on one machine with nothing
// installed: the Modbus and OPC UA simulators on free loopback ports, an
// embedded MQTT broker, and a gateway between them with the demo
// configuration. A subscriber inside the broker prints every message that
// really went through MQTT. After a few seconds the demo writes a setpoint
// of each device from the "server" side, to show the way back. The
// gateway serves its console on a free loopback port (no password:
// loopback only), wired as `edgepipe run` wires it, so that the live
// points, a write, pause/resume and a configuration apply can be tried in
// a browser.
func runDemo(args []string, stdout, stderr io.Writer) int {
	fs, duration, printConfig := demoFlags()
	if !parseFlags(fs, args, 0, stderr) {
		return exitUsage
	}
	if *printConfig {
		fmt.Fprint(stdout, demoConfig)
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	sim, err := modbussim.Start(ctx, "tcp://127.0.0.1:0", nil)
	if err != nil {
		fmt.Fprintln(stderr, "edgepipe demo: simulator:", err)
		return 1
	}
	defer sim.Close()
	// gopcua's server prints its start with the standard log package;
	// not for the demo's terminal (slog.SetDefault below takes that
	// package's output over for the rest of the run).
	stdlog.SetOutput(io.Discard)
	uasim, err := opcuasim.Start("opc.tcp://127.0.0.1:0", 0)
	if err != nil {
		fmt.Fprintln(stderr, "edgepipe demo: OPC UA simulator:", err)
		return 1
	}
	defer uasim.Close()
	b, err := broker.Start("127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(stderr, "edgepipe demo: broker:", err)
		return 1
	}
	defer b.Close()
	var mu sync.Mutex
	print := func(topic string, payload []byte, _ bool) {
		if strings.HasPrefix(topic, "$") {
			return // the broker's own statistics
		}
		mu.Lock()
		defer mu.Unlock()
		printMessage(stdout, sdk.Message{Topic: topic, Payload: payload})
	}
	if err := b.Subscribe("#", print); err != nil {
		fmt.Fprintln(stderr, "edgepipe demo: subscribe:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "edgepipe-demo")
	if err != nil {
		fmt.Fprintln(stderr, "edgepipe demo:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	doc := strings.NewReplacer("${DEMO_MODBUS}", sim.Addr(), "${DEMO_OPCUA}", uasim.Endpoint(), "${DEMO_BROKER}", b.URL(),
		"${DEMO_DATA}", filepath.ToSlash(dir), "${DEMO_HTTP}", "127.0.0.1:0").Replace(demoConfig)
	// A file, so that the console's apply reloads it like SIGHUP would.
	src := reload.Source{Config: filepath.Join(dir, "demo.toml")}
	if err := os.WriteFile(src.Config, []byte(doc), 0o600); err != nil {
		fmt.Fprintln(stderr, "edgepipe demo:", err)
		return 1
	}
	start, err := src.Load()
	if err != nil {
		printErrorsAs(stderr, "demo", err)
		return 1
	}
	cfg := start.Cfg
	fmt.Fprintf(stderr, "edgepipe demo: Modbus simulator on %s, OPC UA simulator on %s, MQTT broker on %s; printing every message (Ctrl-C stops)\n",
		sim.Addr(), uasim.Endpoint(), b.URL())
	logs := console.NewLogRing(1000)
	log := slog.New(logs.Handler(newLogger("warn", stderr).Handler()))
	slog.SetDefault(log)
	rl := reload.New(start, reload.Options{Source: src, Logger: log, Version: versionString(), Lint: lint.Config})
	live := console.NewLive()
	a := agent.New(cfg, agent.Options{Logger: log, Version: versionString(), Observer: live, OnReboot: rl.Reboot, OnConfig: rl.Command})
	rl.Attach(a)
	if err := a.Open(ctx, true); err != nil {
		printErrorsAs(stderr, "demo", err)
		return 1
	}
	a.Start()
	go rl.Run(ctx)
	mon, err := monitor.Serve(monitor.Config{Addr: cfg.Agent.HTTPListen, Source: a, Logger: log,
		Console: console.New(console.Options{Agent: a, Live: live, Logs: logs, Running: rl.Config, Version: versionString(),
			Logger: log, CheckConfig: rl.CheckText, ApplyConfig: rl.ApplyText})})
	if err != nil {
		fmt.Fprintln(stderr, "edgepipe demo: console:", err)
	} else {
		defer mon.Close()
		fmt.Fprintf(stderr, "edgepipe demo: console on http://%s/ (live points, write, pause/resume, configuration; this machine only)\n", mon.Addr())
	}
	// Show the way back: the "server" writes a setpoint of each device a
	// few seconds in, each with its own reply.
	go func() {
		select {
		case <-ctx.Done():
		case <-time.After(3 * time.Second):
			topic := fbox.NewTopics(cfg.Agent.TopicPrefix, cfg.Agent.DeviceID).Write()
			_ = b.Publish(topic, []byte(`{"id":"demo-1","points":{"plc1.setpoint":75.5}}`))
			_ = b.Publish(topic, []byte(`{"id":"demo-2","points":{"line1.setpoint":55}}`))
		}
	}()
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	a.Stop(sctx)
	return 0
}
