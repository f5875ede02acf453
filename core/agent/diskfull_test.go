package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/core/agent"
	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/core/monitor"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// bigRender makes one 2 KB message per frame: a tmpfs of 2 MB fills in
// seconds.
type bigRender struct{}

func (bigRender) Init(_ context.Context, req *sdk.InitRequest) (*sdk.InitResponse, error) {
	_, err := sdk.DecodeConfig(req, &struct{}{})
	return &sdk.InitResponse{}, err
}
func (bigRender) Close(context.Context) error { return nil }
func (bigRender) Process(_ context.Context, f *sdk.Frame) (*sdk.Frame, error) {
	f.Messages = append(f.Messages, sdk.Message{Topic: "big", Payload: bytes.Repeat([]byte("x"), 2048), QoS: 1})
	f.Batches = nil
	return f, nil
}

// downOutput never publishes: a broker that is away.
type downOutput struct{}

func (downOutput) Init(_ context.Context, req *sdk.InitRequest) (*sdk.InitResponse, error) {
	_, err := sdk.DecodeConfig(req, &struct{}{})
	return &sdk.InitResponse{}, err
}
func (downOutput) Close(context.Context) error { return nil }
func (downOutput) Publish(context.Context, []sdk.Message) error {
	return errors.New("broker down")
}

func init() {
	sdk.Register(sdk.Registration{Kind: sdk.KindProcessor, Name: "testbig", Factory: func() sdk.Plugin { return bigRender{} }})
	sdk.Register(sdk.Registration{Kind: sdk.KindOutput, Name: "testdown", Factory: func() sdk.Plugin { return downOutput{} }})
}

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// mountTmpfs mounts a tmpfs of size on a new directory; root only.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDiskFullDropsCountsAndResumes: the disk queue's data_dir is a 2 MB
// tmpfs and the output cannot publish. Once the disk is full, new messages
// are dropped and counted as disk_full (not as queued), what was queued is
// kept, the error is logged once (not per poll), /healthz is 503 naming
// the queue, and queuing resumes by itself when space returns.
func TestDiskFullDropsCountsAndResumes(t *testing.T) {
	dataDir := mountTmpfs(t, "2m")
	// Most of the space is taken by something else: the queue fills soon.
	filler := filepath.Join(dataDir, "filler")
	if err := os.WriteFile(filler, make([]byte, 1400<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := fmt.Sprintf(`[agent]
device_id = "GW-FULL"
data_dir = %q
[[inputs.synthetic]]
device = "d"
points = 1
interval = "10ms"
[[processors.testbig]]
[[outputs.testdown]]
alias = "up"
buffer = "disk"
`, dataDir)
	cfg, err := config.Parse("full.toml", []byte(doc), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	var logs logBuf
	a := agent.New(cfg, agent.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err := a.Open(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	a.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		a.Stop(ctx)
	})
	mon := httptest.NewServer(monitor.Handler(a))
	t.Cleanup(mon.Close)
	q := func() *agent.QueueStats {
		st := a.Stats()
		return st.Plugins[len(st.Plugins)-1].Queue
	}

	// The disk fills; polls go on being dropped.
	waitUntil(t, "messages dropped for a full disk", func() bool { return q().DroppedFull >= 100 })
	full := q()
	if !strings.Contains(full.WriteErr, "no space left") {
		t.Fatalf("queue error %q", full.WriteErr)
	}
	// Dropped messages are not counted as queued: nothing is delivered or
	// dropped for the limit, so every message counted as queued is held.
	queued := a.Stats().Messages
	if held := q().Depth; queued > uint64(held) || full.Dropped != 0 {
		t.Fatalf("%d messages counted as queued, %d held, %+v", queued, held, full)
	}
	// Logged once per minute at most, not per poll.
	lines := strings.Count(logs.String(), "queue cannot be written")
	if max := 1 + int(time.Since(started)/time.Minute); lines < 1 || lines > max {
		t.Fatalf("%d log lines about the full disk in %v:\n%s", lines, time.Since(started), logs.String())
	}
	// /healthz names the queue; /metrics counts the drops by reason.
	code, body := get(t, mon.URL+"/healthz")
	var h agent.Health
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatal(err)
	}
	var out agent.PluginHealth
	for _, p := range h.Plugins {
		if p.Kind == "outputs" {
			out = p
		}
	}
	if code != 503 || h.OK || out.OK || !strings.Contains(out.Reason, "queue cannot be written") ||
		!strings.Contains(out.QueueError, "no space left") {
		t.Fatalf("/healthz %d: %s", code, body)
	}
	_, metrics := get(t, mon.URL+"/metrics")
	if !strings.Contains(metrics, `edgepipe_queue_dropped_total{plugin="`+out.ID+`",reason="disk_full"}`) ||
		strings.Contains(metrics, `reason="disk_full"} 0`) {
		t.Fatalf("no disk_full drops in /metrics:\n%s", grep(metrics, "edgepipe_queue_dropped_total"))
	}

	// Space comes back: queuing resumes by itself, health recovers.
	depth := q().Depth
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "queuing to resume", func() bool { s := q(); return s.WriteErr == "" && s.Depth > depth })
	waitUntil(t, "/healthz 200", func() bool { code, _ := get(t, mon.URL+"/healthz"); return code == 200 })
	waitUntil(t, "the recovery logged", func() bool { return strings.Contains(logs.String(), "queuing resumed") })
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

var httpClient = http.Client{Timeout: 10 * time.Second}

// heldOutput publishes only once released: a broker that comes back.
type heldOutput struct{}

var (
	heldOpen      atomic.Bool
	heldDelivered atomic.Int64
)

func (heldOutput) Init(_ context.Context, req *sdk.InitRequest) (*sdk.InitResponse, error) {
	_, err := sdk.DecodeConfig(req, &struct{}{})
	return &sdk.InitResponse{}, err
}
func (heldOutput) Close(context.Context) error { return nil }
func (heldOutput) Publish(_ context.Context, msgs []sdk.Message) error {
	if !heldOpen.Load() {
		return errors.New("broker down")
	}
	heldDelivered.Add(int64(len(msgs)))
	return nil
}

func init() {
	sdk.Register(sdk.Registration{Kind: sdk.KindOutput, Name: "testheld", Factory: func() sdk.Plugin { return heldOutput{} }})
}

// TestDamagedRecordWhileRunningDoesNotStall: a byte of a queued record
// changes on disk while the gateway runs and the output is down. When the
// output comes back, the damaged record is skipped, counted and logged
// once, and the queue drains: no stall.
func TestDamagedRecordWhileRunningDoesNotStall(t *testing.T) {
	heldOpen.Store(false)
	dataDir := t.TempDir()
	doc := fmt.Sprintf(`[agent]
device_id = "GW-DMG"
data_dir = %q
[[inputs.synthetic]]
device = "d"
points = 1
interval = "10ms"
[[processors.testbig]]
[[outputs.testheld]]
alias = "up"
buffer = "disk"
`, dataDir)
	cfg, err := config.Parse("dmg.toml", []byte(doc), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	var logs logBuf
	a := agent.New(cfg, agent.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err := a.Open(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	a.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		a.Stop(ctx)
	})
	q := func() *agent.QueueStats {
		st := a.Stats()
		return st.Plugins[len(st.Plugins)-1].Queue
	}
	waitUntil(t, "50 queued messages", func() bool { return q().Depth >= 50 })
	segs, _ := filepath.Glob(filepath.Join(dataDir, "queue", "up", "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("segment files %v", segs)
	}
	fi, err := os.Stat(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(segs[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Half-way through the file: the payload of some queued record.
	if _, err := f.WriteAt([]byte{'y'}, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	f.Close()

	heldOpen.Store(true)
	queued := q().Depth
	waitUntil(t, "the backlog delivered", func() bool { return heldDelivered.Load() >= int64(queued) })
	waitUntil(t, "the queue nearly empty", func() bool { return q().Depth < 20 })
	if st := q(); st.Corrupt != 1 || st.DroppedCorrupt != 1 {
		t.Fatalf("queue stats %+v, want one damaged record counted", st)
	}
	if n := strings.Count(logs.String(), "skipped damaged records, 1 messages lost"); n != 1 {
		t.Fatalf("damage logged %d times:\n%s", n, logs.String())
	}
}
