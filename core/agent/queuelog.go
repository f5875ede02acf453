package agent

import (
	"log/slog"
	"sync"
	"time"

	"github.com/edgepipe/edgepipe/core/queue"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// pushLogEvery bounds how often a queue that cannot be written is logged:
// a full disk fails every poll, and one line per poll would fill the log
// (and the disk) too.
const pushLogEvery = time.Minute

// pushLog rate-limits the log of an output's failing queue: the first
// failure is logged at once, then at most one line per pushLogEvery with
// how many messages were dropped since, and the recovery once.
type pushLog struct {
	mu      sync.Mutex
	now     func() time.Time // time.Now; tests set it
	failing bool
	last    time.Time
	dropped int // messages dropped since the last line
	total   int // messages dropped since the queue started failing
}

// push queues msgs on o's queue and reports whether it took them.
func (o *outputRunner) push(msgs []sdk.Message) bool {
	err := o.q.Push(msgs)
	o.pushLog.record(o.in.log, len(msgs), err)
	return err == nil
}

func (l *pushLog) record(log *slog.Logger, n int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now
	if l.now != nil {
		now = l.now
	}
	if err == nil {
		if l.failing {
			log.Info("queue is writable again; queuing resumed", "dropped_while_failing", l.total+l.dropped)
			l.failing, l.dropped, l.total = false, 0, 0
		}
		return
	}
	l.dropped += n
	t := now()
	if l.failing && t.Sub(l.last) < pushLogEvery {
		return
	}
	log.Error("queue cannot be written; new messages are dropped, queued ones are kept",
		"err", err, "dropped", l.dropped)
	l.failing, l.last = true, t
	l.total += l.dropped
	l.dropped = 0
}

// logDamage logs, once, what recovery found damaged in an output's disk
// queue and how many messages that cost.
func (a *Agent) logDamage(id string, d queue.Damage) {
	if d.Corrupt > 0 || d.Missing > 0 {
		a.log.Warn("queue was damaged; skipped the damaged records and kept the rest", "output", id,
			"lost_messages", d.Lost, "damaged_regions", d.Corrupt, "missing_files", d.Missing,
			"cut_tail_bytes", d.Truncated)
	} else if d.Truncated > 0 {
		a.log.Warn("queue had a damaged tail (a crash mid-write); cut it off", "output", id, "bytes", d.Truncated)
	}
}
