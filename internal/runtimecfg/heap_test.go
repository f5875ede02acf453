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
		// A tiny heap: the least headroom is more than doubling it.
		{"tiny heap", 0, mb / 4, 0, 100},
		// A large heap that allocates nothing: GOGC bottoms out.
		{"large idle heap", 0, 200 * mb, 0, minPercent},
		{"nothing live", mb, 0, 0, 100},
	} {
		if got := percentFor(c.rate, c.live, c.base); got != c.want {
			t.Errorf("%s: percentFor(%.0f B/s, %d live, %d base) = %d, want %d", c.name, c.rate, c.live, c.base, got, c.want)
		}
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
