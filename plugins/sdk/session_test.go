package sdk_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/grpcplugin"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// gate is a processor whose calls the test steps through: each Process
// reports its context on started and returns the frame it is given on
// release (or its context's error, when it honours the context).
type gate struct {
	started chan context.Context
	release chan *sdk.Frame
	honour  bool
}

func newGate(honour bool) *gate {
	return &gate{started: make(chan context.Context, 4), release: make(chan *sdk.Frame, 4), honour: honour}
}

func (g *gate) Init(context.Context, *sdk.InitRequest) (*sdk.InitResponse, error) {
	return &sdk.InitResponse{}, nil
}
func (g *gate) Close(context.Context) error { return nil }
func (g *gate) Process(ctx context.Context, _ *sdk.Frame) (*sdk.Frame, error) {
	g.started <- ctx
	if g.honour {
		select {
		case f := <-g.release:
			return f, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return <-g.release, nil
}

func frameOf(device string) *sdk.Frame {
	return &sdk.Frame{Batches: []sdk.Batch{{Device: device, TS: 1, Points: []sdk.Point{{Name: "p", Value: sdk.Int(1), TS: 1}}}}}
}

func wait[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatal("timed out")
		panic("unreachable")
	}
}

// connector connects a host to a plugin in this process.
type connector func(testing.TB, sdk.Plugin) grpcplugin.Client

// forEachSession runs test with the session on its socket and on gRPC's
// stream (a host or plugin of an SDK without the socket).
func forEachSession(t *testing.T, test func(*testing.T, connector)) {
	t.Run("socket", func(t *testing.T) { test(t, sdktest.Connect) })
	t.Run("grpc", func(t *testing.T) { test(t, sdktest.ConnectGRPCSession) })
}

// A caller that gives up cancels the call in the plugin, and its deadline
// is the plugin's, as with a unary call.
func TestCallCancelAndDeadlineReachThePlugin(t *testing.T) {
	forEachSession(t, func(t *testing.T, connect connector) {
		g := newGate(true)
		c := connect(t, g)
		sdktest.Init(t, c, "")

		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		errc := make(chan error, 1)
		go func() { _, err := c.Process(ctx, frameOf("a")); errc <- err }()
		pctx := wait(t, g.started)
		if d, ok := pctx.Deadline(); !ok || time.Until(d) < 50*time.Minute {
			t.Fatalf("plugin's deadline %v (set %v), want the caller's hour", d, ok)
		}
		cancel()
		if err := wait(t, errc); !errors.Is(err, context.Canceled) {
			t.Fatalf("caller got %v, want context.Canceled", err)
		}
		select {
		case <-pctx.Done():
		case <-time.After(30 * time.Second):
			t.Fatal("the plugin's call was not cancelled")
		}
		// The session goes on.
		g.release <- frameOf("b")
		f, err := c.Process(context.Background(), frameOf("b"))
		if err != nil || len(f.Batches) != 1 || f.Batches[0].Device != "b" {
			t.Fatalf("next call: %+v, %v", f, err)
		}
	})
}

// The reply of a call its caller abandoned is not taken for the reply of
// the next call.
func TestAbandonedReplyIsNotTheNextOne(t *testing.T) {
	forEachSession(t, func(t *testing.T, connect connector) {
		g := newGate(false) // ignores its context: the first reply comes late
		c := connect(t, g)
		sdktest.Init(t, c, "")

		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { _, err := c.Process(ctx, frameOf("old")); errc <- err }()
		wait(t, g.started)
		cancel()
		if err := wait(t, errc); !errors.Is(err, context.Canceled) {
			t.Fatalf("caller got %v, want context.Canceled", err)
		}
		type result struct {
			f   *sdk.Frame
			err error
		}
		next := make(chan result, 1)
		go func() { f, err := c.Process(context.Background(), frameOf("new")); next <- result{f, err} }()
		g.release <- frameOf("old") // the abandoned call's answer
		wait(t, g.started)
		g.release <- frameOf("new")
		r := wait(t, next)
		if r.err != nil || len(r.f.Batches) != 1 || r.f.Batches[0].Device != "new" {
			t.Fatalf("next call got %+v, %v; want the frame of device new", r.f, r.err)
		}
	})
}

// A plugin's error keeps its meaning across the session (ErrNotMine, a
// plain message), as over a unary call.
func TestSessionErrorsKeepTheirMeaning(t *testing.T) {
	sdktest.Run(t, func() sdk.Plugin { return &echo{} }, func(t *testing.T, p sdk.Plugin) {
		sdktest.Init(t, p, "")
		_, err := p.(sdk.Processor).Process(context.Background(), frameOf("fail"))
		if err == nil || err.Error() != "device fail refused" {
			t.Fatalf("got %v, want the plugin's message", err)
		}
	})
}

// lender is an input that lends its frames (sdk.FrameReleaser): each
// Gather returns a new frame and ReleaseFrame reports the frame given back.
type lender struct {
	gathered chan *sdk.Frame
	released chan *sdk.Frame
}

func (l *lender) Init(context.Context, *sdk.InitRequest) (*sdk.InitResponse, error) {
	return &sdk.InitResponse{}, nil
}
func (l *lender) Close(context.Context) error { return nil }
func (l *lender) Gather(context.Context) (*sdk.Frame, error) {
	f := frameOf("a")
	l.gathered <- f
	return f, nil
}
func (l *lender) ReleaseFrame(f *sdk.Frame) { l.released <- f }

// An input in its own process gets each frame it gathered back once the
// frame has been sent, so it can reuse its points as it does in process.
func TestIsolatedInputGetsItsFramesBack(t *testing.T) {
	l := &lender{gathered: make(chan *sdk.Frame, 4), released: make(chan *sdk.Frame, 4)}
	c := sdktest.Connect(t, l)
	sdktest.Init(t, c, "")
	for i := 0; i < 2; i++ {
		got, err := c.Gather(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Batches) != 1 || len(got.Batches[0].Points) != 1 {
			t.Fatalf("gathered %+v", got)
		}
		if f, r := wait(t, l.gathered), wait(t, l.released); f != r {
			t.Fatalf("released %p, want the gathered frame %p", r, f)
		}
	}
}

// The host's end of a connection decodes the next gathered frame into the
// points of a frame the core gave back, and nothing of the old frame's
// points shows through.
func TestReleasedFramePointsAreReusedByTheHost(t *testing.T) {
	in := &sequence{}
	c := sdktest.Connect(t, in)
	sdktest.Init(t, c, "")
	first, err := c.Gather(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	old := &first.Batches[0].Points[0]
	c.ReleaseFrame(first)
	second, err := c.Gather(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pts := second.Batches[0].Points
	if &pts[0] != old {
		t.Error("the second frame's points were allocated anew, not decoded into the released ones")
	}
	want := sdk.Point{Name: "n", Value: sdk.Int(2), TS: 7}
	if len(pts) != 1 || pts[0] != want {
		t.Fatalf("second frame's points %+v, want [%+v]", pts, want)
	}
	// A frame never gathered, or given back twice, is ignored.
	c.ReleaseFrame(&sdk.Frame{})
	c.ReleaseFrame(first)
}

// sequence gathers a string point with a status first, then a bare int
// point: a reused slice must not keep the first one's fields.
type sequence struct{ n int }

func (s *sequence) Init(context.Context, *sdk.InitRequest) (*sdk.InitResponse, error) {
	return &sdk.InitResponse{}, nil
}
func (s *sequence) Close(context.Context) error { return nil }
func (s *sequence) Gather(context.Context) (*sdk.Frame, error) {
	s.n++
	p := sdk.Point{Name: "n", Value: sdk.Int(2), TS: 7}
	if s.n == 1 {
		p = sdk.Point{Name: "first", Value: sdk.String("text"), Quality: sdk.QualityBad, Status: "BadThing", TS: 5}
	}
	return &sdk.Frame{Batches: []sdk.Batch{{Device: "d", TS: p.TS, Points: []sdk.Point{p}}}}, nil
}
