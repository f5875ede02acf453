package agent

import (
	"sync"
	"sync/atomic"
	"time"
)

// ticker is what the poll loop waits on between polls: a channel that
// gets a tick every period (ticks the loop could not take are dropped, and
// the schedule keeps its phase, as with time.Ticker) and a stop.
type ticker struct {
	C      <-chan time.Time
	stop   func()
	kernel bool // ticks from a kernel timer (newKernelTicker)
}

// maxKernelTickers bounds the kernel timers a process ticks from at once;
// poll loops beyond them get a time.Ticker.
//
// Why: a kernel timer saves the thread wake-ups of a runtime timer when a
// few inputs poll (one input every second: 1.55 -> 1.30 us CPU a point),
// but each one's expiry is its own event, read by its own system call,
// where the runtime's timer heap fires every timer due at once in one
// wake-up: 500 inputs of 30 points every second cost 2.7 us a point with
// time.Ticker and 2.9-3.0 with a timerfd each (README "## Performance").
// With many inputs the thread wakes for some poll most of the time anyway.
const maxKernelTickers = 16

// kernelTickers counts the kernel timers ticking now.
var kernelTickers atomic.Int32

// newTicker returns the poll loop's ticker: a kernel timer where there is
// one (newKernelTicker) and fewer than maxKernelTickers tick, else a
// time.Ticker.
func newTicker(d time.Duration) *ticker {
	if kernelTickers.Add(1) <= maxKernelTickers {
		if t := newKernelTicker(d); t != nil {
			stop := t.stop
			var once sync.Once
			t.stop = func() {
				once.Do(func() {
					stop()
					kernelTickers.Add(-1)
				})
			}
			t.kernel = true
			return t
		}
	}
	kernelTickers.Add(-1)
	t := time.NewTicker(d)
	return &ticker{C: t.C, stop: t.Stop}
}
