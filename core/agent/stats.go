package agent

import "sync/atomic"

type counters struct {
	gathered     atomic.Uint64 // points from inputs
	gatherErrors atomic.Uint64
	reported     atomic.Uint64 // points rendered into messages that a queue took
	dropped      atomic.Uint64 // points lost to a failing processor
	messages     atomic.Uint64 // messages handed to the outputs' queues
}

// Stats is a snapshot of the pipeline's counters.
type Stats struct {
	Gathered     uint64
	GatherErrors uint64
	Reported     uint64
	Dropped      uint64
	Messages     uint64
	Plugins      []PluginStats
}

// PluginStats describes one plugin instance.
type PluginStats struct {
	ID         string
	Kind       string
	Isolated   bool
	Pid        int // plugin process, 0 in-process
	Restarts   uint64
	Errors     uint64
	Gathered   uint64 // inputs
	BadQuality uint64 // inputs: gathered points with quality bad (failed reads)
	HeldBack   uint64 // processors: points taken out of frames without being rendered (a deadband's unchanged readings)
	Published  uint64 // outputs: messages delivered
	Queue      *QueueStats
}

// QueueStats describes an output's queue.
type QueueStats struct {
	Depth   int
	Bytes   int64
	Dropped uint64 // for the buffer_limit
	// DroppedFull could not be written (disk full), DroppedWrite for another
	// write error, DroppedCorrupt were lost to damaged records or missing
	// files; Corrupt counts the damaged regions found.
	DroppedFull, DroppedWrite, DroppedCorrupt, Corrupt uint64
	// WriteErr is why the queue cannot be written, "" when it can.
	WriteErr string
	Enabled  bool
}

// Stats reads the counters.
func (a *Agent) Stats() Stats {
	a.mu.RLock()
	defer a.mu.RUnlock()
	s := Stats{Gathered: a.stats.gathered.Load(), GatherErrors: a.stats.gatherErrors.Load(),
		Reported: a.stats.reported.Load(), Dropped: a.stats.dropped.Load(), Messages: a.stats.messages.Load()}
	add := func(in *instance) *PluginStats {
		ps := PluginStats{ID: in.cfg.ID, Kind: string(in.cfg.Kind), Isolated: in.sup != nil, Restarts: in.restarts(),
			Errors: in.errors.Load(), Gathered: in.gathered.Load(), BadQuality: in.badQuality.Load(),
			HeldBack: in.heldBack.Load(), Published: in.published.Load()}
		if in.sup != nil {
			ps.Pid = in.sup.Pid()
		}
		s.Plugins = append(s.Plugins, ps)
		return &s.Plugins[len(s.Plugins)-1]
	}
	for _, in := range a.inputs {
		add(in)
	}
	for _, in := range a.processors {
		add(in)
	}
	for _, o := range a.outputs {
		ps := add(o.in)
		qs := o.q.Stats()
		ps.Queue = &QueueStats{Depth: qs.Depth, Bytes: qs.Bytes, Dropped: qs.Dropped, DroppedFull: qs.DroppedFull,
			DroppedWrite: qs.DroppedWrite, DroppedCorrupt: qs.DroppedCorrupt, Corrupt: qs.Corrupt,
			WriteErr: qs.WriteErr, Enabled: o.enabled.Load()}
	}
	return s
}
