package runtimecfg

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercentForSizesHeadroomFromTheAllocationRate(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		name       string
		rate       float64 // bytes a second
		live, base uint64
		want       int
	}{
		// An isolated Modbus input: 2 MB live, a few KB a second: the
		// least headroom, 1 MB over 2.5 MB scanned.
		{"slow allocator", 20 << 10, 2 * mb, mb / 2, 40},
		// 1 MB/s over 4 MB live: 2 MB of headroom, half of Go's default.
		{"moderate", mb, 3 * mb, mb, 50},
		// A busy process keeps Go's default, never more.
		{"busy", 50 * mb, 2 * mb, 0, 100},
		// A tiny heap: the least headroom is more than doubling it, and
		// Go's default would not collect before 4 MB: the runtime's floor
		// is put at live + 1 MB (1.25 MB is 31 % of 4 MB).
		{"tiny heap", 0, mb / 4, 0, 31},
		// An isolated Modbus input's process: 1.2 MB live, 0.3 MB of
		// stacks and globals, 1 MB of headroom wanted: 66 % of 1.5 MB,
		// but at 66 the runtime's floor is 2.6 MB; 54 % puts it at 2.2.
		{"small heap", 100 << 10, 1200 << 10, 300 << 10, 54},
		// A large heap that allocates nothing: GOGC bottoms out.
		{"large idle heap", 0, 200 * mb, 0, minPercent},
		{"nothing live", mb, 0, 0, 100},
	} {
		if got := percentFor(c.rate, c.live, c.base); got != c.want {
			t.Errorf("%s: percentFor(%.0f B/s, %d live, %d base) = %d, want %d", c.name, c.rate, c.live, c.base, got, c.want)
		}
	}
}

// The pacer's model of the runtime (percentFor): the heap goal is
// max(live + (live+stacks+globals)*GOGC/100, 4 MB*GOGC/100, live + 1 MB),
// the last the sweeper's least distance (sweepMinHeapDistance, our
// sweepDistance), below which GOGC cannot go. A Go release that changes a
// term fails here, not silently in the field.
func TestRuntimeHeapGoalHasTheMinimumWeAssume(t *testing.T) {
	for _, p := range []int{100, 50, 20} {
		old := debug.SetGCPercent(p)
		runtime.GC()
		s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}, {Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}, {Name: "/gc/gogc:percent"}}
		metrics.Read(s)
		debug.SetGCPercent(old)
		goal, live := s[0].Value.Uint64(), s[1].Value.Uint64()
		scan := live + s[2].Value.Uint64() + s[3].Value.Uint64()
		if g := s[4].Value.Uint64(); g != uint64(p) {
			t.Fatalf("GOGC %d after setting %d: something else sets it during the test", g, p)
		}
		want := max(live+scan*uint64(p)/100, runtimeHeapMinimum*uint64(p)/100, live+sweepDistance)
		if goal != want {
			t.Errorf("GOGC=%d: heap goal %d B, the model says %d (live %d, scan %d)", p, goal, want, live, scan)
		}
	}
}

// The other half of the model (limitFor): under a memory limit that is
// below GOGC's goal, the runtime aims at the limit less what is not heap
// objects less 1 MB, with no sweep distance: a goal less than 1 MB over
// the live heap, which GOGC alone cannot give. (For a goal under 1 MB the
// runtime takes 1 MB: the live heap here is made larger than that, as a
// plugin process's is.)
func TestRuntimeHeapGoalUnderAMemoryLimitHasNoSweepDistance(t *testing.T) {
	oldPercent := debug.SetGCPercent(100)
	defer debug.SetGCPercent(oldPercent)
	oldLimit := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(oldLimit)
	ballast := make([][]byte, 16)
	for i := range ballast {
		ballast[i] = make([]byte, 128<<10)
	}
	defer runtime.KeepAlive(ballast)
	const headroom = 256 << 10
	for try := 0; ; try++ {
		debug.FreeOSMemory() // a collection, and no free pages left mapped
		s := pacerSamples()
		metrics.Read(s)
		f := figuresOf(s)
		live := f.live
		debug.SetMemoryLimit(limitFor(f.ready, f.free, live, headroom))
		g := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}, {Name: "/gc/heap/live:bytes"}}
		metrics.Read(g)
		debug.SetMemoryLimit(oldLimit)
		goal := g[0].Value.Uint64()
		if g[1].Value.Uint64() != live && try < 3 {
			continue // a collection came in between: read again
		}
		// The sweep, done by runtime.GC, leaves no dead objects to count:
		// the model's goal is exact but for what this test allocated since.
		if goal+32<<10 < live+headroom || goal >= live+sweepDistance {
			t.Fatalf("goal under the limit for %d B of headroom: %d B over %d B live, want %d..%d over", headroom, int64(goal)-int64(live), live, headroom, sweepDistance-1)
		}
		t.Logf("goal %d B over %d B live", goal-live, live)
		return
	}
}

// A process that allocates slowly gets a memory limit from the pacer
// that brings its goal under live + 1 MB; the limit someone set before
// (the ceiling) is never exceeded, and it is back once the headroom
// wanted reaches the sweep distance.
func TestPacerSetsAMemoryLimitBelowTheSweepDistance(t *testing.T) {
	var limits []int64
	h := &heapPacer{percent: maxPercent, set: func(int) int { return 0 },
		limit: 1 << 62, ceiling: 1 << 62, setLimit: func(l int64) int64 { limits = append(limits, l); return 0 },
		now: time.Now, samples: pacerSamples()}
	runtime.GC()
	h.observe() // the first: the rate is taken as nil
	if len(limits) != 1 {
		t.Fatalf("limits set at the first collection: %v, want one", limits)
	}
	f := figuresOf(h.samples)
	live, ready := f.live, f.ready
	if l := uint64(limits[0]); l < ready || l > ready+minHeadroom+limitSlack {
		t.Errorf("limit %d B for %d B mapped, %d B live: want no less than what is mapped and at most the headroom and the runtime's slack over it", l, ready, live)
	}

	// A ceiling lower than that is kept.
	h.ceiling = limits[0] / 2
	h.lastAt = time.Time{}
	h.observe()
	if got := limits[len(limits)-1]; got != h.ceiling {
		t.Errorf("limit %d B under a ceiling of %d B", got, h.ceiling)
	}

	// Fast allocation: GOGC's goal, the ceiling back.
	h.ceiling = 1 << 62
	h.lastAt, h.lastAlloc = time.Now().Add(-time.Second), 0
	h.observe() // alloc since the start over a second: well over 1 MB/s in a test binary
	if rate := figuresOf(h.samples).alloc; rate < sweepDistance/2 {
		t.Skipf("the test binary allocated %d B: too little for the fast case", rate)
	}
	if got := limits[len(limits)-1]; got != h.ceiling {
		t.Errorf("limit %d B for a fast allocator, want the ceiling %d B", got, h.ceiling)
	}
}

func TestLimitFor(t *testing.T) {
	const kb, mb = 1 << 10, 1 << 20
	for _, c := range []struct {
		name                        string
		ready, free, live, headroom uint64
		want                        int64
	}{
		// 4 MB mapped of which 1.2 MB live and 0.1 MB free pages: the
		// rest (2.7 MB) is not heap objects; the goal 1.45 MB, and the
		// runtime's 1 MB off it.
		{"plugin process", 4 * mb, 100 * kb, 1200 * kb, 256 * kb, 4*mb - 100*kb + 256*kb + mb},
		// Free pages over the headroom and the slack: what is mapped.
		{"just collected", 6 * mb, 2 * mb, 1200 * kb, 256 * kb, 6 * mb},
		// A large goal: 3 % of it rather than 1 MB.
		{"large", 100 * mb, 0, 60 * mb, 512 * kb, 100*mb + 512*kb + (60*mb+512*kb)*3/97},
		{"crossed figures", mb, mb, mb, 256 * kb, mb},
	} {
		if got := limitFor(c.ready, c.free, c.live, c.headroom); got != c.want {
			t.Errorf("%s: limitFor = %d, want %d", c.name, got, c.want)
		}
	}
}

func TestLimitHeadroom(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		name       string
		rate       float64
		live, base uint64
		want       uint64
	}{
		{"idle small process", 0, 1200 << 10, 300 << 10, minHeadroom},
		{"16 KB/s", 16 << 10, 1200 << 10, 300 << 10, minHeadroom},
		{"100 KB/s: 500 KB", 100 << 10, 2 * mb, mb / 2, 500 << 10},
		{"GOGC's: the sweep distance", 210 << 10, 2 * mb, 0, 0},
		{"a large heap keeps GOGC's goal", 0, 40 * mb, mb, 0},
	} {
		if got := limitHeadroom(c.rate, c.live, c.base); got != c.want {
			t.Errorf("%s: limitHeadroom = %d, want %d", c.name, got, c.want)
		}
	}
}

// The pacer sets GOGC at the first collection it sees, from the least
// headroom, instead of waiting for a second one to know the rate: a
// process that allocates 16 KB a second would keep a 4 MB goal for
// minutes.
func TestPacerSetsGOGCAtItsFirstCollection(t *testing.T) {
	var got []int
	h := &heapPacer{percent: maxPercent, set: func(p int) int { got = append(got, p); return 0 }, now: time.Now}
	h.samples = pacerSamples()
	runtime.GC()
	h.observe()
	live := figuresOf(h.samples).live
	if live >= runtimeHeapMinimum-minHeadroom {
		t.Skipf("%d B live: the test binary's heap is too large for the least headroom to lower GOGC", live)
	}
	if len(got) != 1 || got[0] >= maxPercent {
		t.Fatalf("GOGC set at the first collection: %v, want one value below %d (%d B live)", got, maxPercent, live)
	}
}

// gogc is the GOGC the runtime runs with now.
func gogc() uint64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// With a heap of 8 MB live that allocates almost nothing, the pacer brings
// GOGC down from the default after a few collections (it runs in the
// cleanup queue, after each cycle), and the environment's GOGC, when set,
// switches it off.
func TestPacerLowersGOGCForAHeapThatAllocatesLittle(t *testing.T) {
	if For(func(string) string { return "" }, 0).PaceHeap != true {
		t.Fatal("the pacer is off by default")
	}
	if For(func(k string) string {
		if k == "GOGC" {
			return "200"
		}
		return ""
	}, 0).PaceHeap {
		t.Error("GOGC set in the environment: the pacer must stay off")
	}
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	ballast := make([][]byte, 8)
	for i := range ballast {
		ballast[i] = make([]byte, 1<<20)
	}
	h := &heapPacer{percent: maxPercent, set: debug.SetGCPercent, now: time.Now}
	h.samples = pacerSamples()
	h.arm()
	defer h.stopped.Store(true)
	deadline := time.Now().Add(30 * time.Second)
	for gogc() == 100 && time.Now().Before(deadline) {
		runtime.GC()
		runtime.Gosched()
	}
	runtime.KeepAlive(ballast)
	got := gogc()
	if got >= 100 || got < minPercent {
		t.Fatalf("GOGC after collections of an 8 MB heap that hardly allocates: %d, want %d..99", got, minPercent)
	}
	t.Logf("GOGC %d", got)
}
