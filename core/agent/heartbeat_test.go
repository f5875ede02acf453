package agent

import (
	"context"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// hang blocks in Process, ignoring its context, until release is closed: a
// wedged plugin. Each test sets hangRelease before opening its agent.
type hang struct{ release chan struct{} }

var hangRelease chan struct{}

func (h *hang) Init(_ context.Context, req *sdk.InitRequest) (*sdk.InitResponse, error) {
	h.release = hangRelease
	_, err := sdk.DecodeConfig(req, &struct{}{})
	return &sdk.InitResponse{}, err
}
func (*hang) Close(context.Context) error { return nil }
func (h *hang) Process(_ context.Context, f *sdk.Frame) (*sdk.Frame, error) {
	<-h.release
	return f, nil
}

func init() {
	sdk.Register(sdk.Registration{Kind: sdk.KindProcessor, Name: "testhang", Factory: func() sdk.Plugin { return &hang{} }})
}

func TestStalledWhileAProcessorIgnoresItsContext(t *testing.T) {
	doc := "[agent]\ndevice_id = \"GW-1\"\ndata_dir = \"" + t.TempDir() + "\"\n[[inputs.synthetic]]\ninterval = \"10ms\"\n[[processors.testhang]]\n"
	cfg, err := config.Parse("hb.toml", []byte(doc), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	hangRelease = release
	a := New(cfg, Options{})
	ctx := context.Background()
	if err := a.Open(ctx, true); err != nil {
		t.Fatal(err)
	}
	if err := a.Stalled(time.Millisecond); err != nil {
		t.Fatalf("a pipeline not started yet is not stalled: %v", err)
	}
	a.Start()
	defer a.Stop(ctx)
	waitFor(t, "Stalled to report the wedged processor", func() bool { return a.Stalled(50*time.Millisecond) != nil })
	if err := a.Stalled(time.Hour); err != nil {
		t.Fatalf("a frame under the limit is progress: %v", err)
	}
	close(release)
	waitFor(t, "the heartbeat to come back", func() bool { return a.Stalled(5*time.Second) == nil })
}
