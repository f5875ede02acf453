package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/edgepipe/edgepipe/core/agent"
	"github.com/edgepipe/edgepipe/core/config"
)

// childMain runs one measurement (spec is a JSON childSpec) and prints
// "start", "end" and "result {json}" on stdout.
func childMain(spec string) int {
	var s childSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fmt.Fprintln(os.Stderr, "edgepipe-bench child:", err)
		return 1
	}
	if s.MemProfile != "" {
		runtime.MemProfileRate = 4096
	}
	agent.TuneRuntime() // as `edgepipe run` does
	r, err := measure(s)
	if err != nil {
		fmt.Fprintln(os.Stderr, "edgepipe-bench child:", err)
		return 1
	}
	b, _ := json.Marshal(r)
	fmt.Printf("result %s\n", b)
	return 0
}

// gatewayConfig is the TOML the agent runs.
func gatewayConfig(s childSpec, dir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[agent]\ndevice_id = \"BENCH\"\ndata_dir = %q\nhttp_listen = \"\"\n", dir)
	switch s.Scenario {
	case "synthetic":
		fmt.Fprintf(&b, "[[inputs.synthetic]]\ndevice = \"d\"\npoints = %d\npattern = \"random\"\ninterval = \"1us\"\n", s.Points)
		for _, p := range s.Chain {
			fmt.Fprintf(&b, "[[processors.%s]]\n", p)
			if p == "deadband" {
				// Report every change: the bench measures work, not filtering.
				fmt.Fprintf(&b, "report = \"change\"\nabsolute = 0.0\n")
			}
		}
		fmt.Fprintf(&b, "[[outputs.discard]]\nbuffer = %q\n", s.Buffer)
	case "modbus":
		// Every register every poll, no deadband: what the Telegraf bar
		// does. The default template (batch JSON) is appended by the agent.
		// One [[inputs.modbus]] per connection, its devices by unit id.
		l := s.Load
		for c := 0; c < l.Conns; c++ {
			fmt.Fprintf(&b, "[[inputs.modbus]]\nurl = %q\ninterval = %q\ntimeout = \"1s\"\n", s.SimURL, l.Interval)
			if s.InFlight > 1 {
				fmt.Fprintf(&b, "max_in_flight = %d\n", s.InFlight)
			}
			for u := 0; u < l.Units; u++ {
				fmt.Fprintf(&b, "[[inputs.modbus.devices]]\nname = %q\nunit_id = %d\n", l.device(c, u), u+1)
				for i := 0; i < l.Points; i++ {
					fmt.Fprintf(&b, "[[inputs.modbus.devices.points]]\nname = %q\narea = \"holding\"\naddress = %d\ntype = \"uint16\"\n", l.register(i), i)
				}
			}
		}
		fmt.Fprintf(&b, "[[outputs.mqtt]]\nservers = [%q]\nqos = 1\nbuffer = %q\n", s.BrokerURL, s.Buffer)
	}
	return b.String()
}

func measure(s childSpec) (result, error) {
	dir, err := os.MkdirTemp("", "edgepipe-bench")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	cfg, err := config.Parse("bench.toml", []byte(gatewayConfig(s, dir)), os.LookupEnv)
	if err != nil {
		return result{}, err
	}
	// Plugins in this process log through slog's default: warnings only.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	slog.SetDefault(log)
	a := agent.New(cfg, agent.Options{Logger: log,
		Isolation: func(*config.Plugin) bool { return s.Isolated }})
	if err := a.Open(context.Background(), true); err != nil {
		return result{}, err
	}
	a.Start()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Stop(ctx)
	}()
	time.Sleep(s.Warmup) // connections, caches, GC pacing
	// The measured tree: this gateway and its plugin processes.
	pids := tree(os.Getpid())
	names := map[int]string{os.Getpid(): "gateway"}
	for _, p := range a.Stats().Plugins {
		if p.Pid != 0 {
			names[p.Pid] = p.ID
		}
	}
	per0 := make([]float64, len(pids))
	for i, pid := range pids {
		per0[i] = cpuSeconds([]int{pid})
	}
	if s.CPUProfile != "" {
		f, err := os.Create(s.CPUProfile)
		if err != nil {
			return result{}, err
		}
		defer f.Close()
		_ = pprof.StartCPUProfile(f)
	}
	window := s.Window
	if s.Scenario == "modbus" {
		window = s.Load.window(s.Window)
		if err := alignWindow(s.Load, func() uint64 { return a.Stats().Gathered }); err != nil {
			return result{}, err
		}
	}
	fmt.Println("start")
	st0 := a.Stats()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0, start := cpuSeconds(pids), time.Now()
	time.Sleep(window)
	cpu1, elapsed := cpuSeconds(pids), time.Since(start)
	st1 := a.Stats()
	runtime.ReadMemStats(&ms1)
	fmt.Println("end")
	if s.CPUProfile != "" {
		pprof.StopCPUProfile()
	}
	if s.MemProfile != "" {
		f, err := os.Create(s.MemProfile)
		if err != nil {
			return result{}, err
		}
		_ = pprof.Lookup("allocs").WriteTo(f, 0)
		f.Close()
	}
	n := float64(st1.Gathered - st0.Gathered)
	if n == 0 {
		return result{}, fmt.Errorf("no points went through")
	}
	r := result{Rate: n / elapsed.Seconds(), CPUPerPoint: (cpu1 - cpu0) / n, CPUCore: (cpu1 - cpu0) / elapsed.Seconds(),
		Procs: len(pids), Libc: linksLibc(os.Getpid()),
		Polls: float64(st1.Messages-st0.Messages) / elapsed.Seconds(), GatherErrors: st1.GatherErrors - st0.GatherErrors}
	r.AllocPerPoint = float64(ms1.TotalAlloc-ms0.TotalAlloc) / n
	r.GCs = ms1.NumGC - ms0.NumGC
	r.Published = float64(published(st1)-published(st0)) / elapsed.Seconds()
	if out := runningOutside(os.Getpid(), pids); len(out) > 0 {
		r.Warning += fmt.Sprintf("; WARNING: processes %v outside the measured tree run its binary and share its pages", out)
	}
	for i, pid := range pids {
		m := memOf(pid)
		r.Mem.add(m)
		if len(pids) > 1 {
			name := names[pid]
			if name == "" {
				name = fmt.Sprintf("pid %d", pid)
			}
			r.PerProcess += fmt.Sprintf("\n    %-28s %6.3f us CPU/point, PSS %5.1f MB (anon %4.1f, file %4.1f), RSS %5.1f MB, peak %5.1f MB",
				name, (cpuSeconds([]int{pid})-per0[i])/n*1e6, m.PSS, m.PSSAnon, m.PSSFile+m.PSSShmem, m.RSS, m.HWM)
		}
	}
	return r, nil
}

// published sums the messages the outputs confirmed.
func published(s agent.Stats) uint64 {
	var n uint64
	for _, p := range s.Plugins {
		if p.Queue != nil {
			n += p.Published
		}
	}
	return n
}
