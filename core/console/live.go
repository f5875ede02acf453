package console

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// streamBuffer is how many events a live-points client may fall behind
// before it is dropped: the pipeline never waits for a slow browser.
const streamBuffer = 64

// alarmHistory is how many alarm events the console remembers.
const alarmHistory = 500

// Live is the console's view of what flows through the pipeline: the
// latest value of every point, each device's last read, the alarms raised
// and their recent history. The agent feeds it as its Observer; the API
// reads it. Feeding it costs a map update per point and, only while
// someone watches the stream, one JSON encoding per batch.
type Live struct {
	mu      sync.Mutex
	points  map[string]*latest // "device.point"
	key     []byte             // ObservePoints' key buffer
	devices map[string]*deviceRead
	raised  map[string]sdk.Alarm // rule -> its raise (State "acked" once acknowledged)
	history []sdk.Alarm          // ring
	next    int

	subMu   sync.Mutex
	subs    map[*subscriber]struct{}
	nsubs   atomic.Int32
	dropped atomic.Uint64
}

type latest struct {
	value   sdk.Value
	quality sdk.Quality
	ts      int64
}

type deviceRead struct {
	ts        int64 // last batch
	good, bad int   // points of that batch by quality (uncertain counts as good)
}

type subscriber struct {
	ch     chan []byte
	closed bool
}

// NewLive returns an empty table.
func NewLive() *Live {
	return &Live{points: map[string]*latest{}, devices: map[string]*deviceRead{}, raised: map[string]sdk.Alarm{},
		subs: map[*subscriber]struct{}{}}
}

// ObservePoints records the batches an input read (agent.Observer).
func (l *Live) ObservePoints(batches []sdk.Batch) {
	watched := l.nsubs.Load() > 0
	var ev []byte
	if watched {
		n := 0
		for i := range batches {
			n += len(batches[i].Points)
		}
		ev = make([]byte, 0, 64+80*n)
		ev = append(ev, "event: points\ndata: {\"points\":["...)
	}
	first := true
	l.mu.Lock()
	for i := range batches {
		b := &batches[i]
		d := l.devices[b.Device]
		if d == nil {
			d = &deviceRead{}
			l.devices[b.Device] = d
		}
		d.ts, d.good, d.bad = b.TS, 0, 0
		for j := range b.Points {
			p := &b.Points[j]
			if p.Quality == sdk.QualityBad {
				d.bad++
			} else {
				d.good++
			}
			// The key is built in a reused buffer: a lookup by string(bytes)
			// does not allocate, only a point seen for the first time does.
			l.key = append(append(append(l.key[:0], b.Device...), '.'), p.Name...)
			e := l.points[string(l.key)]
			if e == nil {
				e = &latest{}
				l.points[string(l.key)] = e
			}
			if p.Quality != sdk.QualityBad || !e.value.IsValid() || p.Value.IsValid() {
				e.value = p.Value
			}
			e.quality, e.ts = p.Quality, p.TS
			if watched {
				if !first {
					ev = append(ev, ',')
				}
				first = false
				ev = appendPoint(ev, l.key, e)
			}
		}
	}
	l.mu.Unlock()
	if watched && !first {
		l.publish(append(ev, "]}\n\n"...))
	}
}

// appendPoint writes {"name":..,"value":..,"q":..,"ts":..}.
func appendPoint(b, name []byte, e *latest) []byte {
	b = append(b, `{"name":`...)
	b = sdk.AppendJSONString(b, string(name))
	b = append(b, `,"value":`...)
	b = e.value.AppendJSON(b)
	b = append(b, `,"q":"`...)
	b = append(b, e.quality.String()...)
	b = append(b, `","ts":`...)
	return append(sdk.Int(e.ts).AppendJSON(b), '}')
}

// ObserveAlarms records alarm events (agent.Observer).
func (l *Live) ObserveAlarms(alarms []sdk.Alarm) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range alarms {
		if len(l.history) < alarmHistory {
			l.history = append(l.history, a)
		} else {
			l.history[l.next] = a
		}
		l.next = (l.next + 1) % alarmHistory
		switch a.State {
		case "raised":
			l.raised[a.Rule] = a
		case "cleared":
			delete(l.raised, a.Rule)
		case "acked":
			if r, ok := l.raised[a.Rule]; ok {
				r.State = "acked"
				l.raised[a.Rule] = r
			}
		}
	}
}

// Latest is a point's last reading; ok false when it was never read.
func (l *Live) Latest(name string) (v sdk.Value, q sdk.Quality, ts int64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.points[name]
	if e == nil {
		return v, q, 0, false
	}
	return e.value, e.quality, e.ts, true
}

// device is a device's last read; ok false when it was never read.
func (l *Live) device(name string) (deviceRead, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.devices[name]
	if d == nil {
		return deviceRead{}, false
	}
	return *d, true
}

// Alarms returns the raised alarms (acknowledged ones with State "acked")
// and the history, oldest first.
func (l *Live) Alarms() (raised, history []sdk.Alarm) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range l.raised {
		raised = append(raised, a)
	}
	if len(l.history) < alarmHistory {
		history = append(history, l.history...)
	} else {
		history = append(append(history, l.history[l.next:]...), l.history[:l.next]...)
	}
	return raised, history
}

// subscribe adds a stream client; its channel is closed when it is
// dropped for falling behind or unsubscribed.
func (l *Live) subscribe() *subscriber {
	s := &subscriber{ch: make(chan []byte, streamBuffer)}
	l.subMu.Lock()
	l.subs[s] = struct{}{}
	l.nsubs.Store(int32(len(l.subs)))
	l.subMu.Unlock()
	return s
}

func (l *Live) unsubscribe(s *subscriber) {
	l.subMu.Lock()
	l.dropLocked(s)
	l.subMu.Unlock()
}

func (l *Live) dropLocked(s *subscriber) {
	if _, ok := l.subs[s]; !ok {
		return
	}
	delete(l.subs, s)
	l.nsubs.Store(int32(len(l.subs)))
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
}

// publish hands an event to every client without waiting: a client whose
// buffer is full is dropped (its browser reconnects and gets a snapshot).
func (l *Live) publish(ev []byte) {
	l.subMu.Lock()
	defer l.subMu.Unlock()
	for s := range l.subs {
		select {
		case s.ch <- ev:
		default:
			l.dropped.Add(1)
			l.dropLocked(s)
		}
	}
}

// StreamStats is how many clients watch the live points, and how many
// were dropped for falling behind.
func (l *Live) StreamStats() (clients int, dropped uint64) {
	return int(l.nsubs.Load()), l.dropped.Load()
}

// age is how long ago a reading in ms was taken.
func age(now time.Time, ts int64) int64 {
	if ts == 0 {
		return 0
	}
	return max(0, now.UnixMilli()-ts)
}
