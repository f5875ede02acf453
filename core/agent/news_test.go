package agent

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/internal/testbroker"
	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/fbox"
)

// A retained status announced while the broker is away is news, not
// data: it must never enter the output's store-and-forward queue (where
// it would sit behind the backlog and could be replayed over a fresher
// status, or survive a restart), and the status the server holds once
// the broker is back is the newest one announced.
func TestAnnouncedStatusNeverQueued(t *testing.T) {
	b := testbroker.StartMochi(t, testbroker.MochiOptions{})
	cfg := counterToBrokerConfig(t, "GW-NEWS", t.TempDir(), b.URL(), "")
	topics := fbox.NewTopics(cfg.Agent.TopicPrefix, cfg.Agent.DeviceID)
	status := func(cfgHash string) sdk.Message {
		return topics.StatusMessage(time.Now(), "test", fbox.StatusInfo{Config: cfgHash, ConfigState: "confirmed"})
	}
	seen := b.Subscribe(topics.Status())
	a := New(cfg, Options{})
	ctx := context.Background()
	if err := a.Open(ctx, true); err != nil {
		t.Fatal(err)
	}
	a.Start()
	defer a.Stop(ctx)
	out := a.outputByID(cfg.Outputs[0].ID)
	waitFor(t, "the output connected", func() bool { return out.connected(ctx) && out.in.published.Load() > 0 })

	b.Stop()
	waitFor(t, "the output disconnected", func() bool { return !out.connected(ctx) })
	waitFor(t, "messages queued for the absent broker", func() bool { return out.q.Stats().Depth >= 5 })
	a.Announce(status("sha256:stale"))
	a.Announce(status("sha256:fresh"))
	msgs, err := out.q.Peek(out.q.Stats().Depth + 16)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if m.Topic == topics.Status() {
			t.Fatalf("a retained status was queued for the absent broker: %s", m.Payload)
		}
	}

	b.Restart()
	seen.Wait(t, 30*time.Second, "the fresh status", func(rs []testbroker.Received) bool {
		return len(rs) > 0 && bytes.Contains(rs[len(rs)-1].Payload, []byte("sha256:fresh"))
	})
	waitFor(t, "the backlog delivered", func() bool { return out.q.Stats().Depth == 0 })
	rs := seen.Messages()
	freshAt := -1
	for i, r := range rs {
		if bytes.Contains(r.Payload, []byte("sha256:fresh")) && freshAt < 0 {
			freshAt = i
		}
		if freshAt >= 0 && bytes.Contains(r.Payload, []byte("sha256:stale")) {
			t.Fatalf("the stale status arrived after the fresh one: %q", r.Payload)
		}
	}
	if p, ok := b.Retained(topics.Status()); !ok || !bytes.Contains(p, []byte("sha256:fresh")) {
		t.Fatalf("the retained status is %q, want the fresh one", p)
	}
}
