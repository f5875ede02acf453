package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/edgepipe/edgepipe/core/agent"
	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/internal/broker"
	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/fbox"
	"github.com/edgepipe/edgepipe/sim/modbussim"
)

//go:embed demo.toml
var demoConfig string

func init() {
	register(command{name: "demo", summary: "embedded MQTT broker + simulated Modbus device + pipeline, printing every message",
		usage: `Usage: edgepipe demo [--duration D] [--print-config]

Starts the Modbus simulator, an embedded MQTT broker and a gateway between
them, and prints every message published until Ctrl-C. Needs nothing else.`,
		flags: func() *flag.FlagSet { fs, _, _ := demoFlags(); return fs }, run: runDemo})
	register(command{name: "sim", summary: "device simulators: `edgepipe sim modbus --listen tcp://127.0.0.1:5020`",
		usage: `Usage: edgepipe sim modbus [--listen URL]... [--config FILE] [--print-config]

A Modbus slave simulator with changing values. --listen takes
tcp://HOST:PORT, rtuovertcp://HOST:PORT, rtu:///dev/ttyX or rtu://pty
(repeatable; default tcp://127.0.0.1:5020); --config a register map.`,
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
	if len(args) == 0 || args[0] != "modbus" {
		fmt.Fprintln(stderr, "edgepipe sim: want `edgepipe sim modbus --listen URL [--config FILE]`")
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := modbussim.Command(ctx, args[1:], stdout); err != nil {
		fmt.Fprintln(stderr, "edgepipe sim modbus:", err)
		return 1
	}
	return 0
}

// runDemo wires the whole product together on one machine with nothing
// installed: the Modbus simulator on a free loopback port, an embedded
// MQTT broker, and a gateway between them with the demo configuration. A
// subscriber inside the broker prints every message that really went
// through MQTT. After a few seconds the demo writes a setpoint from the
// "server" side, to show the way back.
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
	doc := strings.NewReplacer("${DEMO_MODBUS}", sim.Addr(), "${DEMO_BROKER}", b.URL(),
		"${DEMO_DATA}", filepath.ToSlash(dir)).Replace(demoConfig)
	cfg, err := config.Parse("demo.toml", []byte(doc), os.LookupEnv)
	if err != nil {
		printErrorsAs(stderr, "demo", err)
		return 1
	}
	fmt.Fprintf(stderr, "edgepipe demo: Modbus simulator on %s, MQTT broker on %s; printing every message (Ctrl-C stops)\n", sim.Addr(), b.URL())
	log := newLogger("warn", stderr)
	slog.SetDefault(log)
	a := agent.New(cfg, agent.Options{Logger: log})
	if err := a.Open(ctx, true); err != nil {
		printErrorsAs(stderr, "demo", err)
		return 1
	}
	a.Start()
	// Show the way back: the "server" writes a setpoint a few seconds in.
	go func() {
		select {
		case <-ctx.Done():
		case <-time.After(3 * time.Second):
			topic := fbox.NewTopics(cfg.Agent.TopicPrefix, cfg.Agent.DeviceID).Write()
			payload := []byte(`{"id":"demo-1","points":{"plc1.setpoint":75.5}}`)
			_ = b.Publish(topic, payload)
		}
	}()
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	a.Stop(sctx)
	return 0
}
