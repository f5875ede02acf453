package sdk_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// renderer turns every frame into one message of 8 KB whose bytes say
// which call made it.
type renderer struct{ n byte }

func (r *renderer) Init(context.Context, *sdk.InitRequest) (*sdk.InitResponse, error) {
	return &sdk.InitResponse{}, nil
}
func (r *renderer) Close(context.Context) error { return nil }
func (r *renderer) Process(context.Context, *sdk.Frame) (*sdk.Frame, error) {
	r.n++
	return &sdk.Frame{Messages: []sdk.Message{{Topic: "t", Payload: bytes.Repeat([]byte{r.n}, 8<<10)}}}, nil
}

// On the host's end of a processor, the payloads of a reply are decoded
// into a buffer that the next reply reuses once the frame is given back
// (the core does so once the messages are delivered), and never before.
func TestProcessReplyPayloadsReuseAGivenBackFrame(t *testing.T) {
	c := sdktest.Connect(t, &renderer{})
	sdktest.Init(t, c, "")
	proc := c.(sdk.Processor)
	call := func(want byte) *sdk.Frame {
		t.Helper()
		out, err := proc.Process(context.Background(), &sdk.Frame{})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) != 1 || !bytes.Equal(out.Messages[0].Payload, bytes.Repeat([]byte{want}, 8<<10)) {
			t.Fatalf("call %d: the reply's payload is not its own", want)
		}
		return out
	}
	first := call(1)
	second := call(2)
	if &second.Messages[0].Payload[0] == &first.Messages[0].Payload[0] {
		t.Fatal("a reply decoded into the memory of a frame not given back")
	}
	if first.Messages[0].Payload[0] != 1 {
		t.Fatal("a frame not given back was overwritten")
	}
	c.(sdk.FrameReleaser).ReleaseFrame(second)
	third := call(3)
	if &third.Messages[0].Payload[0] != &second.Messages[0].Payload[0] {
		t.Error("the reply after a frame was given back did not reuse its payload buffer")
	}
	if first.Messages[0].Payload[0] != 1 {
		t.Fatal("a frame not given back was overwritten")
	}
}
