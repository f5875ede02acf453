// Package runtimecfg sets up the Go runtime of every long-running edgepipe
// process: the gateway (`edgepipe run`, the bench's gateway) and each
// built-in plugin's process (`edgepipe __plugin NAME`). One function,
// Apply, so that both kinds of process run with the same settings and the
// reasons for them live in one place.
//
// The environment wins: GOMAXPROCS, GOGC, GOMEMLIMIT and
// GODEBUG=memprofilerate, when set, are left to the runtime, which has
// already applied them.
package runtimecfg

import (
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// Settings are what Apply sets; a zero field is left as the runtime has it.
type Settings struct {
	// MaxProcs: one P. The pipeline is mostly waiting on devices and
	// brokers and its processing runs in one goroutine; with more Ps every
	// hand-off between goroutines (a poll's result, a gRPC call's reader
	// and writer) may wake an idle P's thread that then finds nothing to
	// do, and on the 2-core bench machine that futex and epoll churn cost
	// more than the work itself (1.80 -> 1.38 us CPU per point in the
	// modbus-mqtt benchmark, see README "## Performance"). One core carries
	// millions of points a second through the processors.
	MaxProcs int
	// MemoryLimit: a soft limit for the heap (runtime/debug.SetMemoryLimit),
	// see memoryLimitShare; 0: none.
	MemoryLimit int64
	// NoHeapProfile: stop sampling allocations for the heap profile,
	// which nothing in a running gateway reads (no pprof endpoint): each
	// sample walks the stack and the profile's hash table (1.4 MB
	// reserved) gains a page per new call site, ~150 KB per process here.
	// A rate someone chose (the bench's -memprofile before Apply,
	// GODEBUG=memprofilerate=N) is kept.
	NoHeapProfile bool
	// PaceHeap: size the heap from the allocation rate (see heapPacer).
	PaceHeap bool
	// TrimAfter: this long after Apply, return the start-up's garbage to
	// the system and drop the executable's start-up pages (see settle);
	// 0: never.
	TrimAfter time.Duration
}

// memoryLimitShare is the part of the memory limit of the process's
// cgroup (systemd's MemoryMax=, a container's limit) that its Go heap may
// take before the collector works harder: the rest is the executable's
// pages, the disk queue's page cache and, isolated, the plugin processes.
// Without a limit the heap pacer (heap.go) sizes the heap: a flat GOGC=50
// would save ~1.6 MB in process and ~6.5 MB over the four isolated
// processes at 1,000 points, and cost ~1 ms of GC CPU a second at 10,000
// points/s (+0.1 us a point, README "## Performance"), which is not ours
// to spend by default; the pacer saves it only where allocation is slow.
const memoryLimitShare = 0.8

// runtimeMemProfileRate is the runtime's default runtime.MemProfileRate.
const runtimeMemProfileRate = 512 * 1024

// startupGrace is how long after Apply the start-up is taken to be over:
// packages initialised, the configuration parsed, plugins initialised,
// connections opened and the first polls done.
const startupGrace = 10 * time.Second

// For is what Apply sets in a process whose environment is getenv and
// whose cgroup memory limit is cgroupLimit (0: none): the runtime's own
// variables, when set, keep their say.
func For(getenv func(string) string, cgroupLimit int64) Settings {
	s := Settings{MaxProcs: 1, NoHeapProfile: true, PaceHeap: true, TrimAfter: startupGrace}
	if getenv("GOMAXPROCS") != "" {
		s.MaxProcs = 0
	}
	if getenv("GOGC") != "" {
		s.PaceHeap = false
	}
	if getenv("GOMEMLIMIT") == "" && cgroupLimit > 0 {
		s.MemoryLimit = int64(float64(cgroupLimit) * memoryLimitShare)
	}
	if strings.Contains(getenv("GODEBUG"), "memprofilerate=") {
		s.NoHeapProfile = false
	}
	return s
}

// Apply sets the Go runtime of this process up for a gateway's work (see
// Settings) and, once start-up is over, trims the executable's pages that
// only start-up used (see TrimStartup). Call it once, early in main (after
// flag parsing) in the gateway and in a plugin's process.
func Apply() {
	s := For(os.Getenv, cgroupMemoryLimit(os.ReadFile))
	if s.MaxProcs > 0 {
		runtime.GOMAXPROCS(s.MaxProcs)
	}
	if s.MemoryLimit > 0 {
		debug.SetMemoryLimit(s.MemoryLimit)
	}
	if s.NoHeapProfile && runtime.MemProfileRate == runtimeMemProfileRate {
		runtime.MemProfileRate = 0
	}
	if s.PaceHeap {
		paceHeap()
	}
	if s.TrimAfter > 0 {
		time.AfterFunc(s.TrimAfter, settle)
	}
}

// settle ends the start-up's cost once it is over. The heap: parsing the
// configuration and initialising the plugins is the process's largest
// transient (with 50,000 configured points the live heap peaks at 176 MB
// for 39 MB in steady state), and the collector paces its next cycle from
// that peak, so the heap grew to 300 MB before the next collection and
// stayed mapped; a collection now that returns what it frees
// (debug.FreeOSMemory) sets the pace from the steady heap. Then the
// executable's pages only start-up used (TrimStartup).
func settle() {
	debug.FreeOSMemory()
	_ = TrimStartup()
}

// retrim is the one further trim scheduled by TrimAgainAfter, and peers
// the processes it asks to trim with it (AddTrimPeer).
var (
	retrimMu sync.Mutex
	retrim   *time.Timer
	peers    = map[*os.Process]struct{}{}
)

// TrimAgainAfter trims the executable's pages once more d from now, in
// this process and at the same moment in every peer (AddTrimPeer); a
// later call moves that time on, one trim however many calls.
//
// Why: processes that run the same executable (the gateway and its plugin
// processes) each trim 10 s after their own start. A trim drops from the
// page cache only the pages no process maps (see evictUnmapped); the
// others stay cached, and the kernel maps the cached pages in a 64 KB
// window around each page a process touches (fault-around, which
// MADV_RANDOM does not turn off). So when each process trims on its own
// schedule the others' pages stay cached and come back into it, and its
// pages into them: the tree's executable pages settled at the union of
// those windows, 6.5–7.0 MB over an isolated pipeline's four processes.
// Dropping them in every process at one moment, each evicting after its
// own drop, empties the cache of them: 5.5–5.6 MB (README "## Performance").
// A gateway without plugin processes never calls it and trims once.
func TrimAgainAfter(d time.Duration) {
	retrimMu.Lock()
	defer retrimMu.Unlock()
	if retrim != nil {
		retrim.Reset(d)
		return
	}
	retrim = time.AfterFunc(d, trimTree)
}

// trimTree asks every peer to trim (TrimOnSignal), then trims this
// process. The signal goes through the process's pidfd where the system
// has one (os.Process), so a peer that has exited is never mistaken for a
// process that took its pid.
func trimTree() {
	retrimMu.Lock()
	for p := range peers {
		_ = signalTrim(p)
	}
	retrimMu.Unlock()
	_ = TrimStartup()
}

// AddTrimPeer makes p, a process of this executable that called
// TrimOnSignal before it could be reached, trim with this one
// (TrimAgainAfter) until RemoveTrimPeer.
func AddTrimPeer(p *os.Process) {
	retrimMu.Lock()
	defer retrimMu.Unlock()
	peers[p] = struct{}{}
}

// RemoveTrimPeer forgets a peer of AddTrimPeer (it is exiting).
func RemoveTrimPeer(p *os.Process) {
	retrimMu.Lock()
	defer retrimMu.Unlock()
	delete(peers, p)
}

// StartupGrace is how long after start the first trim comes (startupGrace).
const StartupGrace = startupGrace
