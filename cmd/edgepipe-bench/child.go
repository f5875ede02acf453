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
	case "modbus-mqtt":
		// Every register every poll, no deadband: what the Telegraf bar
		// does. The default template (batch JSON) is appended by the agent.
		fmt.Fprintf(&b, "[[inputs.modbus]]\nurl = %q\ninterval = %q\ntimeout = \"1s\"\n", s.SimURL, s.Interval)
		fmt.Fprintf(&b, "[[inputs.modbus.devices]]\nname = \"plc1\"\nunit_id = 1\n")
		for i := 0; i < s.Points; i++ {
			fmt.Fprintf(&b, "[[inputs.modbus.devices.points]]\nname = \"r%04d\"\narea = \"holding\"\naddress = %d\ntype = \"uint16\"\n", i, i)
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
	pids, names := []int{os.Getpid()}, []string{"gateway"}
	for _, p := range a.Stats().Plugins {
		if p.Pid != 0 {
			pids, names = append(pids, p.Pid), append(names, p.ID)
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
	fmt.Println("start")
	st0 := a.Stats()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0, start := cpuSeconds(pids), time.Now()
	time.Sleep(s.Window)
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
	r := result{Rate: n / elapsed.Seconds(), CPUPerPoint: (cpu1 - cpu0) / n, Procs: len(pids),
		Polls: float64(st1.Messages-st0.Messages) / elapsed.Seconds(), GatherErrors: st1.GatherErrors - st0.GatherErrors}
	r.AllocPerPoint = float64(ms1.TotalAlloc-ms0.TotalAlloc) / n
	r.GCs = ms1.NumGC - ms0.NumGC
	r.Published = float64(published(st1)-published(st0)) / elapsed.Seconds()
	var file float64
	for i, pid := range pids {
		m := memMB(pid)
		r.RSSMB += m.rss
		r.PeakMB += m.hwm
		r.OnceMB += m.anon
		file = max(file, m.file)
		if len(pids) > 1 {
			r.PerProcess += fmt.Sprintf("\n    %-28s %6.3f us CPU/point, %5.1f MB RSS (%4.1f private), peak %5.1f MB",
				names[i], (cpuSeconds([]int{pid})-per0[i])/n*1e6, m.rss, m.anon, m.hwm)
		}
	}
	r.OnceMB += file
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
