package agent

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// testCam offers cam1.capture and records capture requests.
type testCam struct{ scale }

var captures = make(chan sdk.WriteRequest, 10)

func (testCam) Init(context.Context, *sdk.InitRequest) (*sdk.InitResponse, error) {
	return &sdk.InitResponse{Points: []sdk.PointSchema{{Device: "cam1", Name: "capture", Kind: sdk.KindBool, Access: sdk.AccessSub}}}, nil
}
func (testCam) Gather(context.Context) (*sdk.Frame, error) { return &sdk.Frame{}, nil }
func (testCam) Write(_ context.Context, reqs []sdk.WriteRequest) ([]sdk.WriteResult, error) {
	for _, r := range reqs {
		captures <- r
	}
	return make([]sdk.WriteResult, len(reqs)), nil
}

// raiser raises an alarm and asks cam1 for a picture, for every frame.
type raiser struct{ scale }

func (raiser) Process(_ context.Context, f *sdk.Frame) (*sdk.Frame, error) {
	f.Alarms = append(f.Alarms, sdk.Alarm{Rule: "hot", State: "raised"})
	f.Requests = append(f.Requests, sdk.Request{Point: "cam1.capture", Value: sdk.Bool(true), Reason: "test"})
	return f, nil
}

// dropper returns a nil frame, which the SDK allows: the frame is dropped.
type dropper struct{ scale }

func (dropper) Process(context.Context, *sdk.Frame) (*sdk.Frame, error) { return nil, nil }

func init() {
	sdk.Register(sdk.Registration{Kind: sdk.KindInput, Name: "testcam", Factory: func() sdk.Plugin { return testCam{} }})
	sdk.Register(sdk.Registration{Kind: sdk.KindProcessor, Name: "testraiser", Factory: func() sdk.Plugin { return raiser{} }})
	sdk.Register(sdk.Registration{Kind: sdk.KindProcessor, Name: "testdropper", Factory: func() sdk.Plugin { return dropper{} }})
}

// A processor's request goes through the checked write path to the input
// owning the point; each request is served once (the core takes it out of
// the frame), and a request for a point that is not writable is refused.
func TestProcessorRequestReachesTheCamera(t *testing.T) {
	doc := fmt.Sprintf("[agent]\ndevice_id = \"GW-T\"\ndata_dir = %q\n[[inputs.testcam]]\n[[processors.testraiser]]\n[[processors.testraiser]]\n", t.TempDir())
	cfg, err := config.Parse("cam.toml", []byte(doc), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	a := New(cfg, Options{})
	if err := a.Open(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	if _, _, err := a.process(context.Background(), &sdk.Frame{}, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-captures:
		if r.Device != "cam1" || r.Name != "capture" || !r.Value.Equal(sdk.Bool(true)) {
			t.Fatalf("capture request %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no capture requested")
	}
	// Two processors raised an alarm each: two captures, and no more.
	select {
	case <-captures:
	case <-time.After(10 * time.Second):
		t.Fatal("second alarm did not trigger")
	}
	select {
	case r := <-captures:
		t.Fatalf("an alarm triggered twice: %+v", r)
	case <-time.After(100 * time.Millisecond):
	}
}

// A processor that returns a nil frame drops it; the core carries on.
func TestNilFrameFromAProcessorIsDropped(t *testing.T) {
	doc := fmt.Sprintf("[agent]\ndevice_id = \"GW-T\"\ndata_dir = %q\n[[inputs.testcam]]\n[[processors.testraiser]]\n[[processors.testdropper]]\n[[processors.testraiser]]\n", t.TempDir())
	cfg, err := config.Parse("nil.toml", []byte(doc), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	for _, iso := range []bool{false, true} {
		t.Run(fmt.Sprint("isolated=", iso), func(t *testing.T) {
			a := New(cfg, Options{Isolation: func(p *config.Plugin) bool { return iso && p.Kind == sdk.KindProcessor }})
			if err := a.Open(context.Background(), false); err != nil {
				t.Fatal(err)
			}
			defer a.Close(context.Background())
			msgs, _, err := a.process(context.Background(), &sdk.Frame{}, 0)
			if err != nil || len(msgs) != 0 {
				t.Fatalf("a dropped frame gave %v, %v", msgs, err)
			}
			// The request made before the frame was dropped is still served.
			select {
			case <-captures:
			case <-time.After(10 * time.Second):
				t.Fatal("the first processor's request was lost with the frame")
			}
		})
	}
}
