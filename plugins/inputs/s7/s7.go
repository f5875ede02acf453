// Package s7 is the inputs.s7 plugin: it polls and writes Siemens S7
// PLCs (S7-300/400/1200/1500 and compatibles) over S7comm on ISO-on-TCP.
// One plugin instance is one PLC. The protocol is in package s7comm.
package s7

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/edgepipe/edgepipe/internal/backoff"
	"github.com/edgepipe/edgepipe/plugins/inputs/s7/s7comm"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

//go:embed sample.conf
var sampleConf string

func init() {
	sdk.Register(sdk.Registration{
		Kind:         sdk.KindInput,
		Name:         "s7",
		Description:  "Poll and write Siemens S7 PLCs (S7comm over ISO-on-TCP)",
		SampleConfig: sampleConf,
		Factory:      func() sdk.Plugin { return &S7{} },
	})
}

// S7 is the plugin instance.
type S7 struct {
	set    *settings
	points []*point
	byName map[string]*point
	polled []int // indexes of the points that are reported (pub, pubsub)

	// mu serialises everything that touches the connection: polls and
	// writes (which the core may call beside Gather).
	mu      sync.Mutex
	conn    *s7comm.Conn
	plan    *plan // for planPDU, the PDU size of the connection
	planPDU int
	fails   int              // consecutive polls that could not reach the PLC
	retryAt time.Time        // while failing: the next time the PLC is tried
	retry   *backoff.Backoff // while failing: spaces the attempts
	split   map[spanKey]bool // spans the PLC refused whole: read point by point

	stats stats
}

type spanKey struct {
	area  s7comm.Area
	db    int
	start int
}

type stats struct {
	mu                                      sync.Mutex
	requests, requestErrors, itemErrors     uint64
	connects, connectErrors, writes, wrErrs uint64
	lastErr                                 string
	down                                    bool // the last poll could not reach the PLC
}

func (s *stats) add(f func(s *stats)) {
	s.mu.Lock()
	f(s)
	s.mu.Unlock()
}

var (
	_ sdk.Input          = (*S7)(nil)
	_ sdk.Writer         = (*S7)(nil)
	_ sdk.HealthReporter = (*S7)(nil)
)

// Init checks the configuration. It opens nothing: `edgepipe check` calls
// Init, and an unreachable PLC is not a configuration error. The reads are
// planned at connect time, when the PDU size is known.
func (s *S7) Init(_ context.Context, req *sdk.InitRequest) (*sdk.InitResponse, error) {
	var cfg Config
	src, err := sdk.DecodeConfig(req, &cfg)
	if err != nil {
		return nil, err
	}
	set, points, errs := cfg.check(src)
	if len(errs) > 0 {
		return nil, errs
	}
	s.set, s.points, s.byName, s.split = set, points, map[string]*point{}, map[spanKey]bool{}
	var schemas []sdk.PointSchema
	for i, p := range points {
		s.byName[p.name] = p
		if p.access.Publishes() {
			s.polled = append(s.polled, i)
		}
		schemas = append(schemas, sdk.PointSchema{Device: set.device, Name: p.name, Type: coreNames[p.typ],
			Kind: p.kind(), Access: p.access, Unit: p.unit, Min: p.min, Max: p.max})
	}
	return &sdk.InitResponse{Points: schemas, Interval: set.interval}, nil
}

// Close closes the connection.
func (s *S7) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeConn()
	return nil
}

func (s *S7) closeConn() {
	if s.conn != nil {
		_ = s.conn.Close()
		s.conn = nil
	}
}

var errDown = errors.New("PLC unreachable")

// connect opens the connection unless it is open. After a failure the PLC
// is backed off with the shared policy (internal/backoff: a random wait
// under a ceiling that doubles from interval up to max_backoff), so that
// gateways polling one PLC do not retry in step: until retryAt nothing is
// sent, then one attempt is made.
func (s *S7) connect(ctx context.Context) error {
	if s.conn != nil {
		return nil
	}
	if s.fails > 0 && time.Now().Before(s.retryAt) {
		return fmt.Errorf("%w: %s (next attempt in %s)", errDown, s.set.address, time.Until(s.retryAt).Round(time.Millisecond))
	}
	c, err := s7comm.Dial(ctx, s.set.address, s.set.opts)
	if err != nil {
		s.stats.add(func(st *stats) { st.connectErrors++; st.lastErr = err.Error() })
		if ctx.Err() == nil { // a Gather cut short is not the PLC's fault
			s.failed(err)
		}
		return fmt.Errorf("%w: %v", errDown, err)
	}
	if s.fails > 0 {
		slog.Info("s7: connected again", "device", s.set.device, "address", s.set.address, "after_failures", s.fails)
	}
	s.conn, s.fails = c, 0
	s.stats.add(func(st *stats) { st.connects++ })
	if s.plan == nil || s.planPDU != c.PDUSize() {
		s.replan(c.PDUSize())
	}
	return nil
}

// replan plans the reads for a PDU size, keeping the spans the PLC
// refused split.
func (s *S7) replan(pdu int) {
	s.planPDU = pdu
	pl := makePlan(s.points, s.polled, s.set.maxGap, pdu)
	for si := len(pl.spans) - 1; si >= 0; si-- {
		sp := pl.spans[si]
		if len(sp.points) > 1 && s.split[spanKey{sp.area, sp.db, sp.start}] {
			pl.splitSpan(s.points, si, pdu)
		}
	}
	s.plan = pl
}

// failed notes a poll or connect that could not reach the PLC.
func (s *S7) failed(err error) {
	s.stats.add(func(st *stats) { st.down = true; st.lastErr = err.Error() })
	s.fails++
	if s.retry == nil || s.fails == 1 {
		s.retry = backoff.New(backoff.Policy{Initial: s.set.interval, Max: s.set.maxBackoff})
	}
	s.retryAt = time.Now().Add(s.retry.Next())
	if s.fails == 1 {
		slog.Warn("s7: PLC unreachable, its points are bad; backing off", "device", s.set.device,
			"address", s.set.address, "error", err)
	}
}

// Gather reads every published point. Points that could not be read are
// reported with quality bad.
func (s *S7) Gather(ctx context.Context) (*sdk.Frame, error) {
	if len(s.polled) == 0 {
		return &sdk.Frame{}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := time.Now().UnixMilli()
	b := sdk.Batch{Device: s.set.device, TS: ts, Points: make([]sdk.Point, len(s.points))}
	for _, pi := range s.polled {
		b.Points[pi] = sdk.Point{Name: s.points[pi].name, Quality: sdk.QualityBad, TS: ts}
	}
	if err := s.poll(ctx, b.Points); err == nil {
		s.stats.add(func(st *stats) { st.down = false })
	} else if !errors.Is(err, errDown) && ctx.Err() == nil {
		s.failed(err)
	}
	// Points are kept at their configuration index while reading; report
	// the polled ones in configuration order.
	out := b.Points[:0]
	for _, pi := range s.polled {
		out = append(out, b.Points[pi])
	}
	b.Points = out
	return &sdk.Frame{Batches: []sdk.Batch{b}}, nil
}

// poll runs the plan. A connection that breaks during the poll (the PLC
// restarted, a stale socket) is opened again at once, once, so a restart
// costs no poll when the PLC is back.
func (s *S7) poll(ctx context.Context, out []sdk.Point) error {
	if err := s.connect(ctx); err != nil {
		return err
	}
	bufs, failed, err := s.readAll(ctx)
	if err != nil && s7comm.Broken(err) && ctx.Err() == nil {
		s.closeConn()
		slog.Info("s7: connection lost, connecting again", "device", s.set.device, "error", err)
		if err := s.connect(ctx); err != nil {
			return err
		}
		bufs, failed, err = s.readAll(ctx)
	}
	if err != nil {
		if s7comm.Broken(err) {
			s.closeConn()
		}
		return err
	}
	s.decode(out, bufs, failed)
	return nil
}

// readAll runs every request of the plan: the bytes of each span, or why
// it could not be read. An error return is a broken connection.
func (s *S7) readAll(ctx context.Context) (bufs [][]byte, failed []error, err error) {
	bufs = make([][]byte, len(s.plan.spans))
	failed = make([]error, len(s.plan.spans))
	for si, sp := range s.plan.spans {
		bufs[si] = make([]byte, sp.size)
	}
	items := make([]s7comm.Item, 0, s7comm.MaxItems)
	for _, req := range s.plan.reqs {
		items = items[:0]
		for _, c := range req {
			items = append(items, c.item)
		}
		res, err := s.conn.Read(ctx, items)
		s.stats.add(func(st *stats) {
			st.requests++
			if err != nil {
				st.requestErrors++
				st.lastErr = err.Error()
			}
		})
		if err != nil {
			if s7comm.Broken(err) {
				return nil, nil, err
			}
			for _, c := range req {
				failed[c.span] = err
			}
			continue
		}
		for i, c := range req {
			if res[i].Err != nil {
				failed[c.span] = res[i].Err
			} else {
				copy(bufs[c.span][c.off:], res[i].Data)
			}
		}
	}
	return bufs, failed, nil
}

// decode fills the points of every span read whole. A merged span the PLC
// refused is split point by point for the next polls.
func (s *S7) decode(out []sdk.Point, bufs [][]byte, failed []error) {
	var refused []int
	for si, sp := range s.plan.spans {
		if failed[si] != nil {
			s.stats.add(func(st *stats) { st.itemErrors++; st.lastErr = failed[si].Error() })
			slog.Debug("s7: read refused", "device", s.set.device, "area", sp.area.String(), "db", sp.db,
				"start", sp.start, "size", sp.size, "error", failed[si])
			var ie *s7comm.ItemError
			if len(sp.points) > 1 && errors.As(failed[si], &ie) {
				refused = append(refused, si)
			}
			continue
		}
		for _, pi := range sp.points {
			p := s.points[pi]
			off := p.addr.start - sp.start
			v, err := p.decode(bufs[si][off:])
			if err != nil {
				continue
			}
			out[pi].Value, out[pi].Quality = v, sdk.QualityGood
		}
	}
	for i := len(refused) - 1; i >= 0; i-- {
		sp := s.plan.spans[refused[i]]
		slog.Info("s7: the PLC refused a merged read, reading its points one by one from now on",
			"device", s.set.device, "area", sp.area.String(), "db", sp.db, "start", sp.start, "size", sp.size)
		s.split[spanKey{sp.area, sp.db, sp.start}] = true
		s.plan.splitSpan(s.points, refused[i], s.planPDU)
	}
}

// Write sets points, each in its own Write Var request (a value longer
// than a PDU in several): a bool with a bit write, which leaves the other
// bits of its byte alone, a string as its current length and characters.
// The next poll reads the PLC again, so the server sees the new value.
func (s *S7) Write(ctx context.Context, reqs []sdk.WriteRequest) ([]sdk.WriteResult, error) {
	res := make([]sdk.WriteResult, len(reqs))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range reqs {
		full := r.Device + "." + r.Name
		p, ok := s.byName[r.Name]
		if !ok || r.Device != s.set.device {
			res[i].Error = fmt.Sprintf("point %s: no such point on this s7 input", full)
			continue
		}
		if !p.access.Subscribes() {
			res[i].Error = fmt.Sprintf("point %s is read-only (access=%s)", full, p.access)
			continue
		}
		data, err := p.encode(r.Value)
		if err == nil {
			err = s.writePoint(ctx, p, data)
		}
		s.stats.add(func(st *stats) {
			st.writes++
			if err != nil {
				st.wrErrs++
				st.lastErr = err.Error()
			}
		})
		if err != nil {
			res[i].Error = fmt.Sprintf("point %s: %v", full, err)
		}
	}
	return res, nil
}

func (s *S7) writePoint(ctx context.Context, p *point, data []byte) error {
	it := s7comm.Item{Area: p.addr.area, DB: p.addr.db, Start: p.addr.start}
	switch {
	case p.typ == tBool:
		it.IsBit, it.Bit, it.Size = true, p.bit, 1
	case p.typ == tString:
		it.Start++ // keep the PLC's max-length byte
	}
	for attempt := 0; ; attempt++ {
		if err := s.connect(ctx); err != nil {
			return err
		}
		err := s.writeItems(ctx, it, data)
		if err == nil || !s7comm.Broken(err) {
			return err
		}
		s.closeConn()
		if attempt > 0 || ctx.Err() != nil {
			return err
		}
		// A stale connection (the PLC restarted since the last poll):
		// connect again and write once more.
	}
}

// writeItems writes data from item it on, cut into requests that fit the
// PDU.
func (s *S7) writeItems(ctx context.Context, it s7comm.Item, data []byte) error {
	limit := s.conn.PDUSize() - s7comm.WriteRequestSize(0)
	for off := 0; off < len(data); off += limit {
		part := data[off:min(off+limit, len(data))]
		item := it
		if !it.IsBit {
			item.Start, item.Size = it.Start+off, len(part)
		}
		errs, err := s.conn.Write(ctx, []s7comm.Item{item}, [][]byte{part})
		if err != nil {
			return err
		}
		if errs[0] != nil {
			return fmt.Errorf("writing %s: %w", item, errs[0])
		}
	}
	return nil
}

// Health says whether the PLC can be reached and counts requests, errors
// and connections for /metrics.
func (s *S7) Health(context.Context) (sdk.Health, error) {
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	h := sdk.Health{OK: true, Counters: map[string]uint64{
		"requests": s.stats.requests, "request_errors": s.stats.requestErrors, "item_errors": s.stats.itemErrors,
		"connects": s.stats.connects, "connect_errors": s.stats.connectErrors,
		"writes": s.stats.writes, "write_errors": s.stats.wrErrs,
	}}
	if s.stats.down {
		h.OK, h.Reason = false, fmt.Sprintf("PLC %s unreachable: %s", s.set.address, s.stats.lastErr)
	}
	return h, nil
}
