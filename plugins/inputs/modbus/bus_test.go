package modbus_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
	"github.com/edgepipe/edgepipe/sim/modbussim"
)

func twoUnits() *modbussim.Config {
	u := func(id uint8, v int64) modbussim.UnitConfig {
		return modbussim.UnitConfig{ID: id, Registers: []modbussim.RegisterConfig{{Area: "holding", Address: 0, Type: "int16", Value: v}}}
	}
	return &modbussim.Config{Units: []modbussim.UnitConfig{u(1, 11), u(2, 22)}}
}

// TestDeadSlave: on one bus, a slave that stops answering goes bad within
// timeout x (retries+1), the other keeps its poll rate, and the dead one is
// read again after it comes back, without a restart.
func TestDeadSlave(t *testing.T) {
	for _, listen := range []string{"rtu://pty", "tcp://127.0.0.1:0"} {
		t.Run(strings.Split(listen, ":")[0], func(t *testing.T) {
			s := startSim(t, listen, twoUnits())
			const (
				interval = 100 * time.Millisecond
				timeout  = 100 * time.Millisecond
				retries  = 2
			)
			conf := fmt.Sprintf(`url = %q
baud_rate = 115200
interval = "100ms"
timeout = "100ms"
retries = %d
max_backoff = "1s"
[[devices]]
name = "live"
unit_id = 1
[[devices.points]]
name = "v"
area = "holding"
address = 0
type = "int16"
[[devices]]
name = "dead"
unit_id = 2
[[devices.points]]
name = "v"
area = "holding"
address = 0
type = "int16"
`, s.Addr(), retries)
			sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
				if resp := sdktest.Init(t, p, conf); resp.Interval != interval {
					t.Fatalf("interval %v", resp.Interval)
				}
				// poll runs Gather on the interval as the core's scheduler
				// does (never overlapping) and returns per-device results.
				type result struct {
					at   time.Time
					good bool
				}
				// calls counts the Gathers of the latest poll: on a loaded
				// machine the loop itself falls behind its ticker, so rates
				// are judged against the Gathers made, not the clock.
				calls := 0
				poll := func(d time.Duration, stop func(map[string][]result) bool) map[string][]result {
					out := map[string][]result{}
					calls = 0
					tk := time.NewTicker(interval)
					defer tk.Stop()
					end := time.Now().Add(d)
					for time.Now().Before(end) {
						f := gather(t, p)
						calls++
						for _, b := range f.Batches {
							out[b.Device] = append(out[b.Device], result{time.Now(), b.Points[0].Quality == sdk.QualityGood})
						}
						if stop != nil && stop(out) {
							return out
						}
						<-tk.C
					}
					return out
				}
				r := poll(300*time.Millisecond, nil)
				if len(r["dead"]) == 0 || !r["dead"][len(r["dead"])-1].good || !r["live"][len(r["live"])-1].good {
					t.Fatalf("both slaves should answer at first: %+v", r)
				}

				s.SetOffline(2, true)
				start := time.Now()
				f := gather(t, p)
				took := time.Since(start)
				got := map[string]sdk.Point{}
				for _, b := range f.Batches {
					got[b.Device] = b.Points[0]
				}
				if got["dead"].Quality != sdk.QualityBad || got["dead"].Value.IsValid() {
					t.Fatalf("dead slave's point: %+v", got["dead"])
				}
				if limit := timeout*(retries+1) + interval; took > limit {
					t.Errorf("the first failing poll took %v, more than timeout x (retries+1) + slack = %v", took, limit)
				}

				// While it stays dead, the live slave keeps its rate, and the
				// dead one is reported bad on its own interval while being
				// tried less often.
				before := s.Requests(2)
				// Waits are random (full jitter), so the bound is
				// statistical: over 3 s with a 1 s ceiling the dead slave
				// is asked about 6 times, and 15 would need a run of
				// near-zero waits with odds below one in a million.
				window := 3 * time.Second
				r = poll(window, nil)
				probes := s.Requests(2) - before
				want := int(window / interval)
				if n := len(r["live"]); n < calls*2/3 {
					t.Errorf("live slave polled %d times in %d Gathers over %v, want about %d", n, calls, window, calls)
				}
				for _, x := range r["live"] {
					if !x.good {
						t.Errorf("live slave went bad at %v", x.at)
					}
				}
				for _, x := range r["dead"] {
					if x.good {
						t.Errorf("dead slave reported good")
					}
				}
				if len(r["dead"]) < calls/2 {
					t.Errorf("dead slave's bad points reported %d times in %d Gathers, want about %d", len(r["dead"]), calls, calls)
				}
				if int(probes) >= want/2 {
					t.Errorf("dead slave asked %d times in %v: not backed off", probes, window)
				}
				t.Logf("dead slave asked %d times in %v (live: %d polls)", probes, window, len(r["live"]))

				s.SetOffline(2, false)
				back := time.Now()
				r = poll(3*time.Second, func(r map[string][]result) bool {
					d := r["dead"]
					return len(d) > 0 && d[len(d)-1].good
				})
				if d := r["dead"]; len(d) == 0 || !d[len(d)-1].good {
					t.Fatalf("slave not read again after it came back")
				}
				t.Logf("back after %v", time.Since(back))
			})
		})
	}
}

// flakyProxy forwards Modbus TCP to the simulator, except that the first
// connection misbehaves once: it answers the first request with garbage
// (or swallows it), so the client must drop that connection and open a
// new one.
type flakyProxy struct {
	l     net.Listener
	conns atomic.Int32
	mode  string // "garbage" | "silent" | "wrongtid"
	wg    sync.WaitGroup
	mu    sync.Mutex
	open  []net.Conn
}

func (p *flakyProxy) track(c net.Conn) {
	p.mu.Lock()
	p.open = append(p.open, c)
	p.mu.Unlock()
}

func newFlakyProxy(t *testing.T, target, mode string) *flakyProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &flakyProxy{l: l, mode: mode}
	t.Cleanup(func() {
		l.Close()
		p.mu.Lock()
		for _, c := range p.open {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n := p.conns.Add(1)
			p.track(c)
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer c.Close()
				if n == 1 {
					hdr := make([]byte, 12) // an FC3 request: MBAP header and PDU
					if strings.HasPrefix(p.mode, "rtu-") {
						hdr = hdr[:8] // unit id, PDU, CRC
					}
					if _, err := io.ReadFull(c, hdr); err != nil {
						return
					}
					switch p.mode {
					case "garbage": // an MBAP header with length 0
						c.Write([]byte{0x13, 0x37, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF})
					case "wrongtid": // a well-formed answer to another transaction, then nothing
						c.Write([]byte{hdr[0] ^ 0xFF, hdr[1], 0, 0, 0, 5, hdr[6], 3, 2, 0, 99})
					case "rtu-garbage": // bytes that are no answer (a bad CRC)
						c.Write([]byte{hdr[0], 3, 2, 0, 99, 0xDE, 0xAD})
					case "rtu-wrongunit": // a well-formed answer from unit 9 (CRC 0xAC19)
						c.Write([]byte{9, 3, 2, 0, 99, 0x19, 0xAC})
					}
					io.Copy(io.Discard, c)
					return
				}
				_, hostport, _ := strings.Cut(target, "://")
				up, err := net.Dial("tcp", hostport)
				if err != nil {
					return
				}
				defer up.Close()
				p.track(up)
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
	return p
}

// TestConfusedConnection: garbage, a wrong transaction id (a wrong unit id
// for RTU over TCP) or silence on a TCP connection closes it; the retry
// opens a new one and reads the value in the same poll.
func TestConfusedConnection(t *testing.T) {
	tcp := startSim(t, "tcp://127.0.0.1:0", twoUnits())
	rtu := startSim(t, "rtuovertcp://127.0.0.1:0", twoUnits())
	for _, mode := range []string{"garbage", "wrongtid", "silent", "rtu-garbage", "rtu-wrongunit", "rtu-silent"} {
		t.Run(mode, func(t *testing.T) {
			s, scheme := tcp, "tcp"
			if strings.HasPrefix(mode, "rtu-") {
				s, scheme = rtu, "rtuovertcp"
			}
			sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
				px := newFlakyProxy(t, s.Addr(), mode)
				sdktest.Init(t, p, fmt.Sprintf(`url = "%s://%s"
timeout = "200ms"
retries = 1
[[devices]]
name = "d"
[[devices.points]]
name = "v"
area = "holding"
address = 0
type = "int16"
`, scheme, px.l.Addr()))
				f := gather(t, p)
				pt := f.Batches[0].Points[0]
				if pt.Quality != sdk.QualityGood || !pt.Value.Equal(sdk.Int(11)) {
					t.Fatalf("after a %s answer the retry should read 11: %#v %s", mode, pt.Value, pt.Quality)
				}
				if n := px.conns.Load(); n != 2 {
					t.Fatalf("%d connections, want 2 (the confused one closed, a new one opened)", n)
				}
				if h, err := p.(sdk.HealthReporter).Health(context.Background()); err != nil || !h.OK || h.Counters["connects"] != 2 || h.Counters["request_errors"] != 1 {
					t.Fatalf("health %+v %v", h, err)
				}
			})
		})
	}
}

// TestSimulatorRestart: a device that goes away gives bad points and an
// unwell health; once it is back, the next polls read it again.
func TestSimulatorRestart(t *testing.T) {
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		s := startSim(t, "tcp://127.0.0.1:0", twoUnits())
		addr := s.Addr()
		sdktest.Init(t, p, fmt.Sprintf(`url = %q
interval = "50ms"
timeout = "200ms"
retries = 0
max_backoff = "100ms"
[[devices]]
name = "d"
[[devices.points]]
name = "v"
area = "holding"
address = 0
type = "int16"
`, addr))
		if pt := gather(t, p).Batches[0].Points[0]; pt.Quality != sdk.QualityGood {
			t.Fatalf("first poll: %+v", pt)
		}
		s.Close()
		deadline := time.Now().Add(3 * time.Second)
		for {
			f := gather(t, p)
			if len(f.Batches) == 1 && f.Batches[0].Points[0].Quality == sdk.QualityBad {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("points did not go bad with the device gone")
			}
			time.Sleep(10 * time.Millisecond) // pacing like the scheduler; the condition is polled
		}
		var h sdk.Health
		for h.OK = true; h.OK && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			gather(t, p)
			h, _ = p.(sdk.HealthReporter).Health(context.Background())
		}
		if h.OK || !strings.Contains(h.Reason, "cannot connect") {
			t.Fatalf("health with the device gone: %+v", h)
		}
		s2 := startSim(t, addr, twoUnits())
		_ = s2
		for {
			f := gather(t, p)
			if len(f.Batches) == 1 && f.Batches[0].Points[0].Quality == sdk.QualityGood {
				break
			}
			if time.Now().After(deadline.Add(2 * time.Second)) {
				t.Fatal("not read again after the device came back")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if h, _ := p.(sdk.HealthReporter).Health(context.Background()); !h.OK {
			t.Fatalf("health after reconnect: %+v", h)
		}
	})
}

// TestHoleInRegisterMap: a merged read refused with exception 2 is split
// per point in the same poll; the point that exists reads good, the one
// past the device's map bad, and later polls use the split plan.
func TestHoleInRegisterMap(t *testing.T) {
	s := startSim(t, "tcp://127.0.0.1:0", &modbussim.Config{Units: []modbussim.UnitConfig{{ID: 1, Size: 10,
		Registers: []modbussim.RegisterConfig{{Area: "holding", Address: 8, Type: "int16", Value: int64(-8)}}}}})
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		sdktest.Init(t, p, fmt.Sprintf(`url = %q
interval = "10ms"
[[devices]]
name = "d"
[[devices.points]]
name = "ok"
area = "holding"
address = 8
type = "int16"
[[devices.points]]
name = "missing"
area = "holding"
address = 12
`, s.Addr()))
		before := s.Requests(1)
		got := byName(gather(t, p).Batches[0])
		if got["ok"].Quality != sdk.QualityGood || !got["ok"].Value.Equal(sdk.Int(-8)) || got["missing"].Quality != sdk.QualityBad {
			t.Fatalf("after split: %+v", got)
		}
		if n := s.Requests(1) - before; n != 3 {
			t.Fatalf("%d requests, want 3 (merged read, then one per point)", n)
		}
		time.Sleep(10 * time.Millisecond) // let the device's 10 ms interval come round
		before = s.Requests(1)
		gather(t, p)
		if n := s.Requests(1) - before; n != 2 {
			t.Fatalf("next poll: %d requests, want 2", n)
		}
	})
}
