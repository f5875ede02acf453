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
// the last the sweeper's least distance (sweepMinHeapDistance), which is
// also why minHeadroom is 1 MB. A Go release that changes a term fails
// here, not silently in the field.
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
		want := max(live+scan*uint64(p)/100, runtimeHeapMinimum*uint64(p)/100, live+minHeadroom)
		if goal != want {
			t.Errorf("GOGC=%d: heap goal %d B, the model says %d (live %d, scan %d)", p, goal, want, live, scan)
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
	for _, n := range pacerMetrics {
		h.samples = append(h.samples, metrics.Sample{Name: n})
	}
	runtime.GC()
	h.observe()
	live := h.samples[1].Value.Uint64()
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
	for _, n := range pacerMetrics {
		h.samples = append(h.samples, metrics.Sample{Name: n})
	}
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
