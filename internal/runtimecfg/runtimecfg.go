// Package runtimecfg sets up the Go runtime of every long-running edgepipe
// process: the gateway (`edgepipe run`, the bench's gateway) and each
// built-in plugin's process (`edgepipe __plugin NAME`). One function,
// Apply, so that both kinds of process run with the same settings and the
// reasons for them live in one place.
//
// The environment wins: GOMAXPROCS, GOGC and GOMEMLIMIT, when set, are left
// to the runtime, which has already applied them.
package runtimecfg

import (
	"os"
	"runtime"
	"runtime/debug"
	"strings"
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
	// GCPercent: see defaultGCPercent.
	GCPercent int
	// NoHeapProfile: stop sampling allocations for the heap profile,
	// which nothing in a running gateway reads (no pprof endpoint): each
	// sample walks the stack and the profile's hash table (1.4 MB
	// reserved) gains a page per new call site, ~150 KB per process here.
	// A rate someone chose (the bench's -memprofile before Apply,
	// GODEBUG=memprofilerate=N) is kept.
	NoHeapProfile bool
	// TrimAfter: drop the executable's start-up pages this long after
	// Apply (see TrimStartup); 0: never.
	TrimAfter time.Duration
}

// defaultGCPercent is the GOGC a gateway runs with unless the environment
// sets one. The steady heap of a gateway is small (a few MB: configuration,
// point registry, connection buffers) and it allocates steadily per poll, so
// with the runtime's 100 the heap (and the RSS) swings between the live
// size and twice it. 50 keeps the goal at 1.5 times the live heap; the extra
// collections cost little at these heap sizes (measured in the modbus-mqtt
// scenario, see README "## Performance").
const defaultGCPercent = 50

// runtimeMemProfileRate is the runtime's default runtime.MemProfileRate.
const runtimeMemProfileRate = 512 * 1024

// startupGrace is how long after Apply the start-up is taken to be over:
// packages initialised, the configuration parsed, plugins initialised,
// connections opened and the first polls done.
const startupGrace = 10 * time.Second

// For is what Apply sets in a process whose environment is getenv: the
// runtime's own variables, when set, keep their say.
func For(getenv func(string) string) Settings {
	s := Settings{MaxProcs: 1, GCPercent: defaultGCPercent, NoHeapProfile: true, TrimAfter: startupGrace}
	if getenv("GOMAXPROCS") != "" {
		s.MaxProcs = 0
	}
	if getenv("GOGC") != "" {
		s.GCPercent = 0
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
	s := For(os.Getenv)
	if s.MaxProcs > 0 {
		runtime.GOMAXPROCS(s.MaxProcs)
	}
	if s.GCPercent > 0 {
		debug.SetGCPercent(s.GCPercent)
	}
	if s.NoHeapProfile && runtime.MemProfileRate == runtimeMemProfileRate {
		runtime.MemProfileRate = 0
	}
	if s.TrimAfter > 0 {
		time.AfterFunc(s.TrimAfter, func() { _ = TrimStartup() })
	}
}
