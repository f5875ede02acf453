package opcua_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/internal/testopcua"
	"github.com/edgepipe/edgepipe/plugins/inputs/opcua"
	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

func factory() sdk.Plugin { return &opcua.OPCUA{} }

// server is node-opcua running internal/testopcua's server.js.
type server = testopcua.Server

func freePort() (int, error) { return testopcua.FreePort() }

// startServer starts a server for one test alone (one it kills or
// changes); it is killed at test end.
func startServer(t testing.TB, env ...string) *server { return testopcua.Start(t, env...) }

// The tests that leave the server as they found it share one server
// (started on first use, killed by TestMain): starting node-opcua takes
// seconds.
var shared struct {
	once sync.Once
	s    *server
	err  error
}

func sharedServer(t testing.TB) *server {
	t.Helper()
	mod := testopcua.Module(t)
	shared.once.Do(func() { shared.s, shared.err = testopcua.Launch(mod, "OPCUA_USER=operator", "OPCUA_PASSWORD=s3cret") })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.s
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.s != nil {
		shared.s.Kill()
	}
	os.Exit(code)
}

// streamer runs a plugin's Stream and collects its batches.
type streamer struct {
	mu      sync.Mutex
	batches []sdk.Batch
	notify  chan struct{}
	cancel  context.CancelFunc
	done    chan error
}

func stream(t *testing.T, p sdk.Plugin) *streamer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &streamer{notify: make(chan struct{}, 1), cancel: cancel, done: make(chan error, 1)}
	go func() {
		r.done <- p.(sdk.StreamingInput).Stream(ctx, func(f *sdk.Frame) {
			r.mu.Lock()
			r.batches = append(r.batches, f.Batches...)
			r.mu.Unlock()
			select {
			case r.notify <- struct{}{}:
			default:
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(20 * time.Second):
			t.Error("Stream did not return after its context ended")
		}
	})
	return r
}

// waitFor waits (generously) for a batch, among those from position from
// on, that satisfies cond, and returns it with the position after it.
func (r *streamer) waitFor(t *testing.T, from int, what string, cond func(b sdk.Batch) bool) (sdk.Batch, int) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		r.mu.Lock()
		for i := from; i < len(r.batches); i++ {
			if cond(r.batches[i]) {
				b := r.batches[i]
				r.mu.Unlock()
				return b, i + 1
			}
		}
		from = len(r.batches)
		r.mu.Unlock()
		select {
		case <-r.notify:
		case <-deadline:
			r.mu.Lock()
			n := len(r.batches)
			var last sdk.Batch
			if n > 0 {
				last = r.batches[n-1]
			}
			r.mu.Unlock()
			t.Fatalf("no batch with %s within 60 s (%d batches; last %+v)", what, n, last)
		}
	}
}

func byName(b sdk.Batch) map[string]sdk.Point {
	m := map[string]sdk.Point{}
	for _, p := range b.Points {
		m[p.Name] = p
	}
	return m
}

// allGood reports a batch of want points, all good.
func allGood(want int) func(b sdk.Batch) bool {
	return func(b sdk.Batch) bool {
		if len(b.Points) != want {
			return false
		}
		for _, p := range b.Points {
			if p.Quality != sdk.QualityGood {
				return false
			}
		}
		return true
	}
}

// pointIs matches a batch where the named point has quality q.
func pointIs(name string, q sdk.Quality) func(b sdk.Batch) bool {
	return func(b sdk.Batch) bool {
		p, ok := byName(b)[name]
		return ok && p.Quality == q
	}
}

func initReq(t *testing.T, p sdk.Plugin, conf string, dataDir string) *sdk.InitResponse {
	t.Helper()
	req := sdktest.Request(conf)
	req.Agent.DataDir = dataDir
	req.Alias = "inputs.opcua#1"
	resp, err := p.Init(context.Background(), req)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	return resp
}
