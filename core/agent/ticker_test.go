package agent

import (
	"runtime"
	"testing"
	"time"
)

// TestTickerTicksAndStops: the poll loop's ticker ticks repeatedly, drops
// ticks nobody takes rather than queueing them, and its goroutine ends on
// stop; and a very short interval (the synthetic input's "as fast as it
// goes") ticks at least as often as a slow poll loop can take.
func TestTickerTicksAndStops(t *testing.T) {
	fast := newTicker(time.Microsecond)
	start := time.Now()
	for range 1000 {
		<-fast.C
	}
	fast.stop()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("1000 ticks of 1 us took %v", d)
	}
	before := runtime.NumGoroutine()
	tk := newTicker(kernelTickMin)
	for range 3 {
		select {
		case <-tk.C:
		case <-time.After(10 * time.Second):
			t.Fatal("no tick")
		}
	}
	// Untaken ticks are dropped: after a while there is one waiting, not a
	// backlog.
	deadline := time.Now().Add(10 * time.Second)
	for len(tk.C) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := len(tk.C); n != 1 {
		t.Fatalf("%d ticks waiting, want 1", n)
	}
	tk.stop()
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after stop, %d before", n, before)
	}
}
