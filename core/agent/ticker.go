package agent

import "time"

// ticker is what the poll loop waits on between polls: a channel that
// gets a tick every period (ticks the loop could not take are dropped, and
// the schedule keeps its phase, as with time.Ticker) and a stop.
type ticker struct {
	C    <-chan time.Time
	stop func()
}

// newTicker returns the poll loop's ticker: a kernel timer where there is
// one (newKernelTicker), else a time.Ticker.
func newTicker(d time.Duration) *ticker {
	if t := newKernelTicker(d); t != nil {
		return t
	}
	t := time.NewTicker(d)
	return &ticker{C: t.C, stop: t.Stop}
}
