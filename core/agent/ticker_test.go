package agent

import (
	"runtime"
	"testing"
	"time"
)

// TestTickerTicksAndStops: the poll loop's ticker ticks repeatedly, drops
// ticks nobody takes rather than queueing them, and its goroutine ends on
// stop.
func TestTickerTicksAndStops(t *testing.T) {
	before := runtime.NumGoroutine()
	tk := newTicker(5 * time.Millisecond)
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
