// Command edgepipe-bench measures the gateway's cost: CPU per point and the
// memory of its whole process tree, with every plugin in the core's
// process and with every plugin isolated in its own process, and, given a
// Telegraf binary, Telegraf's in the same run against the same simulator
// and broker. It prints one markdown table per scenario.
//
// The full comparison (what the README's performance section shows; about
// 20 minutes on 2 cores):
//
//	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /tmp/edgepipe-bench ./cmd/edgepipe-bench
//	/tmp/edgepipe-bench -scenario modbus-mqtt,scaling,memory -telegraf /work/bench/telegraf -runs 3
//
// Build it static (CGO_ENABLED=0), as the release is (packaging/): built
// with cgo the gateway maps libc.so, whose pages it shares with every other
// dynamically linked process, and its PSS comes out lower than the
// release's would; the bench warns when that is so, for Telegraf too.
// `go run ./cmd/edgepipe-bench` works but links libc where a C compiler is
// installed.
//
// Scenarios (-scenario, comma separated):
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
//     With -telegraf, Telegraf polls the same registers with its Modbus
//     input and publishes JSON batches at QoS 1 to the same broker.
//   - scaling: the same pipeline at 1,000, 10,000 and 100,000 points/s
//     (1000 registers every 1 s and 100 ms, 10,000 registers every 100
//     ms on one connection and 10 devices of 1000 on 10), and 500 Modbus devices of 30 registers each every 1 s (500
//     connections, 15,000 points/s; in-process and Telegraf only).
//   - memory: memory per configured point: 100 and then 100,000 registers
//     (40 devices of 2,500 on one connection) polled every 5 s;
//     (PSS(100,000) - PSS(100)) / 99,900, from the PSS at the end of the
//     window and from the largest sampled in it.
//
// Every edgepipe run is a fresh child process (the gateway), so that its
// memory is its own and not what the previous run left on the heap. The
// child runs from a copy of this executable: the simulator and this
// parent (which runs the subscriber) map the original, and would otherwise
// share its pages with the gateway and halve its Pss_File. Plugin
// processes run the copy, as `edgepipe __plugin` runs the gateway's own
// binary. CPU is the on-CPU time (per-thread schedstat) of every process
// of the tree over the measured window, divided by the points gathered
// (Telegraf: the fields that reached the subscriber). PSS is summed over
// the tree from smaps_rollup. With -runs N every figure is the median of N
// runs.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
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

// options are the command line's settings every scenario uses.
type options struct {
	seconds, warmup float64
	runs            int
	points          int
	interval        time.Duration
	procs           string
	modes           []string
	telegraf        string
	cpuprofile      string
	memprofile      string
	verbose         bool
}

func main() {
	isolate.MaybeServe()
	if len(os.Args) >= 3 && os.Args[1] == childArg {
		os.Exit(childMain(os.Args[2]))
	}
	if len(os.Args) >= 2 && os.Args[1] == simArg {
		os.Exit(simMain(os.Args[2:]))
	}
	var o options
	scenarios := flag.String("scenario", "synthetic", "comma separated: synthetic | modbus-mqtt | scaling | memory")
	flag.Float64Var(&o.seconds, "seconds", 0, "measured seconds per run (default: 5 synthetic, 20 modbus-mqtt, 10 scaling, 5 memory)")
	flag.Float64Var(&o.warmup, "warmup", 0, "seconds before measuring (default: 1 synthetic, 25 in the Modbus scenarios: past the start-up)")
	flag.IntVar(&o.runs, "runs", 1, "runs per row, in rounds of one run of each row of a load; figures are medians")
	flag.IntVar(&o.points, "points", 1000, "synthetic: points per poll; modbus-mqtt: holding registers")
	flag.StringVar(&o.procs, "procs", "", "synthetic: processors, comma separated (default: deadband,template when built in, else bench stand-ins)")
	modes := flag.String("modes", "in-process,isolated", "modes to measure: in-process, isolated; suffixes: -pipelined (inputs.modbus max_in_flight = 8), -disk (buffer = \"disk\"), in that order (in-process-pipelined-disk)")
	flag.DurationVar(&o.interval, "interval", 100*time.Millisecond, "modbus-mqtt: poll interval")
	flag.StringVar(&o.telegraf, "telegraf", "", "a Telegraf binary (inputs.modbus, outputs.mqtt, serializers.json) to measure beside edgepipe in the Modbus scenarios")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write the gateway process's CPU profile of the measured window to FILE.<scenario>.<row>.<run>")
	flag.StringVar(&o.memprofile, "memprofile", "", "write the gateway process's allocation profile (of the whole run) to FILE.<scenario>.<row>.<run>")
	flag.BoolVar(&o.verbose, "v", false, "print every run")
	flag.Parse()
	if *modes != "" { // -modes "": Telegraf alone
		o.modes = strings.Split(*modes, ",")
	}
	for _, mode := range o.modes {
		switch strings.TrimSuffix(strings.TrimSuffix(mode, "-disk"), "-pipelined") {
		case "in-process", "isolated":
		default:
			fatalf("unknown mode %q (in-process, isolated, with optional -pipelined and -disk suffixes)", mode)
		}
	}
	if o.telegraf != "" {
		if _, err := exec.LookPath(o.telegraf); err != nil {
			fatalf("-telegraf: %v", err)
		}
	}
	list := strings.Split(*scenarios, ",")
	for _, s := range list {
		switch s {
		case "synthetic", "modbus-mqtt", "scaling", "memory":
		default:
			fatalf("unknown -scenario %q (synthetic | modbus-mqtt | scaling | memory)", s)
		}
	}

	gw, cleanup, err := gatewayCopy()
	if err != nil {
		fatalf("%v", err)
	}
	defer cleanup()
	fmt.Printf("%s, %d CPUs, median of %d run(s) per row\n", runtime.Version(), runtime.NumCPU(), o.runs)
	if linksLibc(os.Getpid()) {
		fmt.Println("NOTE: this edgepipe-bench links libc.so (built with cgo); the release is static. Build it with CGO_ENABLED=0 for the release's PSS.")
	}
	var env *modbusEnv
	for _, s := range list {
		fmt.Println()
		if s == "synthetic" {
			runSynthetic(o, gw)
			continue
		}
		if env == nil {
			if env, err = startModbusEnv(); errors.Is(err, errNoMosquitto) {
				fmt.Printf("## %s skipped: %v\n", s, err)
				continue
			} else if err != nil {
				fatalf("%v", err)
			}
			defer env.close()
		}
		runModbus(s, o, gw, env)
	}
}

// gatewayCopy copies this executable to a temporary directory: the
// gateway children run the copy, so that no process outside their tree
// maps their binary (see the package comment).
func gatewayCopy() (string, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "edgepipe-bench-gw")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	dst := filepath.Join(dir, "edgepipe-bench")
	if err := copyFile(exe, dst); err != nil {
		cleanup()
		return "", nil, err
	}
	return dst, cleanup, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func runSynthetic(o options, gw string) {
	spec := childSpec{Scenario: "synthetic", Points: o.points, Window: 5 * time.Second, Warmup: time.Second}
	spec.Chain = strings.Split(o.procs, ",")
	if o.procs == "" {
		spec.Chain = defaultChain()
	}
	o.window(&spec)
	fmt.Printf("## synthetic: synthetic input (%d points/poll, as fast as it goes) -> %s -> discard, %s measured after %s\n\n",
		o.points, strings.Join(spec.Chain, " -> "), spec.Window, spec.Warmup)
	printTable(o.measureRounds("synthetic", o.modes, spec, gw, nil), false)
	fmt.Println()
}

// window applies -seconds and -warmup.
func (o options) window(s *childSpec) {
	if o.seconds > 0 {
		s.Window = time.Duration(o.seconds * float64(time.Second))
	}
	if o.warmup > 0 {
		s.Warmup = time.Duration(o.warmup * float64(time.Second))
	}
}

// startupOver is the Modbus scenarios' warm-up: past the last start-up trim
// of an isolated pipeline (runtimecfg: 2 x 10 s, plus the plugin processes'
// start).
const startupOver = 25 * time.Second

// loads are the rows of a Modbus scenario.
func (o options) loads(scenario string) []load {
	switch scenario {
	case "modbus-mqtt":
		return []load{{Conns: 1, Units: 1, Points: o.points, Interval: o.interval}}
	case "scaling":
		return []load{
			{Conns: 1, Units: 1, Points: 1000, Interval: time.Second},
			{Conns: 1, Units: 1, Points: 1000, Interval: 100 * time.Millisecond},
			{Conns: 1, Units: 1, Points: 10000, Interval: 100 * time.Millisecond},
			{Conns: 10, Units: 1, Points: 1000, Interval: 100 * time.Millisecond},
			// 500 plugin processes would be 500 x 7 MB: not isolated.
			{Conns: 500, Units: 1, Points: 30, Interval: time.Second, InProcessOnly: true},
		}
	case "memory":
		return []load{
			{Conns: 1, Units: 1, Points: 100, Interval: 5 * time.Second},
			{Conns: 1, Units: 40, Points: 2500, Interval: 5 * time.Second},
		}
	}
	return nil
}

func runModbus(scenario string, o options, gw string, env *modbusEnv) {
	// The window opens after the gateway's start-up is over: its
	// processes trim the executable's pages 10 s after they start and,
	// isolated, again at 20-21 s (internal/runtimecfg), and the pages read
	// back from the disk then are a one-time cost (~15 ms of CPU) that in
	// a 10 s window at 1,000 points/s read as 1.5 us a point.
	spec := childSpec{Scenario: "modbus", Window: 20 * time.Second, Warmup: startupOver}
	switch scenario {
	case "scaling":
		spec.Window = 10 * time.Second
	case "memory":
		spec.Window, spec.SampleMem = 5*time.Second, true
	}
	o.window(&spec)
	switch scenario {
	case "modbus-mqtt":
		fmt.Printf("## modbus-mqtt: Modbus simulator (%d holding registers, separate process) -> inputs.modbus every %s -> template (batch JSON) -> outputs.mqtt QoS 1 -> mosquitto\n",
			o.points, o.interval)
	case "scaling":
		fmt.Println("## scaling: Modbus simulator -> inputs.modbus -> template (batch JSON) -> outputs.mqtt QoS 1 -> mosquitto, from 1,000 to 100,000 points/s, and 500 devices")
	case "memory":
		fmt.Println("## memory: memory per configured point, 100 and 100,000 holding registers (40 devices of 2,500) polled every 5 s (same pipeline)")
	}
	fmt.Printf("%s measured after %s warm-up; load: connections x devices x registers @ interval\n\n", spec.Window, spec.Warmup)
	var rows []row
	for _, l := range o.loads(scenario) {
		if err := env.startSim(l); err != nil {
			fatalf("simulator: %v", err)
		}
		s := spec
		s.Load, s.SimURL, s.BrokerURL = l, env.simURL, env.brokerURL
		var modes []string
		for _, mode := range o.modes {
			if !l.InProcessOnly || mode == "in-process" {
				modes = append(modes, mode)
			}
		}
		if o.telegraf != "" {
			modes = append(modes, "telegraf")
		}
		rows = append(rows, o.measureRounds(scenario, modes, s, gw, env)...)
		env.stopSim()
	}
	printTable(rows, o.telegraf != "")
	fmt.Println()
	if scenario == "memory" {
		printMemoryPerPoint(rows, o.loads(scenario))
	}
	fmt.Println("points/s: gathered by the gateway (Telegraf: fields that reached the subscriber). CPU % core: CPU seconds per wall second of the whole tree.")
	fmt.Println("PSS, RSS: summed over the process tree (gateway and plugin processes; Telegraf and its children); anon/file: Pss_Anon, Pss_File.")
	fmt.Println("msgs/s: messages that reached a subscriber on the broker (QoS 1). x TG: edgepipe / Telegraf of the same load.")
	for _, r := range rows {
		fmt.Printf("%s %s: %s\n", r.load, r.mode, r.rs[len(r.rs)/2].summary())
	}
	fmt.Println()
}

// measureRounds measures a row per mode (edgepipe's, or "telegraf"):
// -runs rounds of one run of each, interleaved, so that a change in the
// machine's load in between falls on every row alike.
func (o options) measureRounds(scenario string, modes []string, s childSpec, gw string, env *modbusEnv) []row {
	label := s.Load.String()
	if scenario == "synthetic" {
		label = "synthetic"
	}
	rows := make([]row, len(modes))
	for i := 1; i <= o.runs; i++ {
		for j, mode := range modes {
			rows[j].load, rows[j].mode = label, mode
			var res result
			var err error
			if mode == "telegraf" {
				res, err = runTelegraf(o.telegraf, s, env)
			} else {
				res, err = runChild(gw, o.edgepipeSpec(s, scenario, label, mode, i), env)
			}
			if err != nil {
				fatalf("%s %s run %d: %v", label, mode, i, err)
			}
			if o.verbose || res.Warning != "" {
				fmt.Fprintf(os.Stderr, "%s %s run %d: %s%s\n", label, mode, i, res.summary(), res.Warning)
			}
			rows[j].rs = append(rows[j].rs, res)
		}
	}
	return rows
}

// edgepipeSpec is s for run i of an edgepipe mode.
func (o options) edgepipeSpec(s childSpec, scenario, label, mode string, i int) childSpec {
	s.Mode = mode
	s.Isolated = strings.HasPrefix(mode, "isolated")
	s.Buffer = "memory"
	if strings.HasSuffix(mode, "-disk") {
		s.Buffer = "disk"
	}
	if strings.Contains(mode, "-pipelined") {
		s.InFlight = pipelinedInFlight
	}
	tag := fmt.Sprintf("%s.%s.%s.%d", scenario, strings.ReplaceAll(label, " ", ""), mode, i)
	if o.cpuprofile != "" {
		s.CPUProfile = o.cpuprofile + "." + tag
	}
	if o.memprofile != "" {
		s.MemProfile = o.memprofile + "." + tag
	}
	return s
}

// pipelinedInFlight is max_in_flight in the -pipelined modes: every read
// of a 1000-register poll (8 of 125) in one write.
const pipelinedInFlight = 8

// row is one line of a table: the runs of one mode (or Telegraf) at one load.
type row struct {
	load, mode string
	rs         []result
}

func (r row) median(f func(result) float64) float64 { return median(r.rs, f) }

// memSamplePeriod is how often the memory scenario samples PSS.
const memSamplePeriod = 250 * time.Millisecond

// maxPSSOf is the largest PSS sampled over the window, else the last.
func maxPSSOf(x result) float64 {
	if x.MaxMem != nil {
		return x.MaxMem.PSS
	}
	return x.Mem.PSS
}

func cpuOf(x result) float64 { return x.CPUPerPoint }
func pssOf(x result) float64 { return x.Mem.PSS }

func printTable(rows []row, ratios bool) {
	cols := []string{"load", "mode", "points/s", "CPU us/point", "CPU % core", "PSS MB", "anon", "file", "RSS MB", "procs", "msgs/s"}
	if ratios {
		cols = append(cols, "CPU x TG", "PSS x TG")
	}
	fmt.Println("| " + strings.Join(cols, " | ") + " |")
	fmt.Println("|" + strings.Repeat("---|", len(cols)))
	tg := map[string]row{}
	for _, r := range rows {
		if r.mode == "telegraf" {
			tg[r.load] = r
		}
	}
	for _, r := range rows {
		cpu := r.median(cpuOf)
		cells := []string{r.load, r.mode,
			fmt.Sprintf("%.0f", r.median(func(x result) float64 { return x.Rate })),
			fmt.Sprintf("%.3f", cpu*1e6),
			fmt.Sprintf("%.2f", r.median(func(x result) float64 { return x.CPUCore })*100),
			fmt.Sprintf("%.1f", r.median(pssOf)),
			fmt.Sprintf("%.1f", r.median(func(x result) float64 { return x.Mem.PSSAnon })),
			fmt.Sprintf("%.1f", r.median(func(x result) float64 { return x.Mem.PSSFile + x.Mem.PSSShmem })),
			fmt.Sprintf("%.1f", r.median(func(x result) float64 { return x.Mem.RSS })),
			fmt.Sprintf("%d", r.rs[0].Procs),
			fmt.Sprintf("%.1f", r.median(func(x result) float64 { return x.MsgRate })),
		}
		if ratios {
			if t, ok := tg[r.load]; ok && t.median(cpuOf) > 0 {
				cells = append(cells, fmt.Sprintf("%.2f", cpu/t.median(cpuOf)), fmt.Sprintf("%.2f", r.median(pssOf)/t.median(pssOf)))
			} else {
				cells = append(cells, "", "")
			}
		}
		fmt.Println("| " + strings.Join(cells, " | ") + " |")
	}
}

// printMemoryPerPoint prints what each further configured point costs:
// the PSS difference between the two loads of the memory scenario over
// the difference in points.
func printMemoryPerPoint(rows []row, loads []load) {
	small, large := loads[0], loads[1]
	dn := float64(large.points() - small.points())
	fmt.Printf("| mode | PSS MB at %d points (max in window) | PSS MB at %d points (max in window) | bytes of PSS per configured point (from the max) | peak RSS (VmHWM) bytes per point |\n|---|---|---|---|---|\n",
		small.points(), large.points())
	byKey := map[string]row{}
	var modes []string
	for _, r := range rows {
		byKey[r.load+"|"+r.mode] = r
		if !slices.Contains(modes, r.mode) {
			modes = append(modes, r.mode)
		}
	}
	hwm := func(x result) float64 { return x.Mem.HWM }
	for _, m := range modes {
		a, ok1 := byKey[small.String()+"|"+m]
		b, ok2 := byKey[large.String()+"|"+m]
		if !ok1 || !ok2 {
			continue
		}
		fmt.Printf("| %s | %.1f (%.1f) | %.1f (%.1f) | %.0f (%.0f) | %.0f |\n", m,
			a.median(pssOf), a.median(maxPSSOf), b.median(pssOf), b.median(maxPSSOf),
			(b.median(pssOf)-a.median(pssOf))*1024*1024/dn, (b.median(maxPSSOf)-a.median(maxPSSOf))*1024*1024/dn,
			(b.median(hwm)-a.median(hwm))*1024*1024/dn)
	}
	fmt.Println()
}

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

// load is what the Modbus simulator serves and what is polled: Conns
// connections ([[inputs.modbus]]), each to Units devices (unit ids 1..Units)
// of Points holding registers, every Interval.
type load struct {
	Conns, Units, Points int
	Interval             time.Duration
	InProcessOnly        bool `json:",omitempty"`
}

func (l load) points() int { return l.Conns * l.Units * l.Points }

// rate is the points per second the load asks for.
func (l load) rate() float64 { return float64(l.points()) / l.Interval.Seconds() }

// window is the measured window for a load: a whole number of poll
// intervals (at least one), so that it holds as many polls of each device
// wherever it starts, and it is started half an interval after a poll
// (alignWindow), so that a single device's polls are not on its edges:
// the points counted are those whose CPU the window holds.
func (l load) window(want time.Duration) time.Duration {
	if l.Interval <= 0 {
		return want
	}
	k := max(1, (want+l.Interval/2)/l.Interval)
	return k * l.Interval
}

// alignWindow waits until polled() changes (a poll ended, a message
// arrived), then half an interval. It polls every 2 ms before the window
// opens; nothing is polled inside the window.
func alignWindow(l load, polled func() uint64) error {
	if l.Interval <= 0 {
		return nil
	}
	first := polled()
	deadline := time.Now().Add(2*l.Interval + 10*time.Second)
	for polled() == first {
		if time.Now().After(deadline) {
			return fmt.Errorf("no poll within %s", 2*l.Interval+10*time.Second)
		}
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(l.Interval / 2)
	return nil
}

func (l load) String() string {
	return fmt.Sprintf("%d x %d x %d @ %s", l.Conns, l.Units, l.Points, l.Interval)
}

// devices names the devices of a load: plc1 alone, else plc001...
func (l load) device(conn, unit int) string {
	if l.Conns*l.Units == 1 {
		return "plc1"
	}
	return fmt.Sprintf("plc%03d", conn*l.Units+unit+1)
}

// register names register i of a device, as both gateways call it.
func (l load) register(i int) string {
	if l.Points > 10000 {
		return fmt.Sprintf("r%05d", i)
	}
	return fmt.Sprintf("r%04d", i)
}

// childSpec tells a measuring child what to run.
type childSpec struct {
	Scenario   string // synthetic | modbus
	Mode       string
	Isolated   bool
	Buffer     string   // memory | disk
	InFlight   int      // modbus: max_in_flight (0: the default, one)
	Points     int      // synthetic
	Chain      []string // synthetic
	Load       load     // modbus
	Warmup     time.Duration
	Window     time.Duration
	SimURL     string
	BrokerURL  string
	SampleMem  bool // the parent samples the tree's PSS over the window
	CPUProfile string
	MemProfile string
}

// result is one run's figures.
type result struct {
	Rate        float64 // points gathered per wall second
	CPUPerPoint float64 // CPU seconds per point
	CPUCore     float64 // CPU seconds per wall second (1 = one core)
	Mem         mem     // summed over the tree at the end of the window
	MaxMem      *mem    // -scenario memory: the sample of the largest PSS in the window
	Procs       int     // processes in the tree
	Libc        bool    // the main process maps libc.so
	Published   float64 // messages per second confirmed by the outputs
	MsgRate     float64 // messages per second delivered (subscriber; synthetic: published)
	// modbus verification
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
	s := fmt.Sprintf("%.0f points/s, %.3f us CPU/point (%.1f %% of a core), PSS %.1f MB (anon %.1f, file %.1f), RSS %.1f MB, peak RSS %.1f MB (%d processes)",
		r.Rate, r.CPUPerPoint*1e6, r.CPUCore*100, r.Mem.PSS, r.Mem.PSSAnon, r.Mem.PSSFile+r.Mem.PSSShmem, r.Mem.RSS, r.Mem.HWM, r.Procs)
	if r.Libc {
		s += " [links libc.so]"
	}
	if r.GCs > 0 || r.AllocPerPoint > 0 {
		s += fmt.Sprintf(", gateway heap %.0f B/point and %d GCs, %.1f msgs/s confirmed by the output", r.AllocPerPoint, r.GCs, r.Published)
	}
	if r.Subscribed {
		s += fmt.Sprintf(", %.1f msgs/s with %.0f points/s received by the subscriber", r.MsgRate, r.RecvPoints)
	}
	if r.Subscribed && r.Polls > 0 { // the gateway's
		s += fmt.Sprintf(" (%.0f bad), %.1f polls/s, %d gather errors", r.RecvBad, r.Polls, r.GatherErrors)
	}
	return s + r.PerProcess
}

// runChild runs one measurement in a fresh process of the executable gw.
// The child prints "start" and "end" around its measured window (the
// subscriber's counts are taken there) and then its result as JSON.
func runChild(gw string, s childSpec, env *modbusEnv) (result, error) {
	arg, _ := json.Marshal(s)
	cmd := exec.Command(gw, childArg, string(arg))
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
	var sampler *memSampler
	var maxMem *mem
	sc := bufio.NewScanner(out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "start":
			c0, t0 = env.edgepipe(), time.Now()
			if s.SampleMem {
				sampler = sampleMem(cmd.Process.Pid, memSamplePeriod)
			}
		case line == "end":
			c1, t1 = env.edgepipe(), time.Now()
			if sampler != nil {
				m := sampler.max()
				maxMem, sampler = &m, nil
			}
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
	res.MaxMem = maxMem // the child's result line came after "end"
	if env != nil {
		res.Subscribed = true
		d := t1.Sub(t0).Seconds()
		res.MsgRate = float64(c1.msgs-c0.msgs) / d
		res.RecvPoints = float64(c1.points-c0.points) / d
		res.RecvBad = float64(c1.bad-c0.bad) / d
		if res.MsgRate < 0.9*res.Polls {
			res.Warning += fmt.Sprintf("; WARNING: %.1f msgs/s received, %.1f polls/s", res.MsgRate, res.Polls)
		}
		if want := s.Load.rate(); res.Rate < 0.9*want || res.RecvPoints < 0.9*want {
			res.Warning += fmt.Sprintf("; WARNING: %.0f points/s gathered and %.0f received, the load asks for %.0f", res.Rate, res.RecvPoints, want)
		}
		if res.RecvBad > 0 {
			res.Warning += "; WARNING: points with quality bad arrived"
		}
	} else {
		res.MsgRate = res.Published
	}
	return res, nil
}
