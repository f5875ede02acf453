// Package serial is the inputs.serial plugin: devices that speak their own
// protocol on an RS-232/RS-485 line (scales, meters, barcode readers).
// Either the device talks by itself (mode "stream") or the plugin sends a
// request every interval and reads the reply (mode "poll").
//
// Both modes are served by Stream: the core calls Stream whenever a plugin
// implements StreamingInput, and one goroutine that owns the port for
// both reading and writing is what keeps a poll's request and reply, a
// write from the server and a frame on its way in from stepping on each
// other. Poll mode schedules its own requests inside Stream.
package serial

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	bug "go.bug.st/serial"

	"github.com/edgepipe/edgepipe/internal/backoff"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

//go:embed sample.conf
var sampleConf string

func init() {
	sdk.Register(sdk.Registration{
		Kind:         sdk.KindInput,
		Name:         "serial",
		Description:  "Read (and write) devices with their own protocol on a serial line: streamed or polled frames, text or binary",
		SampleConfig: sampleConf,
		Factory:      func() sdk.Plugin { return &Serial{} },
	})
}

// Reopening a port that failed waits by the shared backoff policy, a
// random part of a ceiling of 100 ms doubling up to 5 s: a USB adapter that
// was pulled is found again within seconds of being plugged back, and a
// missing one costs an open() every few seconds, nothing more.
var reopenPolicy = backoff.Policy{Initial: 100 * time.Millisecond, Max: 5 * time.Second}

// Serial is the plugin instance.
type Serial struct {
	set     *settings
	writes  chan writeReq // Write hands its bytes to the running Stream
	running atomic.Int32  // Streams running (0 or 1 in practice)
	down    atomic.Pointer[string]
	c       counters

	hmu sync.Mutex
	dev devHealth // the device's state for Health, guarded by hmu
}

// devHealth is what Health says about the device (sdk.DeviceHealth). The
// device is up once it delivered a frame with values (stream mode) or
// answered a poll with at least one (poll mode), and down when a poll gets
// no valid reply, a streaming device is silent for two intervals, or the
// port cannot be opened or is lost. A streaming device without an interval
// cannot be told silent: it stays up until its port fails.
type devHealth struct {
	up                  bool
	lastErr             string
	lastErrAt, lastGood time.Time
	readErrors          uint64
}

// read records a read that gave values.
func (s *Serial) read(now time.Time) {
	s.hmu.Lock()
	s.dev.up, s.dev.lastGood = true, now
	s.hmu.Unlock()
}

// readFailed records a failure: up says whether the device is still known
// to be there (it sent something), count whether it is a failed read to
// add to the device's read errors (a reopen attempt of a poll-mode port is
// not: its polls are counted).
func (s *Serial) readFailed(now time.Time, up, count bool, msg string) {
	s.hmu.Lock()
	s.dev.up, s.dev.lastErr, s.dev.lastErrAt = up, msg, now
	if count {
		s.dev.readErrors++
	}
	s.hmu.Unlock()
}

var (
	_ sdk.StreamingInput = (*Serial)(nil)
	_ sdk.Writer         = (*Serial)(nil)
	_ sdk.HealthReporter = (*Serial)(nil)
)

// writeReq is bytes to send for the server, with the outcome channel.
type writeReq struct {
	data   []byte
	done   chan error // buffered, 1
	queued time.Time
}

// Init checks the configuration. It opens nothing: `edgepipe check`
// calls Init, and a missing port is not a configuration error.
func (s *Serial) Init(_ context.Context, req *sdk.InitRequest) (*sdk.InitResponse, error) {
	var cfg Config
	src, err := sdk.DecodeConfig(req, &cfg)
	if err != nil {
		return nil, err
	}
	set, errs := cfg.check(src)
	if len(errs) > 0 {
		return nil, errs
	}
	s.set, s.writes = set, make(chan writeReq)
	schemas := make([]sdk.PointSchema, 0, len(set.points))
	for _, p := range set.points {
		schemas = append(schemas, sdk.PointSchema{Device: set.device, Name: p.name, Type: p.typ.String(),
			Kind: p.kind(), Access: p.access, Unit: p.unit, Min: p.min, Max: p.max})
	}
	return &sdk.InitResponse{Points: schemas, Interval: set.interval}, nil
}

// Close has nothing to release: the port belongs to Stream, which closes
// it when its context ends.
func (s *Serial) Close(context.Context) error { return nil }

// Stream opens the port and runs until ctx ends, reopening the port with
// backoff whenever it fails. It returns nil only at the end of ctx: a lost
// port is this plugin's business, not a reason for the core to restart it.
func (s *Serial) Stream(ctx context.Context, emit func(*sdk.Frame)) error {
	if s.set == nil {
		return errors.New("serial: Stream before Init")
	}
	s.running.Add(1)
	defer s.running.Add(-1)
	r := &run{s: s, set: s.set, emit: emit, retry: backoff.New(reopenPolicy),
		fr: framer{delim: s.set.delim, length: s.set.length, gap: s.set.gap, start: s.set.start,
			timeout: s.set.timeout, c: &s.c},
		lastGood: make([]time.Time, len(s.set.read)), isBad: make([]bool, len(s.set.read))}
	defer r.closePort()
	r.loop(ctx)
	for _, w := range r.pending {
		w.done <- errors.New("the input is stopping")
	}
	return nil
}

// run is the state of one Stream call. Only its goroutine touches it.
type run struct {
	s    *Serial
	set  *settings
	emit func(*sdk.Frame)
	fr   framer

	port     bug.Port
	rd       *reader
	retry    *backoff.Backoff
	reopenAt time.Time // zero while the port is open
	gotData  bool      // the port delivered since it was opened

	tx       *transaction
	pending  []writeReq // writes waiting for the line to be free
	pollSoon bool       // a write asks for a read-back

	now      time.Time   // arrival time of the bytes being framed
	lastGood []time.Time // stream mode, per read point: last good value
	isBad    []bool      // stream mode: reported bad since its last good value
}

// transaction is one poll: the request is out, the reply awaited.
type transaction struct {
	deadline time.Time
	vals     []sdk.Value // per read point; invalid while not received
	missing  int
	readBack bool // the poll reads back a write: every processor passes it
}

func (r *run) loop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var pollC, staleC <-chan time.Time
	start := time.Now()
	for i := range r.lastGood {
		r.lastGood[i] = start
	}
	if r.set.poll {
		tk := time.NewTicker(r.set.interval)
		defer tk.Stop()
		pollC = tk.C
	} else if r.set.interval > 0 {
		tk := time.NewTicker(r.set.interval / 2)
		defer tk.Stop()
		staleC = tk.C
	}
	r.open(start)
	if r.set.poll {
		r.poll(time.Now())
	}
	for {
		if r.pollSoon && r.tx == nil && r.port != nil {
			r.pollSoon = false
			r.poll(time.Now())
			if r.tx != nil {
				r.tx.readBack = true // a streaming input marks its own (sdk.Batch.ReadBack)
			}
		}
		r.arm(timer)
		var chunks <-chan chunk
		var errc <-chan error
		if r.rd != nil {
			chunks, errc = r.rd.chunks, r.rd.errc
		}
		select {
		case <-ctx.Done():
			return
		case ch := <-chunks:
			r.onChunk(ch)
		case err := <-errc:
			r.lost(err)
		case <-timer.C:
			r.drain()
			r.onTimer(time.Now())
		case <-pollC:
			r.poll(time.Now())
		case now := <-staleC:
			r.checkStale(now)
		case w := <-r.s.writes:
			w.queued = time.Now()
			r.pending = append(r.pending, w)
			r.flush(w.queued)
		}
	}
}

// arm sets the timer to the earliest of: the framer's deadline (idle gap,
// unfinished frame), the poll's reply deadline, the port's reopen time,
// and the moment a waiting write stops waiting for the line.
func (r *run) arm(t *time.Timer) {
	var next time.Time
	consider := func(d time.Time) {
		if !d.IsZero() && (next.IsZero() || d.Before(next)) {
			next = d
		}
	}
	consider(r.fr.deadline())
	if r.tx != nil {
		consider(r.tx.deadline)
	}
	consider(r.reopenAt)
	if len(r.pending) > 0 && r.port != nil {
		consider(r.pending[0].queued.Add(r.set.timeout))
	}
	if next.IsZero() {
		t.Stop()
		return
	}
	t.Reset(max(time.Until(next), 0))
}

// drain feeds the chunks already read before a timer decision, so that
// a frame is not ended by silence while its next bytes wait in the channel.
func (r *run) drain() {
	for r.rd != nil {
		select {
		case ch := <-r.rd.chunks:
			r.onChunk(ch)
		default:
			return
		}
	}
}

func (r *run) onChunk(ch chunk) {
	if !r.gotData {
		r.gotData = true
		r.retry.Reset()
	}
	r.now = ch.at
	r.fr.feed(ch.b, ch.at, r.onFrame)
	r.flush(ch.at)
}

func (r *run) onTimer(now time.Time) {
	if r.port == nil && !r.reopenAt.IsZero() && !now.Before(r.reopenAt) {
		r.open(now)
	}
	r.now = now
	r.fr.expire(now, r.onFrame)
	if r.tx != nil && !now.Before(r.tx.deadline) {
		r.finish(now)
	}
	r.flush(now)
}

// onFrame decodes a complete frame. Frames that fail their checksum, are
// too short or match no point are counted and logged at debug level, and
// never reported.
func (r *run) onFrame(frame []byte) {
	c := &r.s.c
	payload, ok, short := r.set.checksum.verify(frame)
	switch {
	case short:
		c.short.Add(1)
		r.badFrame("frame shorter than its checksum")
		debugFrame("frame shorter than its checksum, dropped", r.set.device, frame)
		return
	case !ok:
		c.badChecksum.Add(1)
		r.badFrame("bad checksum")
		debugFrame("bad checksum, frame dropped", r.set.device, frame)
		return
	}
	ts := r.now.UnixMilli()
	var got []sdk.Point
	var idx []int
	tooShort := false
	for i, p := range r.set.read {
		v, err := p.decode(payload)
		switch {
		case err == nil:
			got = append(got, sdk.Point{Name: p.name, Value: v, Quality: sdk.QualityGood, TS: ts})
			idx = append(idx, i)
		case errors.Is(err, errTooShort):
			tooShort = true
		case errors.Is(err, errNoMatch):
		default:
			c.valueErrors.Add(1)
			if slog.Default().Enabled(context.Background(), slog.LevelDebug) {
				slog.Debug("serial: value does not convert", "device", r.set.device, "point", p.name, "error", err)
			}
		}
	}
	if len(got) == 0 {
		if tooShort {
			c.short.Add(1)
			debugFrame("frame too short for its points, dropped", r.set.device, frame)
		} else {
			c.unmatched.Add(1)
			debugFrame("frame matches no point, dropped", r.set.device, frame)
		}
		return
	}
	c.frames.Add(1)
	if r.set.poll {
		if r.tx == nil {
			c.unsolicited.Add(1)
			debugFrame("frame outside a poll, dropped", r.set.device, frame)
			return
		}
		for j, i := range idx {
			if !r.tx.vals[i].IsValid() {
				r.tx.missing--
			}
			r.tx.vals[i] = got[j].Value
		}
		if r.tx.missing == 0 {
			r.finish(r.now)
		}
		return
	}
	for _, i := range idx {
		r.lastGood[i], r.isBad[i] = r.now, false
	}
	r.s.read(r.now)
	r.emit(&sdk.Frame{Batches: []sdk.Batch{{Device: r.set.device, TS: ts, Points: got}}})
}

// badFrame counts a damaged frame against a streaming device (a polled
// one's is counted with the poll it spoiled). The device sent it: it stays
// as up as it was.
func (r *run) badFrame(what string) {
	if r.set.poll {
		return
	}
	r.s.hmu.Lock()
	up := r.s.dev.up
	r.s.hmu.Unlock()
	r.s.readFailed(r.now, up, true, what+", frame dropped")
}

func debugFrame(msg, device string, frame []byte) {
	if !slog.Default().Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	if len(frame) > 64 {
		frame = frame[:64]
	}
	slog.Debug("serial: "+msg, "device", device, "frame", fmt.Sprintf("%q", frame))
}

// poll sends the request and starts waiting for the reply. With the port
// down, the poll is reported at once with every point bad.
func (r *run) poll(now time.Time) {
	if len(r.set.read) == 0 || r.tx != nil {
		return // nothing to read, or the previous reply is still awaited
	}
	r.s.c.polls.Add(1)
	if r.port == nil {
		r.s.c.pollTimeouts.Add(1)
		msg := fmt.Sprintf("port %s is not open", r.set.port)
		if d := r.s.down.Load(); d != nil {
			msg = *d
		}
		r.s.readFailed(now, false, true, msg)
		r.reportBad(now, nil, "")
		return
	}
	// Whatever came before the request is not its reply.
	if r.fr.busy() {
		r.s.c.noiseBytes.Add(uint64(len(r.fr.buf)))
		r.fr.buf = r.fr.buf[:0]
	}
	req, _ := render(r.set.request, nil, sdk.Value{}, r.set.checksum) // checked at Init: no value placeholders
	if err := r.send(req); err != nil {
		r.s.c.pollTimeouts.Add(1)
		r.lost(err)
		r.reportBad(now, nil, "")
		return
	}
	r.tx = &transaction{deadline: now.Add(r.set.timeout), vals: make([]sdk.Value, len(r.set.read)),
		missing: len(r.set.read)}
}

// finish ends a poll: every point is reported, those without a value in
// the reply with quality bad. A reply still arriving is cut short.
func (r *run) finish(now time.Time) {
	tx := r.tx
	r.tx = nil
	r.fr.drop()
	ts := now.UnixMilli()
	pts := make([]sdk.Point, len(r.set.read))
	for i, p := range r.set.read {
		pts[i] = sdk.Point{Name: p.name, Value: tx.vals[i], Quality: sdk.QualityGood, TS: ts}
		if !tx.vals[i].IsValid() {
			pts[i].Quality = sdk.QualityBad
		}
	}
	switch n := len(r.set.read); {
	case r.port == nil:
		// Cut short by a lost port: lost recorded why.
	case tx.missing == 0:
		r.s.read(now)
	case tx.missing == n:
		r.s.readFailed(now, false, true, fmt.Sprintf("no valid reply within %s", r.set.timeout))
	default:
		r.s.read(now)
		r.s.readFailed(now, true, true, fmt.Sprintf("reply without %d of its %d points", tx.missing, n))
	}
	if tx.missing > 0 {
		r.s.c.pollTimeouts.Add(1)
		if slog.Default().Enabled(context.Background(), slog.LevelDebug) {
			slog.Debug("serial: no valid reply in time", "device", r.set.device, "points_missing", tx.missing)
		}
	}
	r.emit(&sdk.Frame{Batches: []sdk.Batch{{Device: r.set.device, TS: ts, Points: pts, ReadBack: tx.readBack}}})
}

// reportBad reports read points with quality bad: all of them (only nil),
// or in stream mode those not already reported bad since their last good
// value, so a dead line is reported once, not at every check.
//
// A non-empty stale is the reason (recorded for Health before the points
// are emitted) when points go bad because they had no fresh value.
func (r *run) reportBad(now time.Time, only func(i int) bool, stale string) {
	ts := now.UnixMilli()
	var pts []sdk.Point
	for i, p := range r.set.read {
		if !r.set.poll && (r.isBad[i] || only != nil && !only(i)) {
			continue
		}
		r.isBad[i] = true
		pts = append(pts, sdk.Point{Name: p.name, Quality: sdk.QualityBad, TS: ts})
	}
	if len(pts) > 0 {
		if stale != "" {
			// Down when no point has a fresh value: a device whose other
			// frames still come is there.
			up := false
			for _, bad := range r.isBad {
				up = up || !bad
			}
			r.s.readFailed(now, up, true, stale)
		}
		r.emit(&sdk.Frame{Batches: []sdk.Batch{{Device: r.set.device, TS: ts, Points: pts}}})
	}
}

// checkStale (stream mode with interval set) reports bad the points that
// had no value for two intervals: one late frame is tolerated, a silent
// device is not.
func (r *run) checkStale(now time.Time) {
	limit := 2 * r.set.interval
	r.reportBad(now, func(i int) bool { return now.Sub(r.lastGood[i]) > limit }, fmt.Sprintf("no frame for %s", limit))
}

// flush sends the waiting writes once the line is free: no poll awaiting
// its reply, and (stream mode) no frame half received, so the device is
// not talked over on a half-duplex RS-485 line. A write waits at most
// timeout for a streaming frame to end.
func (r *run) flush(now time.Time) {
	for len(r.pending) > 0 {
		w := r.pending[0]
		if r.port == nil {
			w.done <- fmt.Errorf("port %s is not open", r.set.port)
			r.pending = r.pending[1:]
			continue
		}
		if r.tx != nil || !r.set.poll && r.fr.busy() && now.Sub(w.queued) < r.set.timeout {
			return
		}
		r.pending = r.pending[1:]
		err := r.send(w.data)
		r.s.c.writes.Add(1)
		if err != nil {
			r.s.c.writeErrors.Add(1)
			w.done <- fmt.Errorf("writing to %s: %w", r.set.port, err)
			r.lost(err)
			continue
		}
		w.done <- nil
		if r.set.poll {
			r.pollSoon = true // read the new value back
		}
	}
}

func (r *run) send(b []byte) error {
	for len(b) > 0 {
		n, err := r.port.Write(b)
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		b = b[n:]
	}
	return nil
}

// open opens the port; on failure it schedules the next attempt.
func (r *run) open(now time.Time) {
	r.reopenAt = time.Time{}
	p, err := bug.Open(r.set.port, &r.set.mode)
	if err != nil {
		r.s.c.openErrors.Add(1)
		msg := fmt.Sprintf("cannot open %s: %v", r.set.port, err)
		r.s.readFailed(now, false, !r.set.poll, msg)
		r.retryLater(now)
		if prev := r.s.down.Swap(&msg); prev == nil || *prev != msg {
			slog.Warn("serial: cannot open the port, retrying", "device", r.set.device, "port", r.set.port,
				"error", err, "in", r.reopenAt.Sub(now))
		}
		if !r.set.poll {
			r.reportBad(now, nil, "")
		}
		return
	}
	if prev := r.s.down.Swap(nil); prev != nil {
		slog.Info("serial: port open again", "device", r.set.device, "port", r.set.port)
	}
	r.s.c.opens.Add(1)
	r.port, r.gotData = p, false
	r.rd = startReader(p)
}

func (r *run) retryLater(now time.Time) {
	r.reopenAt = now.Add(r.retry.Next())
}

// lost closes a port that failed (a pulled USB adapter reads EIO or end
// of file), reports what it leaves unread, and schedules the reopen.
func (r *run) lost(err error) {
	if r.port == nil {
		return
	}
	now := time.Now()
	r.s.c.portLost.Add(1)
	msg := fmt.Sprintf("port %s lost: %v", r.set.port, err)
	r.s.down.Store(&msg)
	// Recorded before the bad points go out; the poll it cuts short is
	// the failed read of a poll-mode device.
	r.s.readFailed(now, false, !r.set.poll || r.tx != nil, msg)
	slog.Warn("serial: port lost, reopening", "device", r.set.device, "port", r.set.port, "error", err)
	r.closePort()
	r.fr.drop()
	if r.tx != nil {
		r.finish(now)
	} else if !r.set.poll {
		r.reportBad(now, nil, "")
	}
	r.retryLater(now)
	r.flush(now)
}

func (r *run) closePort() {
	if r.port == nil {
		return
	}
	r.rd.stop(r.port)
	r.port, r.rd = nil, nil
}

// chunk is bytes as one read returned them, stamped on arrival.
type chunk struct {
	b  []byte
	at time.Time
}

// reader turns the blocking reads of a port into channel messages for the
// stream loop. Closing the port unblocks its Read.
type reader struct {
	chunks chan chunk
	errc   chan error
	quit   chan struct{}
	done   chan struct{}
}

func startReader(p bug.Port) *reader {
	rd := &reader{chunks: make(chan chunk, 16), errc: make(chan error, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(rd.done)
		for {
			buf := make([]byte, 256)
			n, err := p.Read(buf)
			if n > 0 {
				select {
				case rd.chunks <- chunk{b: buf[:n], at: time.Now()}:
				case <-rd.quit:
					return
				}
			}
			if err == nil && n == 0 {
				err = io.EOF
			}
			if err != nil {
				select {
				case rd.errc <- err:
				case <-rd.quit:
				}
				return
			}
		}
	}()
	return rd
}

// stop closes the port and waits for the read goroutine to end.
func (rd *reader) stop(p bug.Port) {
	close(rd.quit)
	_ = p.Close()
	<-rd.done
}

// Write sends each point's write template, rendered with the value, on
// the line the running Stream owns; a poll-mode input then reads the
// device back at once.
func (s *Serial) Write(ctx context.Context, reqs []sdk.WriteRequest) ([]sdk.WriteResult, error) {
	res := make([]sdk.WriteResult, len(reqs))
	for i, rq := range reqs {
		full := rq.Device + "." + rq.Name
		var p *point
		if s.set != nil && rq.Device == s.set.device {
			p = s.set.byName[rq.Name]
		}
		switch {
		case p == nil:
			res[i].Error = fmt.Sprintf("point %s: no such point on this serial input", full)
			continue
		case !p.access.Subscribes():
			res[i].Error = fmt.Sprintf("point %s is read-only (access=%s)", full, p.access)
			continue
		}
		data, err := render(p.write, p, rq.Value, s.set.checksum)
		if err != nil {
			res[i].Error = fmt.Sprintf("point %s: %v", full, err)
			continue
		}
		if err := s.send(ctx, data); err != nil {
			res[i].Error = fmt.Sprintf("point %s: %v", full, err)
		}
	}
	return res, nil
}

// send hands bytes to the stream loop and waits for them to be written.
func (s *Serial) send(ctx context.Context, data []byte) error {
	if s.running.Load() == 0 {
		return fmt.Errorf("port %s is not open (the input is not running)", s.set.port)
	}
	w := writeReq{data: data, done: make(chan error, 1)}
	// The loop takes a write within microseconds unless it is stopping.
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case s.writes <- w:
	case <-t.C:
		return fmt.Errorf("port %s is not open (the input is not running)", s.set.port)
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Health is unwell while the port cannot be opened or was lost, counts
// frames, errors and reconnects for /metrics, and gives the device's state
// (see devHealth).
func (s *Serial) Health(context.Context) (sdk.Health, error) {
	c := &s.c
	h := sdk.Health{OK: true, Counters: map[string]uint64{
		"frames": c.frames.Load(), "frames_unmatched": c.unmatched.Load(), "frames_bad_checksum": c.badChecksum.Load(),
		"frames_short": c.short.Load(), "frames_too_long": c.tooLong.Load(), "frames_unsolicited": c.unsolicited.Load(),
		"noise_bytes": c.noiseBytes.Load(), "value_errors": c.valueErrors.Load(),
		"polls": c.polls.Load(), "poll_timeouts": c.pollTimeouts.Load(),
		"writes": c.writes.Load(), "write_errors": c.writeErrors.Load(),
		"opens": c.opens.Load(), "open_errors": c.openErrors.Load(), "port_lost": c.portLost.Load(),
	}}
	if d := s.down.Load(); d != nil {
		h.OK, h.Reason = false, *d
	}
	if s.set != nil && len(s.set.read) > 0 {
		s.hmu.Lock()
		dh := s.dev
		s.hmu.Unlock()
		h.Devices = []sdk.DeviceHealth{{Name: s.set.device, Up: dh.up, LastError: dh.lastErr,
			LastErrorAt: dh.lastErrAt, LastGood: dh.lastGood, ReadErrors: dh.readErrors}}
	}
	return h, nil
}
