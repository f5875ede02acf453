package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// pollFrame is call n's frame: devices whose points' values (and, every
// third call, status) move with n.
func pollFrame(n int) *sdk.Frame {
	f := &sdk.Frame{}
	for d := range 1 + n%3 {
		b := sdk.Batch{Device: fmt.Sprintf("d%d", d), TS: int64(1000 + n)}
		for i := range 20 + n%7 {
			p := sdk.Point{Name: fmt.Sprintf("p%d", i), Value: sdk.Int(int64(n*1000 + d*100 + i)), TS: int64(1000 + n)}
			if n%3 == 0 && i == 2 {
				p.Quality, p.Status = sdk.QualityBad, fmt.Sprintf("status %d", n)
			}
			b.Points = append(b.Points, p)
		}
		f.Batches = append(f.Batches, b)
	}
	return f
}

// keeper is a processor that does not implement FrameReleaser and keeps
// every frame it is given, as it may.
type keeper struct {
	mu   sync.Mutex
	kept []*sdk.Frame
}

func (k *keeper) Init(context.Context, *sdk.InitRequest) (*sdk.InitResponse, error) {
	return &sdk.InitResponse{}, nil
}
func (k *keeper) Close(context.Context) error { return nil }
func (k *keeper) Process(_ context.Context, f *sdk.Frame) (*sdk.Frame, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.kept = append(k.kept, f)
	return f, nil
}

// A processor that does not promise anything (no FrameReleaser) is given
// frames of its own in its process: every frame it kept still holds the
// values it arrived with, however many calls followed.
func TestProcessorWithoutReleaserKeepsItsFrames(t *testing.T) {
	k := &keeper{}
	c := sdktest.Connect(t, k)
	sdktest.Init(t, c, "")
	const calls = 60
	for n := range calls {
		if _, err := c.Process(context.Background(), pollFrame(n)); err != nil {
			t.Fatal(err)
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.kept) != calls {
		t.Fatalf("kept %d frames, want %d", len(k.kept), calls)
	}
	for n, f := range k.kept {
		want := pollFrame(n)
		if !slices.EqualFunc(f.Batches, want.Batches, func(a, b sdk.Batch) bool {
			return a.Device == b.Device && a.TS == b.TS && slices.Equal(a.Points, b.Points)
		}) {
			t.Fatalf("frame %d kept by the processor changed after later calls:\n got %+v\nwant %+v", n, f.Batches, want.Batches)
		}
	}
}

// recycler implements FrameReleaser: it answers each frame with a frame of
// its own whose points (each value doubled) it takes from the frames given
// back, and checks what the SDK promises: its frame comes back once,
// after the call and before the next one.
type recycler struct {
	mu       sync.Mutex
	out      *sdk.Frame // returned, not yet given back
	spare    [][]sdk.Point
	seen     map[*sdk.Point]bool // first points of requests
	reused   int                 // requests decoded into memory seen before
	broken   []string
	released int
	calls    int
}

func (r *recycler) Init(context.Context, *sdk.InitRequest) (*sdk.InitResponse, error) {
	return &sdk.InitResponse{}, nil
}
func (r *recycler) Close(context.Context) error { return nil }

var errOdd = errors.New("every seventh call fails")

func (r *recycler) Process(_ context.Context, f *sdk.Frame) (*sdk.Frame, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.out != nil {
		r.broken = append(r.broken, fmt.Sprintf("call %d: the last frame was not given back first", r.calls))
	}
	if len(f.Batches) > 0 && len(f.Batches[0].Points) > 0 {
		p := &f.Batches[0].Points[0]
		if r.seen[p] {
			r.reused++
		}
		r.seen[p] = true
	}
	if r.calls%7 == 0 {
		return nil, errOdd
	}
	out := &sdk.Frame{}
	for _, b := range f.Batches {
		var pts []sdk.Point
		if n := len(r.spare); n > 0 {
			pts, r.spare = r.spare[n-1][:0], r.spare[:n-1]
		}
		for _, p := range b.Points {
			p.Value = sdk.Int(2 * p.Value.IntValue())
			pts = append(pts, p)
		}
		b.Points = pts
		out.Batches = append(out.Batches, b)
	}
	r.out = out
	return out, nil
}

func (r *recycler) ReleaseFrame(f *sdk.Frame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f != r.out {
		r.broken = append(r.broken, fmt.Sprintf("after call %d: given back a frame it did not return last", r.calls))
		return
	}
	r.released++
	r.out = nil
	for _, b := range f.Batches {
		r.spare = append(r.spare, b.Points)
	}
}

// A processor that implements FrameReleaser gets back each frame it
// returned, after its call and before the next, and its requests are
// decoded into memory of earlier ones; every reply still carries exactly
// what the processor made of its own request.
func TestReleasingProcessorGetsItsFramesBackAndRequestsReuseMemory(t *testing.T) {
	r := &recycler{seen: map[*sdk.Point]bool{}}
	c := sdktest.Connect(t, r)
	sdktest.Init(t, c, "")
	const calls = 60
	failed := 0
	for n := range calls {
		out, err := c.Process(context.Background(), pollFrame(n))
		if (n+1)%7 == 0 {
			if err == nil || err.Error() != errOdd.Error() {
				t.Fatalf("call %d: error %v, want %v", n, err, errOdd)
			}
			failed++
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		want := pollFrame(n)
		for i := range want.Batches {
			for j := range want.Batches[i].Points {
				p := &want.Batches[i].Points[j]
				p.Value = sdk.Int(2 * p.Value.IntValue())
			}
		}
		if !slices.EqualFunc(out.Batches, want.Batches, func(a, b sdk.Batch) bool {
			return a.Device == b.Device && a.TS == b.TS && slices.Equal(a.Points, b.Points)
		}) {
			t.Fatalf("reply %d:\n got %+v\nwant %+v", n, out.Batches, want.Batches)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.broken) > 0 {
		t.Fatal(r.broken)
	}
	if r.released != calls-failed {
		t.Errorf("%d frames given back, want one per successful call: %d", r.released, calls-failed)
	}
	if r.reused == 0 {
		t.Error("no request was decoded into the memory of an earlier one")
	}
}
