package console

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	name string
	data []byte
}

// readEvents reads a stream's events into a channel until it ends.
func readEvents(t *testing.T, resp *http.Response) <-chan sseEvent {
	ch := make(chan sseEvent, 1024)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = append(ev.data, strings.TrimPrefix(line, "data: ")...)
			}
		}
	}()
	return ch
}

// The live stream from a real HTTP client against a running pipeline: a
// snapshot first, then the values as they are polled.
func TestPointStreamCarriesLiveValues(t *testing.T) {
	g := startGateway(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", g.url+"/api/v1/points/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := readEvents(t, resp)
	next := func() sseEvent {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("stream ended")
			}
			return ev
		case <-time.After(20 * time.Second):
			t.Fatal("no event")
		}
		return sseEvent{}
	}
	snap := next()
	var doc struct {
		Points []struct {
			Name  string
			Value any
			Q     *string
		}
	}
	if snap.name != "snapshot" || json.Unmarshal(snap.data, &doc) != nil || len(doc.Points) != 3 {
		t.Fatalf("first event %s %s", snap.name, snap.data)
	}
	// The counter goes up event after event.
	var seen []float64
	for len(seen) < 3 {
		ev := next()
		var upd struct {
			Points []struct {
				Name  string
				Value float64
				Q     string
				TS    int64
			}
		}
		if ev.name != "points" || json.Unmarshal(ev.data, &upd) != nil || len(upd.Points) == 0 {
			t.Fatalf("event %s %s", ev.name, ev.data)
		}
		for _, p := range upd.Points {
			if p.Name == "ro.p0" {
				if p.Q != "good" || p.TS == 0 {
					t.Fatalf("point %+v", p)
				}
				seen = append(seen, p.Value)
			}
		}
	}
	if !(seen[0] < seen[1] && seen[1] < seen[2]) {
		t.Fatalf("counter values %v", seen)
	}
	if clients, _ := g.c.opts.Live.StreamStats(); clients != 1 {
		t.Fatalf("clients %d", clients)
	}
	cancel()
	waitFor(t, "the client to go", func() bool { c, _ := g.c.opts.Live.StreamStats(); return c == 0 })
}

// A client that does not read is dropped once its buffer is full; the
// pipeline's calls never wait for it, and the others keep their events.
func TestSlowStreamClientDroppedPipelineNotBlocked(t *testing.T) {
	l := NewLive()
	slow, fast := l.subscribe(), l.subscribe()
	batch := []sdk.Batch{{Device: "d", TS: 1, Points: []sdk.Point{{Name: "p", Value: sdk.Int(1), TS: 1}}}}
	got := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range fast.ch {
			got++
		}
	}()
	for i := 0; i < 10*streamBuffer; i++ {
		l.ObservePoints(batch) // returns although slow never reads
	}
	// slow's channel was closed after its buffer filled: drain it to its end.
	n := 0
	for range slow.ch {
		n++
	}
	if n != streamBuffer {
		t.Fatalf("slow client got %d events before being dropped, want %d", n, streamBuffer)
	}
	if clients, dropped := l.StreamStats(); dropped < 1 || clients > 1 {
		t.Fatalf("clients %d dropped %d", clients, dropped)
	}
	l.unsubscribe(fast)
	<-done
	if got == 0 {
		t.Fatal("the reading client got nothing")
	}
	if v, _, _, ok := l.Latest("d.p"); !ok || v.IntValue() != 1 {
		t.Fatal("latest value not kept")
	}
}

// A stream ends when the server closes, rather than holding Close.
func TestStreamEndsOnClose(t *testing.T) {
	g := startGateway(t, "")
	resp, err := http.Get(g.url + "/api/v1/points/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := readEvents(t, resp)
	<-events
	done := make(chan struct{})
	go func() {
		g.mon.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Close waited for the stream")
	}
	for range events {
	}
}
