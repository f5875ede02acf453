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

// raiser raises an alarm naming cam1 for every frame.
type raiser struct{ scale }

func (raiser) Process(_ context.Context, f *sdk.Frame) (*sdk.Frame, error) {
	f.Alarms = append(f.Alarms, sdk.Alarm{Rule: "hot", State: "raised", Camera: "cam1"})
	return f, nil
}

func init() {
	sdk.Register(sdk.Registration{Kind: sdk.KindInput, Name: "testcam", Factory: func() sdk.Plugin { return testCam{} }})
	sdk.Register(sdk.Registration{Kind: sdk.KindProcessor, Name: "testraiser", Factory: func() sdk.Plugin { return raiser{} }})
}

func TestRaisedAlarmTriggersItsCamera(t *testing.T) {
	doc := fmt.Sprintf("[agent]\ndevice_id = \"GW-T\"\ndata_dir = %q\n[[inputs.testcam]]\n[[processors.testraiser]]\n[[processors.testraiser]]\n", t.TempDir())
	cfg, err := config.Parse("cam.toml", []byte(doc), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	a := New(cfg, Options{DryRun: true})
	if err := a.Open(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	if _, err := a.process(context.Background(), &sdk.Frame{}, 0); err != nil {
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
