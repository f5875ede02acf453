package agent

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/core/config"
	_ "github.com/edgepipe/edgepipe/plugins/outputs/discard"
	_ "github.com/edgepipe/edgepipe/plugins/processors/template"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// releasing is an input that counts its polls in its one point and
// records the frames the core gives back (sdk.FrameReleaser), with how
// many messages had been delivered by then.
type releasing struct {
	mu        sync.Mutex
	polls     int
	gathered  map[*sdk.Frame]int // frame -> its poll number
	released  []int              // poll numbers, in order given back
	delivered *int               // messages seen by OnMessage, under mu
	early     []string           // frames given back before their message
}

// releasingInput is the instance the running test's pipeline gets.
var releasingInput *releasing

func (r *releasing) Init(_ context.Context, req *sdk.InitRequest) (*sdk.InitResponse, error) {
	if _, err := sdk.DecodeConfig(req, &struct{}{}); err != nil {
		return nil, err
	}
	return &sdk.InitResponse{Interval: 10 * time.Millisecond, Points: []sdk.PointSchema{
		{Device: "r", Name: "n", Kind: sdk.KindInt, Access: sdk.AccessPub}}}, nil
}
func (r *releasing) Close(context.Context) error { return nil }
func (r *releasing) Gather(context.Context) (*sdk.Frame, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.polls++
	f := &sdk.Frame{Batches: []sdk.Batch{{Device: "r", Points: []sdk.Point{{Name: "n", Value: sdk.Int(int64(r.polls))}}}}}
	r.gathered[f] = r.polls
	return f, nil
}
func (r *releasing) ReleaseFrame(f *sdk.Frame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, ok := r.gathered[f]
	if !ok {
		r.early = append(r.early, "a frame this input never returned")
		return
	}
	delete(r.gathered, f)
	if *r.delivered < n {
		r.early = append(r.early, fmt.Sprintf("poll %d given back with %d messages delivered", n, *r.delivered))
	}
	r.released = append(r.released, n)
}

func init() {
	sdk.Register(sdk.Registration{Kind: sdk.KindInput, Name: "testrelease", Factory: func() sdk.Plugin { return releasingInput }})
}

// TestFramesGivenBackAfterDelivery: an input that reuses its frames'
// memory gets each frame back once, in order, and only after the
// processors have run and its message is queued.
func TestFramesGivenBackAfterDelivery(t *testing.T) {
	delivered := 0
	r := &releasing{gathered: map[*sdk.Frame]int{}, delivered: &delivered}
	releasingInput = r
	doc := fmt.Sprintf("[agent]\ndevice_id = \"GW-R\"\ndata_dir = %q\n[[inputs.testrelease]]\n[[outputs.discard]]\nbuffer = \"memory\"\n", t.TempDir())
	cfg, err := config.Parse("test.toml", []byte(doc), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	a := New(cfg, Options{DryRun: true, OnMessage: func(sdk.Message) {
		r.mu.Lock()
		delivered++
		r.mu.Unlock()
	}})
	if err := a.Open(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	a.Start()
	waitFor(t, "10 frames given back", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.released) >= 10
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a.Stop(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.early) > 0 {
		t.Fatalf("frames given back too early: %v", r.early)
	}
	for i, n := range r.released {
		if n != i+1 {
			t.Fatalf("given back in the order %v, want the polls' order", r.released)
		}
	}
	if len(r.gathered) != 0 {
		t.Errorf("%d frames processed but never given back", len(r.gathered))
	}
}
