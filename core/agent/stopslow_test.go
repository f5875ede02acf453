package agent

import (
	"bytes"
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/edgepipe/edgepipe/core/queue"
	"github.com/edgepipe/edgepipe/internal/testbroker"
)

// swallow is a broker hook that, while on, takes PUBLISH packets on a
// topic containing "/data" and never acknowledges them: a broker that is
// connected but does not confirm.
type swallow struct {
	mqtt.HookBase
	on atomic.Bool
}

func (h *swallow) ID() string { return "swallow" }
func (h *swallow) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnPublish}, []byte{b})
}
func (h *swallow) OnPublish(_ *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if h.on.Load() && bytes.Contains([]byte(pk.TopicName), []byte("/data")) {
		return pk, packets.ErrRejectPacket
	}
	return pk, nil
}

// stopBound is the README's `systemctl stop` promise: what can be
// delivered within 5 s, the rest stays queued.
const stopBound = 5 * time.Second

// TestStopWithinBoundWithConnectedBrokerThatDoesNotConfirm: a connected
// broker that takes the messages and never confirms them does not hold
// the stop past its deadline, and every unconfirmed message stays in the
// disk queue for the next start.
func TestStopWithinBoundWithConnectedBrokerThatDoesNotConfirm(t *testing.T) {
	b := testbroker.StartMochi(t, testbroker.MochiOptions{})
	hook := &swallow{}
	if err := b.Server().AddHook(hook, nil); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := counterToBrokerConfig(t, "GW-NOACK", dir, b.URL(), "")
	a := New(cfg, Options{})
	ctx := context.Background()
	if err := a.Open(ctx, true); err != nil {
		t.Fatal(err)
	}
	a.Start()
	out := a.outputByID(cfg.Outputs[0].ID)
	waitFor(t, "the first messages confirmed", func() bool { return out.in.published.Load() > 0 })
	hook.on.Store(true)
	waitFor(t, "a backlog while connected", func() bool { return out.q.Stats().Depth >= 20 && out.connected(ctx) })

	sctx, cancel := context.WithTimeout(ctx, stopBound)
	defer cancel()
	start := time.Now()
	a.Stop(sctx)
	took := time.Since(start)
	// A contract, not a benchmark: the bound plus a margin for a loaded
	// machine.
	if took > stopBound+time.Second {
		t.Fatalf("Stop took %v with a connected broker that does not confirm; bound %v", took.Round(time.Millisecond), stopBound)
	}
	t.Logf("stopped in %v", took.Round(time.Millisecond))
	q, err := queue.OpenDisk(filepath.Join(dir, "queue", safeID(cfg.Outputs[0].ID)), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if d := q.Stats().Depth; d < 20 {
		t.Fatalf("%d messages left in the disk queue, want every unconfirmed one (at least 20)", d)
	}
}
