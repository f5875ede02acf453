package console

import (
	"fmt"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// thousandPoints is one poll of 1,000 points.
func thousandPoints() []sdk.Batch {
	b := sdk.Batch{Device: "plc1", TS: time.Now().UnixMilli()}
	for i := range 1000 {
		b.Points = append(b.Points, sdk.Point{Name: fmt.Sprintf("p%d", i), Value: sdk.Float(float64(i) + 0.5), TS: b.TS})
	}
	return []sdk.Batch{b}
}

// The pipeline's cost of feeding the console: per point, with no one
// watching and with 10 stream clients that keep up.
func BenchmarkObservePoints(b *testing.B) {
	for _, watchers := range []int{0, 10} {
		b.Run(fmt.Sprintf("watchers=%d", watchers), func(b *testing.B) {
			l := NewLive()
			batches := thousandPoints()
			var subs []*subscriber
			for range watchers {
				s := l.subscribe()
				subs = append(subs, s)
				go func() {
					for range s.ch {
					}
				}()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				l.ObservePoints(batches)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/point")
			for _, s := range subs {
				l.unsubscribe(s)
			}
		})
	}
}

// The whole path over HTTP: 10 clients read the SSE stream of 1,000
// points while the table is fed; per point fed, all 10 streams written.
func BenchmarkStreamTenClients(b *testing.B) {
	c := New(Options{Agent: fakeAgent{}})
	srv := &http.Server{Handler: c}
	ln, err := netListen()
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	for range 10 {
		resp, err := http.Get("http://" + ln.Addr().String() + "/api/v1/points/stream")
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		go io.Copy(io.Discard, resp.Body)
	}
	for c.opts.Live.nsubs.Load() < 10 {
		time.Sleep(time.Millisecond)
	}
	batches := thousandPoints()
	cpu0 := processCPU()
	b.ResetTimer()
	for range b.N {
		c.opts.Live.ObservePoints(batches)
		time.Sleep(time.Millisecond) // a poll interval, so that clients keep up
	}
	b.StopTimer()
	// The process's CPU time (feeding, encoding, ten HTTP writers) per point fed.
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N)/1000, "cpu-ns/point")
	_, dropped := c.opts.Live.StreamStats()
	b.ReportMetric(float64(dropped), "dropped")
}

// processCPU is the user and system CPU time of the process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
