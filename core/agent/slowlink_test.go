package agent

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/internal/testbroker"
	"github.com/edgepipe/edgepipe/internal/testproxy"
	"github.com/edgepipe/edgepipe/plugins/sdk"

	_ "github.com/edgepipe/edgepipe/plugins/outputs/mqtt"
)

// burst is a streaming input that plays a broker outage followed by a
// slow link: it emits a backlog of big messages at once, then one more
// every `every`, `fresh` times. Payloads start with their number.
type burst struct {
	cfg struct {
		Backlog int          `toml:"backlog"`
		Fresh   int          `toml:"fresh"`
		Size    int          `toml:"size"`
		Every   sdk.Duration `toml:"every"`
	}
}

func (b *burst) Init(_ context.Context, req *sdk.InitRequest) (*sdk.InitResponse, error) {
	_, err := sdk.DecodeConfig(req, &b.cfg)
	return &sdk.InitResponse{}, err
}
func (*burst) Close(context.Context) error                { return nil }
func (*burst) Gather(context.Context) (*sdk.Frame, error) { return &sdk.Frame{}, nil }
func (b *burst) message(i int) sdk.Message {
	p := bytes.Repeat([]byte{'x'}, b.cfg.Size)
	copy(p, fmt.Sprintf("%08d", i))
	return sdk.Message{Topic: "slow/" + strconv.Itoa(i), Payload: p, QoS: 1}
}
func (b *burst) Stream(ctx context.Context, emit func(*sdk.Frame)) error {
	f := &sdk.Frame{}
	for i := range b.cfg.Backlog {
		f.Messages = append(f.Messages, b.message(i))
	}
	emit(f)
	t := time.NewTicker(b.cfg.Every.D())
	defer t.Stop()
	for i := range b.cfg.Fresh {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		emit(&sdk.Frame{Messages: []sdk.Message{b.message(b.cfg.Backlog + i)}})
	}
	<-ctx.Done()
	return nil
}

func init() {
	sdk.Register(sdk.Registration{Kind: sdk.KindInput, Name: "testburst", Factory: func() sdk.Plugin { return &burst{} }})
}

// TestSlowLinkDrainsTheBacklog is issue 9's slow link, scaled: a 400 KB/s
// link (a throttling proxy in front of mosquitto), 57 KB messages, a
// backlog of 70 of them (4 MB) from an outage and one more every 300 ms
// (about half the link). The backlog is larger than the socket's send
// buffer, so writes block; Linux wakes a blocked writer only once a third
// of the buffer has drained (about 1 MB here, 3 s), far longer than
// connect_timeout although the link never stops moving. A write deadline
// of connect_timeout therefore drops the connection again and again (seen
// before the fix: 6 reconnects, 30 duplicates). The backlog must drain, the
// connection must hold, and the server may see at most one batch's worth
// of duplicates per reconnect.
func TestSlowLinkDrainsTheBacklog(t *testing.T) {
	rate, size, backlog, fresh, every, wait := 400<<10, 57<<10, 70, 10, "300ms", 25*time.Second
	timeouts := `connect_timeout = "1s"
keepalive = "5s"
ping_timeout = "5s"`
	if os.Getenv("EDGEPIPE_SLOWLINK_FULL") != "" {
		// The issue's own figures: 60 KB/s, a 57 KB message every 2 s,
		// 90 s of backlog, default timeouts. Takes minutes.
		rate, backlog, fresh, every, wait, timeouts = 60<<10, 45, 30, "2s", 5*time.Minute, ""
	}
	m := testbroker.StartMosquitto(t, testbroker.MosquittoOptions{})
	sub := testbroker.Subscribe(t, m.URL(), "slow/#", testbroker.ClientOptions{})
	px := testproxy.Start(t, m.Addr(), int64(rate))
	doc := fmt.Sprintf(`[agent]
device_id = "GW-SLOW"
data_dir = %q
[[inputs.testburst]]
backlog = %d
fresh = %d
size = %d
every = %q
[[outputs.mqtt]]
servers = ["tcp://%s"]
max_reconnect_interval = "200ms"
%s
`, t.TempDir(), backlog, fresh, size, every, px.Addr(), timeouts)
	cfg, err := config.Parse("slow.toml", []byte(doc), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	a := New(cfg, Options{})
	if err := a.Open(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	a.Start()
	defer a.Stop(context.Background())

	total := backlog + fresh
	seen := map[string]int{}
	received := 0
	deadline := time.Now().Add(wait)
	for {
		msgs := sub.Messages()
		for _, r := range msgs[received:] {
			seen[r.Topic]++
		}
		received = len(msgs)
		if len(seen) == total && a.outputs[0].q.Stats().Depth == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %d of %d messages arrived (%d received with duplicates, %d connections, %d bytes sent through the link, %d still queued)",
				wait, len(seen), total, received, px.Accepted(), px.BytesUp(), a.outputs[0].q.Stats().Depth)
		}
		time.Sleep(20 * time.Millisecond)
	}
	dups := received - len(seen)
	reconnects := px.Accepted() - 1
	// A batch holds at most maxBatchBytes; at least one message.
	perBatch := max(1, maxBatchBytes/size)
	t.Logf("%d messages, %d duplicates, %d reconnects", total, dups, reconnects)
	if reconnects > 0 {
		// The proxy never stops forwarding: a drop is a write cut short.
		t.Errorf("the connection was dropped %d times on a link that never stalled", reconnects)
	}
	if dups > reconnects*perBatch {
		t.Fatalf("%d duplicates over %d reconnects: more than one batch (%d messages) per reconnect", dups, reconnects, perBatch)
	}
}
