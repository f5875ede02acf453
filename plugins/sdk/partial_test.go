package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// halfOutput confirms the first half of every batch, then fails the way
// its topic says: with the context's deadline, or with a plain error.
type halfOutput struct{}

func (halfOutput) Init(context.Context, *sdk.InitRequest) (*sdk.InitResponse, error) {
	return &sdk.InitResponse{}, nil
}
func (halfOutput) Close(context.Context) error { return nil }
func (halfOutput) Publish(ctx context.Context, msgs []sdk.Message) error {
	switch msgs[0].Topic {
	case "deadline":
		<-ctx.Done()
		return fmt.Errorf("broker b1: %w", sdk.PartialError{Confirmed: len(msgs) / 2, Err: ctx.Err()})
	case "pointer":
		return &sdk.PartialError{Confirmed: len(msgs) / 2, Err: errors.New("connection lost")}
	case "toomany":
		return sdk.PartialError{Confirmed: 10 * len(msgs), Err: errors.New("confused plugin")}
	case "plain":
		return errors.New("not connected")
	}
	return nil
}

func TestPartialPublishCrossesTheWire(t *testing.T) {
	batch := func(topic string) []sdk.Message {
		m := make([]sdk.Message, 6)
		for i := range m {
			m[i] = sdk.Message{Topic: topic, Payload: []byte{byte(i)}, QoS: 1}
		}
		return m
	}
	sdktest.Run(t, func() sdk.Plugin { return halfOutput{} }, func(t *testing.T, p sdk.Plugin) {
		sdktest.Init(t, p, "")
		out := p.(sdk.Output)

		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		err := out.Publish(ctx, batch("deadline"))
		if got := sdk.ConfirmedOf(err, 6); got != 3 {
			t.Errorf("deadline: confirmed %d, want 3 (err %v)", got, err)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("deadline: %v does not say the deadline passed", err)
		}

		err = out.Publish(context.Background(), batch("pointer"))
		if got := sdk.ConfirmedOf(err, 6); got != 3 || err.Error() != "connection lost" {
			t.Errorf("*PartialError: confirmed %d, err %q; want 3, \"connection lost\"", got, err)
		}
		err = out.Publish(context.Background(), batch("toomany"))
		if got := sdk.ConfirmedOf(err, 6); got != 6 || err == nil {
			t.Errorf("Confirmed past the batch: counted %d (err %v), want it clamped to 6 and still an error", got, err)
		}
		err = out.Publish(context.Background(), batch("plain"))
		if got := sdk.ConfirmedOf(err, 6); got != 0 || err == nil || err.Error() != "not connected" {
			t.Errorf("plain error: confirmed %d, err %v; want 0, \"not connected\"", got, err)
		}
		if err := out.Publish(context.Background(), batch("ok")); sdk.ConfirmedOf(err, 6) != 6 || err != nil {
			t.Errorf("success: %v", err)
		}
	})
}
