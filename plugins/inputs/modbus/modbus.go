// Package modbus is the inputs.modbus plugin: it polls Modbus slaves over
// TCP, RTU (serial), RTU over TCP and TCP+TLS, and writes coils and
// registers for the server. One plugin instance is one connection (one TCP
// device or gateway, or one serial bus) shared by all its devices.
package modbus

import (
	"context"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	mb "github.com/simonvetter/modbus"

	"github.com/edgepipe/edgepipe/internal/backoff"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

//go:embed sample.conf
var sampleConf string

func init() {
	sdk.Register(sdk.Registration{
		Kind:         sdk.KindInput,
		Name:         "modbus",
		Description:  "Poll and write Modbus slaves over TCP, RTU, RTU over TCP and TCP+TLS",
		SampleConfig: sampleConf,
		Factory:      func() sdk.Plugin { return &Modbus{} },
		Lint:         lint,
	})
}

// point is a checked point configuration. A device holds its points in
// one slice of these (no pointer, map entry or closure per point): at
// 100,000 configured points the per-point state is most of the input's
// memory (issue 15). name is shared with the schema the input returns;
// what only the schema needs (unit, bounds) is in pointMeta.
type point struct {
	codec
	access sdk.Access
	addr   int
	name   string
}

// pointMeta is what a point's schema says beyond its point: kept from the
// check to Init, which puts it in the schemas (the core checks writes
// against their bounds) and drops it.
type pointMeta struct {
	unit     string
	min, max *float64
}

// device is one slave and its polling state.
type device struct {
	name     string
	unit     uint8
	interval time.Duration
	points   []point     // all, in configuration order
	meta     []pointMeta // parallel to points, until Init has built the schemas
	byName   []int32     // indices into points, sorted by name (writes find points by name)
	// polled are the points that are reported (pub, pubsub): points
	// itself when all are (the common case), else a copy of those.
	polled []point
	reqs   []request

	lastPoll time.Time
	fails    int              // consecutive polls the slave did not answer
	retryAt  time.Time        // while failing: the next time the bus is tried
	retry    *backoff.Backoff // while failing: spaces the retries

	health devHealth // guarded by Modbus.stats.mu, not the bus lock
}

// devHealth is what Health says about one slave (sdk.DeviceHealth).
type devHealth struct {
	up                  bool
	lastErr             string
	lastErrAt, lastGood time.Time
	readErrors          uint64
}

// Modbus is the plugin instance.
type Modbus struct {
	set     *settings
	devices []*device
	byName  map[string]*device
	tick    time.Duration // the shortest device interval: how often Gather runs

	// bus serialises everything that touches the connection: polls and
	// writes (which the core may call beside Gather).
	bus         sync.Mutex
	client      busClient
	pipe        pipeliner // the client, when it may have several reads in flight (max_in_flight > 1)
	open        bool
	connFails   int
	connRetryAt time.Time
	connRetry   *backoff.Backoff
	lastReq     time.Time

	stats stats
	// lent are the frames Gather returned and the core has not given back
	// yet (sdk.FrameReleaser); spare holds, per device, a points slice the
	// core gave back, for the device's next poll.
	lendMu sync.Mutex
	lent   []lentFrame
	spare  map[*device][]sdk.Point
	// released: the core has given a frame back; until it does, only the
	// first few frames are remembered (a core that never releases, as the
	// plugin server of an isolated input, must not pin old points).
	released  bool
	unclaimed int
}

// lentFrame is a frame the core holds and the points slices in it.
type lentFrame struct {
	f      *sdk.Frame
	points []lentPoints
}

type lentPoints struct {
	d   *device
	pts []sdk.Point
}

// maxLent bounds the frames remembered as lent; a core that has released
// none after probeLent frames is taken to release nothing (an isolated
// input, `edgepipe once`), and no frame is remembered from then on.
const (
	maxLent   = 4
	probeLent = 3
)

// stats are the counters Health reports.
type stats struct {
	mu                                        sync.Mutex
	requests, requestErrors, timeouts         uint64
	reconnects, connectErrors, writes, wrErrs uint64
	lastErr                                   string
	lastConnFailed                            bool
}

func (s *stats) add(f func(s *stats)) {
	s.mu.Lock()
	f(s)
	s.mu.Unlock()
}

// request counts one request that has its outcome, err (s.mu held).
func (s *stats) request(err error) {
	s.requests++
	if err != nil {
		s.requestErrors++
		s.lastErr = err.Error()
		if slaveSilent(err) && !isException(err) {
			s.timeouts++
		}
	}
}

var (
	_ sdk.Input          = (*Modbus)(nil)
	_ sdk.Writer         = (*Modbus)(nil)
	_ sdk.HealthReporter = (*Modbus)(nil)
	_ sdk.FrameReleaser  = (*Modbus)(nil)
)

// Init checks the configuration and plans the reads. It opens nothing:
// `edgepipe check` calls Init, and an unreachable device is not a
// configuration error.
func (m *Modbus) Init(_ context.Context, req *sdk.InitRequest) (*sdk.InitResponse, error) {
	var cfg Config
	src, err := sdk.DecodeConfig(req, &cfg)
	if err != nil {
		return nil, err
	}
	set, devices, errs := cfg.check(src)
	if len(errs) > 0 {
		return nil, errs
	}
	m.set, m.devices, m.byName = set, devices, map[string]*device{}
	// Exactly sized: the core keeps these schemas as the point registry's.
	n := 0
	for _, d := range devices {
		n += len(d.points)
	}
	schemas := make([]sdk.PointSchema, 0, n)
	for _, d := range devices {
		m.byName[d.name] = d
		var spans []span
		all := true
		for i := range d.points {
			p, pm := &d.points[i], &d.meta[i]
			schemas = append(schemas, sdk.PointSchema{Device: d.name, Name: p.name, Type: p.typ.String(),
				Kind: p.kind(), Access: p.access, Unit: pm.unit, Min: pm.min, Max: pm.max})
			all = all && p.access.Publishes()
		}
		d.meta = nil
		d.polled = d.points
		if !all {
			d.polled = make([]point, 0, len(d.points))
			for _, p := range d.points {
				if p.access.Publishes() {
					d.polled = append(d.polled, p)
				}
			}
			d.polled = slices.Clone(d.polled) // exactly sized
		}
		for i := range d.polled {
			p := &d.polled[i]
			spans = append(spans, span{area: p.area, addr: p.addr, count: p.count()})
		}
		d.reqs = plan(spans, set.lim)
		if len(d.polled) > 0 && (m.tick == 0 || d.interval < m.tick) {
			m.tick = d.interval
		}
	}
	if m.tick == 0 {
		m.tick = set.interval
	}
	client, err := newBusClient(set)
	if err != nil {
		return nil, sdk.ConfigErrors{src.Errorf("url", "%q: %v", set.url, err)}
	}
	m.client = client
	if p, ok := client.(pipeliner); ok && set.maxInFlight > 1 {
		m.pipe = p
	}
	return &sdk.InitResponse{Points: schemas, Interval: m.tick}, nil
}

// Close closes the connection.
func (m *Modbus) Close(context.Context) error {
	m.bus.Lock()
	defer m.bus.Unlock()
	m.closeConn()
	return nil
}

// due reports whether a device's own interval has come. Gather runs every
// tick (the shortest interval), so a device is due when less than half a
// tick remains: a 1 s device on a 500 ms tick is read every other call
// despite the core's scheduling jitter. A device the core asks to read
// back after a write (sdk.ReadBackDevices) is due at once.
func (m *Modbus) due(ctx context.Context, d *device, now time.Time) bool {
	if d.lastPoll.IsZero() || sdk.IsReadBack(ctx, d.name) {
		return true
	}
	return now.Sub(d.lastPoll) >= d.interval-m.tick/2
}

// Gather reads the devices whose interval has come, one batch per device.
// Points of reads that failed are reported with quality bad.
func (m *Modbus) Gather(ctx context.Context) (*sdk.Frame, error) {
	m.bus.Lock()
	defer m.bus.Unlock()
	now := time.Now()
	f := &sdk.Frame{}
	var lent []lentPoints
	for _, d := range m.devices {
		if len(d.polled) == 0 || !m.due(ctx, d, now) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		d.lastPoll = now
		b := m.poll(ctx, d, m.takeSpare(d))
		f.Batches = append(f.Batches, b)
		lent = append(lent, lentPoints{d, b.Points})
	}
	m.lend(f, lent)
	return f, nil
}

// takeSpare returns the points slice given back for d, if any.
func (m *Modbus) takeSpare(d *device) []sdk.Point {
	m.lendMu.Lock()
	defer m.lendMu.Unlock()
	pts := m.spare[d]
	delete(m.spare, d)
	return pts
}

// lend records that the core holds f and its points.
func (m *Modbus) lend(f *sdk.Frame, pts []lentPoints) {
	if len(pts) == 0 {
		return
	}
	m.lendMu.Lock()
	defer m.lendMu.Unlock()
	if !m.released {
		if m.unclaimed >= probeLent {
			m.lent = nil
			return
		}
		m.unclaimed++
	}
	if len(m.lent) == maxLent {
		m.lent = append(m.lent[:0], m.lent[1:]...) // forget the oldest: never given back
	}
	m.lent = append(m.lent, lentFrame{f, pts})
}

// ReleaseFrame takes back the points of a frame Gather returned: the next
// poll of each device writes over them instead of allocating
// (sdk.FrameReleaser).
func (m *Modbus) ReleaseFrame(f *sdk.Frame) {
	m.lendMu.Lock()
	defer m.lendMu.Unlock()
	for i, l := range m.lent {
		if l.f != f {
			continue
		}
		m.released = true
		if m.spare == nil {
			m.spare = map[*device][]sdk.Point{}
		}
		for _, p := range l.points {
			m.spare[p.d] = p.pts
		}
		m.lent = append(m.lent[:i], m.lent[i+1:]...)
		return
	}
}

// poll reads one device. A slave that does not answer is backed off on its
// own: until retryAt its points are reported bad without touching the bus,
// and then a single request without retries probes it, so a dead slave
// costs the bus one timeout per probe rather than timeout x (retries+1)
// per poll, and the live slaves keep their rate.
//
// pts, when it has room, is where the points go (a slice the core gave
// back); else they are allocated.
func (m *Modbus) poll(ctx context.Context, d *device, pts []sdk.Point) sdk.Batch {
	ts := time.Now().UnixMilli()
	if cap(pts) < len(d.polled) {
		pts = make([]sdk.Point, len(d.polled))
	}
	b := sdk.Batch{Device: d.name, TS: ts, Points: pts[:len(d.polled)]}
	for i := range d.polled {
		b.Points[i] = sdk.Point{Name: d.polled[i].name, Quality: sdk.QualityBad, TS: ts}
	}
	if d.fails > 0 && time.Now().Before(d.retryAt) {
		return b
	}
	probing := d.fails > 0
	queue := make([]pending, len(d.reqs))
	for i, r := range d.reqs {
		queue[i] = pending{r: r}
	}
	for len(queue) > 0 && ctx.Err() == nil {
		if m.pipe != nil {
			var stop bool
			if queue, stop = m.pollPipelined(ctx, d, &b, queue, &probing); stop {
				return b
			}
			continue
		}
		r := queue[0].r
		queue = queue[1:]
		regs, bits, err := m.read(ctx, d.unit, r, m.retries(probing))
		split, stop := m.settle(d, &b, r, regs, bits, err, &probing)
		if stop {
			return b
		}
		if len(split) > 0 {
			queue = append(split, queue...)
		}
	}
	return b
}

// pending is a read of a poll yet to be done, and how often it was tried
// again (counted here only for pipelined reads; read counts its own).
type pending struct {
	r     request
	tries int
}

// retries is how often a failed read is tried again: not at all while
// probing a slave that did not answer.
func (m *Modbus) retries(probing bool) int {
	if probing {
		return 0
	}
	return m.set.retries
}

// settle takes the outcome of one read of device d, after its retries:
// the points it serves go into b, the slave's state is updated. It
// returns the reads that replace r when a merged read was refused (read
// them next), and stop when the slave does not answer: the rest of the
// poll is not read (its points stay bad) and the slave is backed off.
func (m *Modbus) settle(d *device, b *sdk.Batch, r request, regs []byte, bits []bool, err error, probing *bool) (split []pending, stop bool) {
	if err != nil {
		if errors.Is(err, mb.ErrIllegalDataAddress) && len(r.points) > 1 {
			// The merged read crossed a hole in the device's map: read
			// its points one by one from now on.
			slog.Info("modbus: read refused (illegal data address), splitting it per point",
				"device", d.name, "area", r.area.String(), "start", r.start, "count", r.count)
			for _, q := range m.split(d, r) {
				split = append(split, pending{r: q})
			}
			return split, false
		}
		if slaveSilent(err) {
			m.noteRead(d, r, err)
			d.fails++
			if d.retry == nil || d.fails == 1 {
				// The shared policy (full jitter): slaves on one bus, and
				// gateways polling one device, do not retry in step.
				d.retry = backoff.New(backoff.Policy{Initial: d.interval, Max: m.set.maxBackoff})
			}
			d.retryAt = time.Now().Add(d.retry.Next())
			if d.fails == 1 {
				slog.Warn("modbus: device does not answer, its points are bad; backing off", "device", d.name,
					"unit_id", d.unit, "url", m.set.url, "error", err)
			}
			return nil, true
		}
		slog.Debug("modbus: read failed", "device", d.name, "area", r.area.String(), "start", r.start,
			"count", r.count, "error", err)
	}
	// The slave answered (with data or an exception): it is alive.
	m.noteRead(d, r, err)
	if *probing {
		slog.Info("modbus: device answers again", "device", d.name, "unit_id", d.unit, "after_failures", d.fails)
		*probing = false
	}
	d.fails = 0
	if err == nil {
		m.decodeInto(b.Points, d, r, regs, bits)
	}
	return nil, false
}

// pollPipelined sends the first max_in_flight reads of the queue together
// (max_in_flight > 1) and settles each, in the queue's order, as poll
// settles one read: a read that failed is tried again (in the next
// pipeline, first) as often as read would try it, and the reads a broken
// stream left unanswered are sent again at no cost to their retries. It
// returns the queue left: those reads again, in their order, then the
// rest. A read after one that stops the poll is dropped unsettled, its
// points bad, as a read never sent is with one request in flight. A slave
// that did not answer is probed with one read alone, as poll probes it:
// a dead slave behind a gateway costs one gateway timeout, not N.
func (m *Modbus) pollPipelined(ctx context.Context, d *device, b *sdk.Batch, queue []pending, probing *bool) (rest []pending, stop bool) {
	n := min(m.set.maxInFlight, len(queue))
	if *probing {
		n = 1
	}
	batch := queue[:n]
	reads := make([]pipeRead, n)
	for i, p := range batch {
		reads[i] = pipeRead{fc: p.r.area.readFC(), addr: uint16(p.r.start), qty: uint16(p.r.count)}
	}
	m.doPipelined(ctx, d.unit, reads)
	var again []pending
	for i := range reads {
		p, rd := batch[i], &reads[i]
		if !rd.done {
			again = append(again, p)
			continue
		}
		if rd.err != nil && retryable(rd.err) && p.tries < m.retries(*probing) && ctx.Err() == nil {
			p.tries++
			again = append(again, p)
			continue
		}
		split, stop := m.settle(d, b, p.r, rd.regs, rd.bits, rd.err, probing)
		if stop {
			return nil, true
		}
		again = append(again, split...)
	}
	return append(again, queue[n:]...), false
}

// noteRead records the outcome of one read request of a device for Health.
// Data or an exception proves the slave is there (up); silence says it is
// not (down). A garbled answer (bad CRC, another unit's late reply) proves
// neither and leaves the state as it was, counted as a failed read.
func (m *Modbus) noteRead(d *device, r request, err error) {
	now := time.Now()
	m.stats.add(func(*stats) {
		h := &d.health
		switch {
		case err == nil:
			h.up, h.lastGood = true, now
			return
		case isException(err) && !slaveSilent(err):
			h.up = true
		case slaveSilent(err):
			h.up = false
		}
		h.readErrors++
		h.lastErr = fmt.Sprintf("reading %s %d (count %d): %v", r.area, r.start, r.count, err)
		h.lastErrAt = now
	})
}

// decodeInto fills the points of request r from its response (wire bytes
// of the registers, or bits), leaving a point bad when the response does
// not hold it.
func (m *Modbus) decodeInto(out []sdk.Point, d *device, r request, regs []byte, bits []bool) {
	for _, pi := range r.points {
		p := &d.polled[pi]
		off := p.addr - r.start
		var v sdk.Value
		var err error
		if r.area.bits() {
			if off >= 0 && off < len(bits) {
				v = sdk.Bool(bits[off])
			} else {
				err = errShort
			}
		} else if off >= 0 && 2*off <= len(regs) {
			v, err = p.decodeRegisters(regs[2*off:])
		} else {
			err = errShort
		}
		if err != nil {
			continue
		}
		out[pi].Value, out[pi].Quality = v, sdk.QualityGood
	}
}

// split replaces a merged request of the device's plan by one request per
// point and returns them.
func (m *Modbus) split(d *device, r request) []request {
	var parts []request
	for _, pi := range r.points {
		p := &d.polled[pi]
		parts = append(parts, request{area: p.area, start: p.addr, count: p.count(), points: []int32{pi}})
	}
	var reqs []request
	for _, q := range d.reqs {
		if q.area == r.area && q.start == r.start && q.count == r.count {
			reqs = append(reqs, parts...)
		} else {
			reqs = append(reqs, q)
		}
	}
	d.reqs = reqs
	return parts
}

// slaveSilent tells the failures that mean the slave is not there (as
// opposed to a slave that answers with an exception): timeouts, a gateway
// saying its target did not respond, a connection that cannot be opened.
func slaveSilent(err error) bool {
	return errors.Is(err, mb.ErrRequestTimedOut) || errors.Is(err, mb.ErrGWTargetFailedToRespond) ||
		errors.Is(err, mb.ErrGWPathUnavailable) || errors.Is(err, errConnDown) || isTimeout(err)
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// isException reports a Modbus exception response: the slave answered, the
// link is fine.
func isException(err error) bool {
	switch {
	case errors.Is(err, mb.ErrIllegalFunction), errors.Is(err, mb.ErrIllegalDataAddress),
		errors.Is(err, mb.ErrIllegalDataValue), errors.Is(err, mb.ErrServerDeviceFailure),
		errors.Is(err, mb.ErrAcknowledge), errors.Is(err, mb.ErrServerDeviceBusy),
		errors.Is(err, mb.ErrMemoryParityError), errors.Is(err, mb.ErrGWPathUnavailable),
		errors.Is(err, mb.ErrGWTargetFailedToRespond):
		return true
	}
	return false
}

// retryable: worth asking again (the slave may answer next time).
func retryable(err error) bool {
	if errors.Is(err, errConnDown) {
		return false
	}
	if isException(err) {
		return errors.Is(err, mb.ErrServerDeviceBusy) || errors.Is(err, mb.ErrGWTargetFailedToRespond) ||
			errors.Is(err, mb.ErrAcknowledge)
	}
	return true
}

var errConnDown = errors.New("connection down")

// read runs one read request with retries: registers come back as wire
// bytes, bits as bools.
func (m *Modbus) read(ctx context.Context, unit uint8, r request, retries int) (regs []byte, bits []bool, err error) {
	for attempt := 0; attempt <= retries; attempt++ {
		err = m.do(ctx, unit, func(c busClient) error {
			var e error
			switch r.area {
			case areaCoil:
				bits, e = c.ReadCoils(uint16(r.start), uint16(r.count))
			case areaDiscrete:
				bits, e = c.ReadDiscreteInputs(uint16(r.start), uint16(r.count))
			case areaHolding:
				regs, e = c.ReadRawBytes(uint16(r.start), uint16(2*r.count), mb.HOLDING_REGISTER)
			case areaInput:
				regs, e = c.ReadRawBytes(uint16(r.start), uint16(2*r.count), mb.INPUT_REGISTER)
			}
			return e
		})
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return regs, bits, err
		}
	}
	return nil, nil, err
}

// do runs one request on the connection, opening it when needed, pacing
// requests as configured, and closing it when the stream can no longer be
// trusted. Callers hold m.bus.
func (m *Modbus) do(ctx context.Context, unit uint8, fn func(c busClient) error) error {
	if err := m.ensureOpen(ctx); err != nil {
		return err
	}
	if p := m.set.pauseBetweenRequests; p > 0 {
		if err := sleep(ctx, time.Until(m.lastReq.Add(p))); err != nil {
			return err
		}
	}
	_ = m.client.SetUnitId(unit)
	err := fn(m.client)
	m.lastReq = time.Now()
	m.stats.add(func(s *stats) { s.request(err) })
	m.afterError(err)
	return err
}

// doPipelined runs reads together on the pipelining client, as do runs
// one request: opening the connection when needed, counting each read
// that has its outcome as a request, and closing the connection when the
// stream can no longer be trusted (a late answer on it could be taken for
// the answer to a later request). Callers hold m.bus.
func (m *Modbus) doPipelined(ctx context.Context, unit uint8, reads []pipeRead) {
	if err := m.ensureOpen(ctx); err != nil {
		_ = charge(reads, err)
		return
	}
	_ = m.client.SetUnitId(unit)
	err := m.pipe.ReadPipelined(reads)
	m.lastReq = time.Now()
	m.stats.add(func(s *stats) {
		for i := range reads {
			if reads[i].done {
				s.request(reads[i].err)
			}
		}
	})
	m.afterError(err)
}

// afterError closes the connection when err leaves its byte stream
// untrustworthy (see confused).
func (m *Modbus) afterError(err error) {
	if err != nil && m.confused(err) {
		slog.Debug("modbus: closing the connection after an error", "url", m.set.url, "error", err)
		m.closeConn()
	}
}

// confused tells whether after err the byte stream can no longer be
// trusted, so that the connection must be closed and opened again. On a
// stream transport (TCP, TLS, RTU over TCP) a timeout may leave a late
// answer in flight, and garbage, a wrong transaction or unit id, or a
// broken socket all mean the two ends disagree. On a serial line a timeout
// is only a silent slave, and the library already flushes the line after a
// bad frame: only an I/O error (a port that went away) reopens it.
func (m *Modbus) confused(err error) bool {
	if isException(err) {
		return false
	}
	if m.set.scheme == "rtu" {
		return !errors.Is(err, mb.ErrRequestTimedOut) && !errors.Is(err, mb.ErrBadCRC) &&
			!errors.Is(err, mb.ErrShortFrame) && !errors.Is(err, mb.ErrProtocolError) &&
			!errors.Is(err, mb.ErrBadUnitId) && !isTimeout(err)
	}
	return true
}

// ensureOpen opens the connection unless it is open, backing off after
// failures so that an unreachable device does not stall every poll.
func (m *Modbus) ensureOpen(ctx context.Context) error {
	if m.open {
		return nil
	}
	if m.connFails > 0 && time.Now().Before(m.connRetryAt) {
		return fmt.Errorf("%w: %s (next attempt in %s)", errConnDown, m.set.url, time.Until(m.connRetryAt).Round(time.Millisecond))
	}
	if err := m.client.Open(); err != nil {
		m.connFails++
		if m.connRetry == nil || m.connFails == 1 {
			m.connRetry = backoff.New(backoff.Policy{Initial: m.tick, Max: m.set.maxBackoff})
		}
		m.connRetryAt = time.Now().Add(m.connRetry.Next())
		m.stats.add(func(s *stats) { s.connectErrors++; s.lastErr = err.Error(); s.lastConnFailed = true })
		if m.connFails == 1 {
			slog.Warn("modbus: cannot connect", "url", m.set.url, "error", err)
		}
		return fmt.Errorf("%w: %s: %v", errConnDown, m.set.url, err)
	}
	if m.connFails > 0 {
		slog.Info("modbus: connected again", "url", m.set.url, "after_failures", m.connFails)
	}
	m.open, m.connFails = true, 0
	m.stats.add(func(s *stats) { s.reconnects++; s.lastConnFailed = false })
	m.lastReq = time.Time{}
	if err := sleep(ctx, m.set.pauseAfterConnect); err != nil {
		return err
	}
	return nil
}

func (m *Modbus) closeConn() {
	if m.open && m.client != nil {
		_ = m.client.Close()
	}
	m.open = false
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Write sets points: coils with FC5 (FC15 with write_multiple), registers
// with FC6 for one register and FC16 for more (or always, with
// write_multiple). Values are encoded by type and byte order after undoing
// scale and offset; values the type cannot hold are refused. The core then
// asks for the device's read-back (see sdk.ReadBackDevices).
func (m *Modbus) Write(ctx context.Context, reqs []sdk.WriteRequest) ([]sdk.WriteResult, error) {
	res := make([]sdk.WriteResult, len(reqs))
	m.bus.Lock()
	defer m.bus.Unlock()
	for i, r := range reqs {
		full := r.Device + "." + r.Name
		d, ok := m.byName[r.Device]
		var p *point
		if ok {
			p = d.find(r.Name)
		}
		if p == nil {
			res[i].Error = fmt.Sprintf("point %s: no such point on this modbus input", full)
			continue
		}
		if !p.access.Subscribes() {
			res[i].Error = fmt.Sprintf("point %s is read-only (access=%s)", full, p.access)
			continue
		}
		err := m.writePoint(ctx, d, p, r.Value)
		m.stats.add(func(s *stats) {
			s.writes++
			if err != nil {
				s.wrErrs++
			}
		})
		if err != nil {
			res[i].Error = fmt.Sprintf("point %s: %v", full, err)
		}
	}
	return res, nil
}

func (m *Modbus) writePoint(ctx context.Context, d *device, p *point, v sdk.Value) error {
	retry := func(fn func(c busClient) error) error {
		var err error
		for attempt := 0; attempt <= m.set.retries; attempt++ {
			if err = m.do(ctx, d.unit, fn); err == nil || !retryable(err) || ctx.Err() != nil {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("writing %s %d on unit %d: %w", p.area, p.addr, d.unit, err)
		}
		return nil
	}
	addr := uint16(p.addr)
	switch {
	case p.area == areaCoil:
		b, err := toBool(v)
		if err != nil {
			return err
		}
		if m.set.writeMultiple {
			return retry(func(c busClient) error { return c.WriteCoils(addr, []bool{b}) })
		}
		return retry(func(c busClient) error { return c.WriteCoil(addr, b) })
	case p.typ == tBool && p.bit >= 0:
		// One bit of a register: read, change the bit, write back. Not
		// atomic against the device's own changes to the other bits.
		b, err := toBool(v)
		if err != nil {
			return err
		}
		var reg uint16
		if err := retry(func(c busClient) error {
			var e error
			reg, e = c.ReadRegister(addr, mb.HOLDING_REGISTER)
			return e
		}); err != nil {
			return err
		}
		if b {
			reg |= 1 << p.bit
		} else {
			reg &^= 1 << p.bit
		}
		return m.writeRegs(retry, addr, binary.BigEndian.AppendUint16(nil, reg))
	case p.typ.byteSized():
		// One byte of a register: the same read-modify-write, so that the
		// other byte (often another value) keeps what the device holds.
		// The value is checked first: a refused one costs no request.
		if err := p.putByte(make([]byte, 2), v); err != nil {
			return err
		}
		var wire []byte
		if err := retry(func(c busClient) error {
			var e error
			wire, e = c.ReadRawBytes(addr, 2, mb.HOLDING_REGISTER)
			return e
		}); err != nil {
			return err
		}
		if err := p.putByte(wire, v); err != nil {
			return err
		}
		return m.writeRegs(retry, addr, wire)
	}
	wire, err := p.encodeRegisters(v)
	if err != nil {
		return err
	}
	return m.writeRegs(retry, addr, wire)
}

func (m *Modbus) writeRegs(retry func(func(c busClient) error) error, addr uint16, wire []byte) error {
	if len(wire) == 2 && !m.set.writeMultiple {
		return retry(func(c busClient) error { return c.WriteRegister(addr, binary.BigEndian.Uint16(wire)) })
	}
	return retry(func(c busClient) error { return c.WriteRawBytes(addr, wire) })
}

// Health says whether the connection is up, counts requests, errors and
// reconnects for /metrics, and gives each slave's state: up when it
// answered its last read, down from the first read it did not answer
// (also while it is backed off) and before its first read.
func (m *Modbus) Health(context.Context) (sdk.Health, error) {
	m.stats.mu.Lock()
	defer m.stats.mu.Unlock()
	h := sdk.Health{OK: true, Counters: map[string]uint64{
		"requests": m.stats.requests, "request_errors": m.stats.requestErrors, "timeouts": m.stats.timeouts,
		"connects": m.stats.reconnects, "connect_errors": m.stats.connectErrors,
		"writes": m.stats.writes, "write_errors": m.stats.wrErrs,
	}}
	// Counters are kept apart from the bus lock, which a poll may hold for
	// a whole timeout: health answers at once. A connection closed after a
	// confused answer is reopened at the next request, so only a failed
	// attempt to connect makes the input unwell.
	if m.stats.lastConnFailed {
		h.OK, h.Reason = false, fmt.Sprintf("cannot connect to %s: %s", m.set.url, m.stats.lastErr)
	}
	for _, d := range m.devices {
		if len(d.polled) == 0 {
			continue // written only, never read: nothing to say
		}
		dh := d.health
		h.Devices = append(h.Devices, sdk.DeviceHealth{Name: d.name, Up: dh.up, LastError: dh.lastErr,
			LastErrorAt: dh.lastErrAt, LastGood: dh.lastGood, ReadErrors: dh.readErrors})
	}
	return h, nil
}

// index sorts the device's name index: 4 bytes a point where a map cost
// ~40, and a write is rare enough for a binary search.
func (d *device) index() {
	d.byName = make([]int32, len(d.points))
	for i := range d.byName {
		d.byName[i] = int32(i)
	}
	slices.SortFunc(d.byName, func(a, b int32) int { return strings.Compare(d.points[a].name, d.points[b].name) })
}

// find is the device's point of that name, or nil.
func (d *device) find(name string) *point {
	i, ok := slices.BinarySearchFunc(d.byName, name, func(x int32, name string) int { return strings.Compare(d.points[x].name, name) })
	if !ok {
		return nil
	}
	return &d.points[d.byName[i]]
}
