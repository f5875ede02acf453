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

// Past maxKernelTickers poll loops tick from runtime timers, and a stopped
// kernel ticker gives its place back.
func TestKernelTickersAreBounded(t *testing.T) {
	probe := newTicker(kernelTickMin)
	probe.stop()
	if !probe.kernel {
		t.Skip("no kernel ticker on this system")
	}
	base := int(kernelTickers.Load()) // poll loops of other tests, if any
	var ts []*ticker
	for range maxKernelTickers + 3 {
		ts = append(ts, newTicker(time.Second))
	}
	kernel := 0
	for _, tk := range ts {
		if tk.kernel {
			kernel++
		}
	}
	if kernel != maxKernelTickers-base {
		t.Errorf("%d of %d tickers from kernel timers, want %d", kernel, len(ts), maxKernelTickers-base)
	}
	if !ts[0].kernel {
		t.Fatal("the first ticker is not a kernel one")
	}
	ts[0].stop()
	ts[0].stop() // twice: counted once
	again := newTicker(time.Second)
	if !again.kernel {
		t.Error("a stopped kernel ticker's place was not given back")
	}
	again.stop()
	for _, tk := range ts[1:] {
		tk.stop()
	}
	if n := int(kernelTickers.Load()); n != base {
		t.Errorf("%d kernel tickers counted after every stop, %d before", n, base)
	}
}
