package runtimecfg

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// heapPacer, after every collection, sets GOGC so that the next collection
// comes once the process has allocated about what it allocates in gcEvery,
// but never later than Go's default (GOGC=100) would.
//
// Why: Go's default lets the heap double over what is live and never sizes
// it below 4 MB (the runtime's heap minimum, scaled by GOGC). An edge
// gateway's processes are small and most allocate slowly: an isolated
// Modbus input's process keeps ~2 MB live and allocates a few KB a poll,
// yet its heap grew to the 4 MB floor and stayed there, as did each of the
// four processes of an isolated pipeline (README "## Performance"). A
// smaller GOGC for everyone would save that memory and cost the busy ones
// CPU (GOGC=50: +0.1 us a point at 10,000 points/s); sizing the headroom
// from the allocation rate saves it where it is free: a process that
// allocates little gets a small heap and still collects rarely, one that
// allocates a lot keeps Go's default.
//
// GOGC alone cannot put a goal less than 1 MB over what is live: the
// runtime keeps that much between collections for its sweeper
// (sweepMinHeapDistance), so every process of an isolated pipeline, each
// allocating 16-50 KB a second, held live + 1 MB once its first minutes
// had filled it (~5 MB of anon PSS each, 22 MB for the four after two
// minutes against 20 MB at 45 s, README "## Performance"). Under a memory
// limit the runtime drops that floor and aims at the limit less what is
// not heap objects (stacks, runtime metadata, free slots in spans) less
// 1 MB; so where the headroom wanted is below 1 MB the pacer also sets a
// memory limit that puts the goal there (limitFor), and lifts it again
// when the headroom grows past 1 MB. A limit someone chose (GOMEMLIMIT,
// the cgroup's share, see memoryLimitShare) is never exceeded.
//
// The figures the pacer reads are the runtime's own (runtime/metrics) and
// it runs as a cleanup (runtime.AddCleanup) of an object each cycle leaves
// unreachable, once a cycle: no timer, no wake-up of its own.
type heapPacer struct {
	mu        sync.Mutex
	samples   []metrics.Sample
	lastAlloc uint64
	lastAt    time.Time
	percent   int
	limit     int64             // the memory limit in force
	ceiling   int64             // the limit chosen before the pacer (math.MaxInt64: none)
	set       func(int) int     // debug.SetGCPercent
	setLimit  func(int64) int64 // debug.SetMemoryLimit; nil: GOGC alone
	now       func() time.Time
	stopped   atomic.Bool // a test's pacer ends with its test
}

const (
	// gcEvery is the time between collections the pacer aims at: a
	// collection of a gateway-sized heap costs ~1 ms of CPU, so one every
	// 2 s is a twentieth of a percent of a core.
	gcEvery = 2 * time.Second
	// limitEvery is the time between collections the pacer aims at
	// below the sweep distance (limitHeadroom), where a collection saves
	// less than 1 MB: an in-process gateway at 1,000 points/s (137 KB/s)
	// paced at gcEvery collected every 2 s for 0.6 MB, +0.8 us/point.
	limitEvery = 5 * time.Second
	// minHeadroom is the least the heap may grow over what is live before
	// the next collection: a process that hardly allocates must not
	// collect on every small burst (a reload, a console request), and at
	// 16 KB a second (an isolated template processor) 256 KB is a
	// collection every 16 s.
	minHeadroom = 256 << 10
	// sweepDistance is the least headroom the runtime keeps under GOGC
	// (sweepMinHeapDistance in runtime/mgcpacer.go); below it the pacer
	// sets a memory limit. limitSlack is what the runtime takes off a
	// memory limit's goal for small heaps (memoryLimitMinHeapGoalHeadroom).
	// TestRuntimeHeapGoalHasTheMinimumWeAssume checks the first,
	// TestRuntimeHeapGoalUnderAMemoryLimitHasNoSweepDistance the second.
	sweepDistance = 1 << 20
	limitSlack    = 1 << 20
	// minPercent bounds GOGC from below.
	minPercent = 10
	// maxPercent is Go's default, which the pacer never exceeds: it only
	// ever makes a heap smaller than Go would.
	maxPercent = 100
)

// pacerMetrics are the runtime figures the pacer reads, in this order
// (figuresOf names them).
var pacerMetrics = []string{
	"/gc/heap/allocs:bytes",               // cumulative
	"/gc/heap/live:bytes",                 // marked live by the last cycle
	"/gc/scan/stack:bytes",                // GOGC's base besides the live heap
	"/gc/scan/globals:bytes",              //
	"/memory/classes/total:bytes",         // mapped, released included
	"/memory/classes/heap/released:bytes", // returned to the system
	"/memory/classes/heap/free:bytes",     // free pages not returned
}

// pacerSamples is a buffer for metrics.Read of pacerMetrics.
func pacerSamples() []metrics.Sample {
	s := make([]metrics.Sample, len(pacerMetrics))
	for i, n := range pacerMetrics {
		s[i].Name = n
	}
	return s
}

// pacerFigures are a reading of pacerMetrics.
type pacerFigures struct {
	alloc uint64 // allocated since start
	live  uint64 // marked live by the last cycle
	base  uint64 // stacks and globals: GOGC's base besides the live heap
	ready uint64 // mapped and not released
	free  uint64 // of ready, free pages
}

func figuresOf(s []metrics.Sample) pacerFigures {
	v := func(i int) uint64 { return s[i].Value.Uint64() }
	return pacerFigures{alloc: v(0), live: v(1), base: v(2) + v(3), ready: v(4) - v(5), free: v(6)}
}

// runtimeHeapMinimum is the runtime's heap minimum at GOGC=100
// (defaultHeapMinimum in runtime/mgcpacer.go): the runtime never sets a
// heap goal below it, scaled by GOGC/100, whatever is live.
// TestRuntimeHeapGoalHasTheMinimumWeAssume checks this model.
const runtimeHeapMinimum = 4 << 20

// percentFor is the GOGC that makes the next collection come after
// headroom bytes of allocation, for a heap of live bytes and a scan base
// (stacks and globals) of base bytes: the runtime's goal is
// max(live + (live+base)*GOGC/100, runtimeHeapMinimum*GOGC/100).
//
// The second term decides for the small heaps of plugin processes: with
// ~1.2 MB live and 1 MB of headroom wanted, GOGC=67 gives a 2.7 MB floor
// and the goal came out 0.6–1 MB over what the allocation rate asked
// for, in each of three processes of an isolated pipeline. So where the
// floor would be above live+headroom, GOGC is chosen to put the floor
// there instead.
//
// Below the runtime's sweep distance the memory limit sets the goal (see
// limitHeadroom), so GOGC asks for no less than that distance: a GOGC goal
// under the limit's would bring the distance back.
func percentFor(rate float64, live, base uint64) int {
	headroom := max(rate*gcEvery.Seconds(), sweepDistance)
	scan := float64(live + base)
	if scan <= 0 {
		return maxPercent
	}
	p := 100 * headroom / scan
	if target := float64(live) + headroom; runtimeHeapMinimum*p/100 > target {
		p = 100 * target / runtimeHeapMinimum
	}
	return min(max(int(p), minPercent), maxPercent)
}

// limitHeadroom is the headroom the memory limit is to leave (see
// heapPacer): limitEvery of allocation at the rate, at least minHeadroom and
// a tenth of the scanned heap (a large heap that hardly allocates keeps
// GOGC's goal: each of its collections costs in proportion to its size);
// 0 when that is the sweep distance or more, where GOGC alone sets the
// goal.
func limitHeadroom(rate float64, live, base uint64) uint64 {
	h := max(rate*limitEvery.Seconds(), minHeadroom, float64(live+base)*minPercent/100)
	if h >= sweepDistance {
		return 0
	}
	return uint64(h)
}

// limitFor is the memory limit under which the runtime's goal is live +
// headroom, for a process that has ready bytes mapped and not released,
// free bytes of them in free pages. The runtime's reckoning
// (memoryLimitHeapGoal in runtime/mgcpacer.go): the goal is the limit,
// less what is mapped and not heap objects, less what is mapped over the
// limit, less max(1 MB, 3 %). Two cautions:
//   - what is not heap objects is taken as ready - free - live, not from
//     the objects not swept yet: the sweep turns dead objects into free
//     slots or free pages, so the runtime's figure only comes out lower
//     and its goal higher than live + headroom, never at the live heap,
//     where it would collect without end;
//   - the limit is never below what is mapped: free pages the collection
//     has just made count as mapped until they are returned, and a limit
//     under them would take them off the goal too. A process with more
//     free pages than the headroom keeps its memory for this cycle (its
//     goal is live + the free pages - 1 MB); the scavenger returns what
//     stays unused.
func limitFor(ready, free, live, headroom uint64) int64 {
	goal := live + headroom
	if ready < free+live {
		// The figures crossed a collection: what is mapped, the least
		// limit allowed.
		return int64(ready)
	}
	want := (ready - free - live) + goal + max(limitSlack, goal*3/97)
	return int64(max(ready, want))
}

// observe is called after a collection: it reads the runtime's figures and
// sets GOGC for the next cycle. At the first collection it sees, the
// allocation rate is not known yet and is taken as nil (the least
// headroom): a process that allocates slowly would otherwise keep Go's
// default goal, at least 4 MB, until its second collection, which for an
// isolated template processor (16 KB a second) came minutes later; one
// that allocates fast gets a collection early, after which its rate is
// known.
func (h *heapPacer) observe() {
	if h.stopped.Load() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	metrics.Read(h.samples)
	f := figuresOf(h.samples)
	alloc, live, base := f.alloc, f.live, f.base
	now := h.now()
	prevAlloc, prevAt := h.lastAlloc, h.lastAt
	h.lastAlloc, h.lastAt = alloc, now
	rate := 0.0
	if !prevAt.IsZero() {
		dt := now.Sub(prevAt).Seconds()
		if dt <= 0 || alloc < prevAlloc {
			return
		}
		rate = float64(alloc-prevAlloc) / dt
	}
	if p := percentFor(rate, live, base); p != h.percent {
		h.set(p)
		h.percent = p
	}
	if h.setLimit == nil {
		return
	}
	limit := h.ceiling
	if headroom := limitHeadroom(rate, live, base); headroom > 0 {
		limit = min(limit, limitFor(f.ready, f.free, live, headroom))
	}
	if limit != h.limit {
		h.setLimit(limit)
		h.limit = limit
	}
}

// paceHeap starts the pacer; see heapPacer.
func paceHeap() {
	limit := debug.SetMemoryLimit(-1) // GOMEMLIMIT or Apply's share, if any
	h := &heapPacer{percent: maxPercent, set: debug.SetGCPercent,
		limit: limit, ceiling: limit, setLimit: debug.SetMemoryLimit, now: time.Now,
		samples: pacerSamples()}
	h.arm()
}

// sentinel is allocated for its cleanup alone, which runs once the
// collection that found it unreachable is over; big enough to stay out of
// the tiny allocator, whose blocks are freed together.
type sentinel struct{ _ [32]byte }

// arm makes h observe the end of the next collection, and re-arm.
func (h *heapPacer) arm() {
	if h.stopped.Load() {
		return
	}
	runtime.AddCleanup(new(sentinel), func(h *heapPacer) {
		h.observe()
		h.arm()
	}, h)
}
