package agent

import (
	"fmt"
	"time"
)

// Stalled reports an error when the pipeline has stopped making progress:
// its processing loop has been on one frame (the processors and the
// hand-off to the outputs' queues) for longer than limit. Processor calls
// are bounded by processTimeout through their context, so only a plugin
// that ignores it, or a deadlock in the core, gets here. An idle loop
// waiting for frames is healthy. `edgepipe run` feeds systemd's watchdog
// only while this is nil, so that a wedged gateway is restarted.
func (a *Agent) Stalled(limit time.Duration) error {
	since := a.busySince.Load()
	if since == 0 {
		return nil
	}
	if d := time.Since(time.Unix(0, since)); d > limit {
		return fmt.Errorf("the processing loop has been on one frame for %s", d.Round(time.Millisecond))
	}
	return nil
}
