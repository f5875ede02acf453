// Command edgepipe-bench measures the pipeline, once with every plugin in
// the core's process and once with every plugin isolated in its own
// process, and prints a markdown table of points per second, CPU per
// point, memory and messages delivered.
//
//	go run ./cmd/edgepipe-bench [-scenario synthetic|modbus-mqtt] [-seconds N] [-runs N]
//
// Scenarios:
//
//   - synthetic (default): a synthetic input as fast as it goes (1000
//     points per poll) -> deadband, template -> discard output. It measures
//     the pipeline's own cost.
//   - modbus-mqtt: the project's performance bar. A Modbus simulator (a
//     separate process) serves 1000 holding registers; the gateway polls
//     them every 100 ms with inputs.modbus (8 merged reads of 125), renders
//     one batch JSON message per poll with the default template and
//     publishes it with outputs.mqtt at QoS 1 to mosquitto (a separate
//     process on a free loopback port). A subscriber counts what arrives.
//
// Every mode runs in a fresh child process, so that its RSS and peak RSS
// (VmHWM) are its own and not what the previous mode left on the heap.
// The simulator, the broker and the subscriber run outside the measured
// processes. CPU is the user+system time of the gateway process and of
// every plugin process over the measured window, divided by the points
// gathered; "points/CPU-s" is therefore what one core can carry. RSS is
// summed over the same processes at the end of the window, peak RSS is
// the sum of their VmHWM. With -runs N every figure is the median of N
// runs.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/edgepipe/edgepipe/core/isolate"
	_ "github.com/edgepipe/edgepipe/plugins/all"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// childArg is the hidden first argument of a measuring child process;
// simArg that of the Modbus simulator process.
const (
	childArg = "__bench-child"
	simArg   = "__bench-sim"
)

func main() {
	isolate.MaybeServe()
	if len(os.Args) >= 3 && os.Args[1] == childArg {
		os.Exit(childMain(os.Args[2]))
	}
	if len(os.Args) >= 2 && os.Args[1] == simArg {
		os.Exit(simMain(os.Args[2:]))
	}
	scenario := flag.String("scenario", "synthetic", "synthetic | modbus-mqtt")
	seconds := flag.Float64("seconds", 0, "measured seconds per run (default: 5 synthetic, 20 modbus-mqtt)")
	warmup := flag.Float64("warmup", 0, "seconds before measuring (default: 1 synthetic, 3 modbus-mqtt)")
	runs := flag.Int("runs", 1, "runs per mode; figures are medians")
	points := flag.Int("points", 1000, "points per poll")
	procs := flag.String("procs", "", "synthetic: processors, comma separated (default: deadband,template when built in, else bench stand-ins)")
	modes := flag.String("modes", "in-process,isolated", "modes to measure: in-process, isolated; a -disk suffix uses buffer = \"disk\" (in-process-disk)")
	interval := flag.Duration("interval", 100*time.Millisecond, "modbus-mqtt: poll interval")
	cpuprofile := flag.String("cpuprofile", "", "write the gateway process's CPU profile of the measured window to FILE.<mode>.<run>")
	memprofile := flag.String("memprofile", "", "write the gateway process's allocation profile (of the whole run) to FILE.<mode>.<run>")
	verbose := flag.Bool("v", false, "print every run")
	flag.Parse()

	spec := childSpec{Scenario: *scenario, Points: *points, Interval: *interval}
	switch *scenario {
	case "synthetic":
		spec.Window, spec.Warmup = 5*time.Second, time.Second
		spec.Chain = strings.Split(*procs, ",")
		if *procs == "" {
			spec.Chain = defaultChain()
		}
	case "modbus-mqtt":
		spec.Window, spec.Warmup = 20*time.Second, 3*time.Second
	default:
		fatalf("unknown -scenario %q (synthetic | modbus-mqtt)", *scenario)
	}
	if *seconds > 0 {
		spec.Window = time.Duration(*seconds * float64(time.Second))
	}
	if *warmup > 0 {
		spec.Warmup = time.Duration(*warmup * float64(time.Second))
	}

	var env *modbusEnv
	switch *scenario {
	case "synthetic":
		fmt.Printf("edgepipe pipeline benchmark: synthetic input (%d points/poll) -> %s -> discard\n", *points, strings.Join(spec.Chain, " -> "))
	case "modbus-mqtt":
		var err error
		env, err = startModbusEnv(*points)
		if errors.Is(err, errNoMosquitto) {
			fmt.Println("edgepipe-bench: modbus-mqtt skipped:", err)
			return
		}
		if err != nil {
			fatalf("%v", err)
		}
		defer env.close()
		spec.SimURL, spec.BrokerURL = env.simURL, env.brokerURL
		fmt.Printf("edgepipe benchmark: Modbus simulator (%d holding registers, separate process) -> inputs.modbus every %s -> template (batch JSON) -> outputs.mqtt QoS 1 -> mosquitto\n",
			*points, *interval)
	}
	fmt.Printf("%s, %d CPUs, %s measured after %s warm-up, median of %d run(s) per mode\n\n",
		runtime.Version(), runtime.NumCPU(), spec.Window, spec.Warmup, *runs)

	type row struct {
		mode string
		rs   []result
	}
	var rows []row
	for _, mode := range strings.Split(*modes, ",") {
		s := spec
		switch strings.TrimSuffix(mode, "-disk") {
		case "in-process", "isolated":
		default:
			fatalf("unknown mode %q (in-process, isolated, with an optional -disk suffix)", mode)
		}
		s.Mode = mode
		s.Isolated = strings.HasPrefix(mode, "isolated")
		s.Buffer = "memory"
		if strings.HasSuffix(mode, "-disk") {
			s.Buffer = "disk"
		}
		r := row{mode: mode}
		for i := 1; i <= *runs; i++ {
			if *cpuprofile != "" {
				s.CPUProfile = fmt.Sprintf("%s.%s.%d", *cpuprofile, mode, i)
			}
			if *memprofile != "" {
				s.MemProfile = fmt.Sprintf("%s.%s.%d", *memprofile, mode, i)
			}
			res, err := runChild(s, env)
			if err != nil {
				fatalf("%s run %d: %v", mode, i, err)
			}
			if *verbose || res.Warning != "" {
				fmt.Fprintf(os.Stderr, "%s run %d: %s%s\n", mode, i, res.summary(), res.Warning)
			}
			r.rs = append(r.rs, res)
		}
		rows = append(rows, r)
	}

	fmt.Printf("| %-15s | %10s | %12s | %12s | %8s | %11s | %13s | %11s |\n",
		"mode", "points/s", "CPU us/point", "points/CPU-s", "RSS MB", "RSS MB (*)", "peak RSS MB", "msgs/s")
	fmt.Printf("|%s|%s|%s|%s|%s|%s|%s|%s|\n", dashes(17), dashes(12), dashes(14), dashes(14), dashes(10), dashes(13), dashes(15), dashes(13))
	for _, r := range rows {
		m := func(f func(result) float64) float64 { return median(r.rs, f) }
		cpu := m(func(x result) float64 { return x.CPUPerPoint })
		fmt.Printf("| %-15s | %10.0f | %12.3f | %12.0f | %8.1f | %11.1f | %13.1f | %11.1f |\n", r.mode,
			m(func(x result) float64 { return x.Rate }), cpu*1e6, 1/cpu,
			m(func(x result) float64 { return x.RSSMB }), m(func(x result) float64 { return x.OnceMB }),
			m(func(x result) float64 { return x.PeakMB }),
			m(func(x result) float64 { return x.MsgRate }))
	}
	fmt.Println()
	fmt.Println("RSS, peak RSS: summed over the gateway and its plugin processes. (*) the executable's shared pages counted once.")
	if *scenario == "modbus-mqtt" {
		fmt.Println("msgs/s: messages that reached a subscriber of the data topic on the broker (QoS 1).")
		for _, r := range rows {
			fmt.Printf("%s: %s\n", r.mode, r.rs[len(r.rs)/2].summary())
		}
	}
}

func dashes(n int) string { return strings.Repeat("-", n) }

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "edgepipe-bench: "+format+"\n", args...)
	os.Exit(1)
}

func defaultChain() []string {
	if _, ok := sdk.Lookup("processors.deadband"); ok {
		if _, ok := sdk.Lookup("processors.template"); ok {
			return []string{"deadband", "template"}
		}
	}
	return []string{"benchscale", "benchrender"}
}

func median(rs []result, f func(result) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// childSpec tells a measuring child what to run.
type childSpec struct {
	Scenario   string
	Mode       string
	Isolated   bool
	Buffer     string // memory | disk
	Points     int
	Chain      []string      // synthetic
	Interval   time.Duration // modbus-mqtt
	Warmup     time.Duration
	Window     time.Duration
	SimURL     string
	BrokerURL  string
	CPUProfile string
	MemProfile string
}

// result is one run's figures.
type result struct {
	Rate        float64 // points gathered per wall second
	CPUPerPoint float64 // CPU seconds per point
	RSSMB       float64 // VmRSS of gateway + plugin processes at the end
	PeakMB      float64 // sum of their VmHWM
	// OnceMB counts the executable's pages once: the processes run the
	// same binary and share those pages, which every VmRSS counts again.
	// It is the sum of their private memory (RssAnon) plus the largest
	// RssFile.
	OnceMB    float64
	Procs     int     // gateway + plugin processes
	Published float64 // messages per second confirmed by the outputs
	MsgRate   float64 // messages per second delivered (subscriber; synthetic: published)
	// modbus-mqtt verification
	Subscribed   bool    // a subscriber counted deliveries
	Polls        float64 // polls per second (messages handed to the queues)
	GatherErrors uint64
	RecvPoints   float64 // points per second in the delivered messages
	RecvBad      float64 // ... of which with quality bad
	Warning      string
	// the gateway process's own heap
	AllocPerPoint float64 // bytes allocated per point
	GCs           uint32  // GC cycles in the window
	PerProcess    string  // isolated: a line per process
}

func (r result) summary() string {
	s := fmt.Sprintf("%.0f points/s, %.3f us CPU/point, %.1f MB RSS (%d processes), peak %.1f MB, gateway heap %.0f B/point and %d GCs, %.1f msgs/s confirmed by the output",
		r.Rate, r.CPUPerPoint*1e6, r.RSSMB, r.Procs, r.PeakMB, r.AllocPerPoint, r.GCs, r.Published)
	if r.Subscribed {
		s += fmt.Sprintf(", %.1f msgs/s with %.0f points/s (%.0f bad) received by the subscriber, %d gather errors",
			r.MsgRate, r.RecvPoints, r.RecvBad, r.GatherErrors)
	}
	return s + r.PerProcess
}

// runChild runs one measurement in a fresh process. The child prints
// "start" and "end" around its measured window (the subscriber's counts
// are taken there) and then its result as JSON.
func runChild(s childSpec, env *modbusEnv) (result, error) {
	exe, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	arg, _ := json.Marshal(s)
	cmd := exec.Command(exe, childArg, string(arg))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return result{}, err
	}
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	var res result
	var c0, c1 counts
	var t0, t1 time.Time
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "start":
			c0, t0 = env.counts(), time.Now()
		case line == "end":
			c1, t1 = env.counts(), time.Now()
		case strings.HasPrefix(line, "result "):
			if err := json.Unmarshal([]byte(line[len("result "):]), &res); err != nil {
				return res, err
			}
		default:
			fmt.Fprintln(os.Stderr, line)
		}
	}
	if err := cmd.Wait(); err != nil {
		return res, fmt.Errorf("child: %w", err)
	}
	if env != nil {
		res.Subscribed = true
		d := t1.Sub(t0).Seconds()
		res.MsgRate = float64(c1.msgs-c0.msgs) / d
		res.RecvPoints = float64(c1.points-c0.points) / d
		res.RecvBad = float64(c1.bad-c0.bad) / d
		if res.MsgRate < 0.9*res.Polls {
			res.Warning += fmt.Sprintf("; WARNING: %.1f msgs/s received, %.1f polls/s", res.MsgRate, res.Polls)
		}
		if res.RecvBad > 0 {
			res.Warning += "; WARNING: points with quality bad arrived"
		}
	} else {
		res.MsgRate = res.Published
	}
	return res, nil
}

// cpuSeconds sums the CPU time of the processes: the on-CPU nanoseconds of
// every thread from /proc/<pid>/task/<tid>/schedstat, exact where the
// user+system ticks of /proc/<pid>/stat are sampled 100 times a second
// (too coarse for a process that runs in bursts of microseconds). Threads
// that exited are missed; Go rarely ends its threads.
func cpuSeconds(pids []int) float64 {
	var total float64
	for _, pid := range pids {
		dir := "/proc/" + strconv.Itoa(pid) + "/task/"
		tasks, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, t := range tasks {
			b, err := os.ReadFile(dir + t.Name() + "/schedstat")
			if err != nil {
				continue
			}
			if f := strings.Fields(string(b)); len(f) > 0 {
				ns, _ := strconv.ParseFloat(f[0], 64)
				total += ns / 1e9
			}
		}
	}
	return total
}

// mem is a process's memory in MB from /proc/<pid>/status.
type mem struct {
	rss, hwm float64 // VmRSS, VmHWM (peak RSS)
	anon     float64 // RssAnon: its own, private memory
	file     float64 // RssFile: mapped files, mostly the executable
}

func memMB(pid int) mem {
	var m mem
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(b), "\n") {
		key, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var dst *float64
		switch key {
		case "VmRSS":
			dst = &m.rss
		case "VmHWM":
			dst = &m.hwm
		case "RssAnon":
			dst = &m.anon
		case "RssFile":
			dst = &m.file
		default:
			continue
		}
		kb, _ := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		*dst = kb / 1024
	}
	return m
}
