package backoff

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func seeded(seed uint64) func() float64 {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)).Float64
}

// Every wait lies in [0, ceiling], the ceiling doubles up to Max, and the
// waits under one ceiling cover it (full jitter, not a band around it).
func TestFullJitterWithinCeilingAndGrowing(t *testing.T) {
	b := New(Policy{Initial: 100 * time.Millisecond, Max: 3 * time.Second, Rand: seeded(1)})
	want := []time.Duration{100, 200, 400, 800, 1600, 3000, 3000, 3000}
	for i, w := range want {
		w *= time.Millisecond
		if w > 3*time.Second {
			w = 3 * time.Second
		}
		d := b.Next()
		if b.Ceiling() != w {
			t.Fatalf("attempt %d: ceiling %v, want %v", i, b.Ceiling(), w)
		}
		if d < 0 || d > w {
			t.Fatalf("attempt %d: wait %v outside [0, %v]", i, d, w)
		}
	}
}

func TestDistributionIsUniformOverTheWindow(t *testing.T) {
	const n = 4000
	r := seeded(7)
	var buckets [4]int
	for range n {
		b := New(Policy{Initial: time.Second, Max: time.Minute, Rand: r})
		d := b.Next()
		if d < 0 || d > time.Second {
			t.Fatalf("wait %v outside [0, 1s]", d)
		}
		buckets[min(int(d*4/time.Second), 3)]++
	}
	for i, c := range buckets {
		// Expected 1000 each; a quarter of the window must never be empty
		// or hold most of the waits.
		if c < 800 || c > 1200 {
			t.Fatalf("quarter %d of the window holds %d of %d waits: %v", i, c, n, buckets)
		}
	}
}

func TestBoundsOfTheRandomSource(t *testing.T) {
	zero := New(Policy{Initial: time.Second, Max: time.Second, Rand: func() float64 { return 0 }})
	if d := zero.Next(); d != 0 {
		t.Fatalf("rand 0: wait %v, want 0", d)
	}
	top := New(Policy{Initial: time.Second, Max: time.Second, Rand: func() float64 { return 0.9999999999 }})
	if d := top.Next(); d > time.Second || d < time.Second-time.Millisecond {
		t.Fatalf("rand ~1: wait %v, want ~1s and never above", d)
	}
}

func TestResetGoesBackToInitial(t *testing.T) {
	b := New(Policy{Initial: 50 * time.Millisecond, Max: time.Second, Rand: seeded(3)})
	for range 6 {
		b.Next()
	}
	if b.Ceiling() != time.Second {
		t.Fatalf("ceiling %v after 6 failures, want the cap 1s", b.Ceiling())
	}
	b.Reset()
	if d := b.Next(); b.Ceiling() != 50*time.Millisecond || d > 50*time.Millisecond {
		t.Fatalf("after Reset: wait %v under ceiling %v, want <= 50ms", d, b.Ceiling())
	}
}

func TestWaitEndsWithContext(t *testing.T) {
	b := New(Policy{Initial: time.Hour, Max: time.Hour, Rand: func() float64 { return 0.99 }})
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan bool, 1)
	go func() { res <- b.Wait(ctx) }()
	cancel()
	select {
	case ok := <-res:
		if ok {
			t.Fatal("Wait reported a completed wait after its context was cancelled")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait of an hour did not return when its context was cancelled")
	}
	if Sleep(ctx, 0) {
		t.Fatal("Sleep(0) on a cancelled context reported success")
	}
	if !Sleep(context.Background(), time.Millisecond) {
		t.Fatal("a 1ms Sleep did not complete")
	}
}

// A fleet sharing one configuration (each gateway its own process, here
// its own default random source) does not draw the same first wait.
func TestFleetDoesNotReconnectInLockStep(t *testing.T) {
	const fleet = 20
	var waits []time.Duration
	for range fleet {
		waits = append(waits, New(Policy{Initial: time.Second, Max: time.Minute}).Next())
	}
	slices.Sort(waits)
	if spread := waits[fleet-1] - waits[0]; spread < 300*time.Millisecond {
		t.Fatalf("20 gateways' first reconnect waits lie within %v of each other: %v", spread, waits)
	}
	if n := len(slices.Compact(slices.Clone(waits))); n < fleet-1 {
		t.Fatalf("only %d distinct first waits among %d gateways: %v", n, fleet, waits)
	}
}
