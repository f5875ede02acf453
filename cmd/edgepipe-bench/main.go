// Command edgepipe-bench measures the pipeline: a synthetic input feeds the
// processors and a discard output, once with every plugin in the core's
// process and once with every plugin isolated in its own process, and it
// prints a table of points per second, CPU per point and memory.
//
//	go run ./cmd/edgepipe-bench [-seconds 5] [-points 1000] [-procs deadband,template]
//
// CPU is the user+system time of the gateway process and of every plugin
// process over the measured window, divided by the points that went
// through; "points/CPU-s" is therefore what one core can carry.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/edgepipe/edgepipe/core/agent"
	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/core/isolate"
	_ "github.com/edgepipe/edgepipe/plugins/all"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

func main() {
	isolate.MaybeServe()
	seconds := flag.Float64("seconds", 5, "measured seconds per mode")
	points := flag.Int("points", 1000, "points per poll")
	procs := flag.String("procs", "", "processors, comma separated (default: deadband,template when built in, else bench stand-ins)")
	modes := flag.String("modes", "in-process,isolated", "modes to measure")
	cpuprofile := flag.String("cpuprofile", "", "write the gateway process's CPU profile here")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	chain := strings.Split(*procs, ",")
	if *procs == "" {
		chain = defaultChain()
	}
	fmt.Printf("edgepipe pipeline benchmark: synthetic input (%d points/poll) -> %s -> discard\n", *points, strings.Join(chain, " -> "))
	fmt.Printf("%s, %d CPUs, %s per mode\n\n", runtime.Version(), runtime.NumCPU(), time.Duration(*seconds*float64(time.Second)))
	fmt.Printf("| %-10s | %12s | %12s | %13s | %14s |\n", "mode", "points/s", "CPU us/point", "points/CPU-s", "RSS MB (total)")
	fmt.Printf("|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 12), strings.Repeat("-", 14), strings.Repeat("-", 14), strings.Repeat("-", 15), strings.Repeat("-", 16))
	for _, mode := range strings.Split(*modes, ",") {
		r, err := measure(mode == "isolated", *points, chain, time.Duration(*seconds*float64(time.Second)))
		if err != nil {
			fmt.Fprintln(os.Stderr, "edgepipe-bench:", err)
			return
		}
		fmt.Printf("| %-10s | %12.0f | %12.3f | %13.0f | %14.1f |\n", mode, r.rate, r.cpuPerPoint*1e6, 1/r.cpuPerPoint, r.rssMB)
	}
}

func defaultChain() []string {
	if _, ok := sdk.Lookup("processors.deadband"); ok {
		if _, ok := sdk.Lookup("processors.template"); ok {
			return []string{"deadband", "template"}
		}
	}
	return []string{"benchscale", "benchrender"}
}

type result struct {
	rate        float64 // points per wall second
	cpuPerPoint float64 // CPU seconds per point
	rssMB       float64
}

func measure(isolated bool, points int, chain []string, window time.Duration) (result, error) {
	dir, err := os.MkdirTemp("", "edgepipe-bench")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	var b strings.Builder
	fmt.Fprintf(&b, "[agent]\ndevice_id = \"BENCH\"\ndata_dir = %q\nhttp_listen = \"\"\n", dir)
	fmt.Fprintf(&b, "[[inputs.synthetic]]\ndevice = \"d\"\npoints = %d\npattern = \"random\"\ninterval = \"1us\"\n", points)
	for _, p := range chain {
		fmt.Fprintf(&b, "[[processors.%s]]\n", p)
		if p == "deadband" {
			// Report every change: the bench measures work, not filtering.
			fmt.Fprintf(&b, "report = \"change\"\nabsolute = 0.0\n")
		}
	}
	fmt.Fprintf(&b, "[[outputs.discard]]\nbuffer = \"memory\"\n")
	cfg, err := config.Parse("bench.toml", []byte(b.String()), os.LookupEnv)
	if err != nil {
		return result{}, err
	}
	a := agent.New(cfg, agent.Options{Logger: slog.New(slog.DiscardHandler),
		Isolation: func(*config.Plugin) bool { return isolated }})
	if err := a.Open(context.Background(), true); err != nil {
		return result{}, err
	}
	a.Start()
	defer a.Stop(context.Background())
	time.Sleep(time.Second) // warm up: connections, caches, GC pacing
	pids := []int{os.Getpid()}
	for _, p := range a.Stats().Plugins {
		if p.Pid != 0 {
			pids = append(pids, p.Pid)
		}
	}
	cpu0, start, n0 := cpuSeconds(pids), time.Now(), a.Stats().Gathered
	time.Sleep(window)
	cpu1, elapsed, n1 := cpuSeconds(pids), time.Since(start), a.Stats().Gathered
	n := float64(n1 - n0)
	if n == 0 {
		return result{}, fmt.Errorf("no points went through")
	}
	var rss float64
	for _, pid := range pids {
		rss += rssMB(pid)
	}
	return result{rate: n / elapsed.Seconds(), cpuPerPoint: (cpu1 - cpu0) / n, rssMB: rss}, nil
}

// cpuSeconds sums user+system CPU time of the processes from /proc.
func cpuSeconds(pids []int) float64 {
	const hz = 100 // USER_HZ on Linux
	var total float64
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		total += (ut + st) / hz
	}
	return total
}

func rssMB(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.Fields(rest)[0], 64)
			return kb / 1024
		}
	}
	return 0
}
