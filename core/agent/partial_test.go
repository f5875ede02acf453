package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// halfway is an output on a link that always times out half way: each
// Publish confirms the first half of its batch (at least one message),
// appends their topics to a file, and fails with a PartialError.
type halfway struct {
	cfg struct {
		Path string `toml:"path"`
	}
}

func (h *halfway) Init(_ context.Context, req *sdk.InitRequest) (*sdk.InitResponse, error) {
	_, err := sdk.DecodeConfig(req, &h.cfg)
	return &sdk.InitResponse{}, err
}
func (*halfway) Close(context.Context) error { return nil }
func (h *halfway) Publish(ctx context.Context, msgs []sdk.Message) error {
	n := (len(msgs) + 1) / 2
	f, err := os.OpenFile(h.cfg.Path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, m := range msgs[:n] {
		fmt.Fprintln(f, m.Topic)
	}
	if n == len(msgs) {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		return errors.New("no time budget given")
	}
	return fmt.Errorf("link: %w", sdk.PartialError{Confirmed: n, Err: context.DeadlineExceeded})
}

func init() {
	sdk.Register(sdk.Registration{Kind: sdk.KindOutput, Name: "testhalfway", Factory: func() sdk.Plugin { return &halfway{} }})
}

// TestPartialPublishAcksThePrefixAndResendsTheRest: every message reaches
// the output exactly once although every batch fails half way, in process
// and isolated alike.
func TestPartialPublishAcksThePrefixAndResendsTheRest(t *testing.T) {
	for _, iso := range []bool{false, true} {
		t.Run(fmt.Sprint("isolated=", iso), func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "delivered.txt")
			doc := fmt.Sprintf(`[agent]
device_id = "GW-HALF"
data_dir = %q
[[inputs.testburst]]
backlog = 40
size = 100
every = "1h"
[[outputs.testhalfway]]
path = %q
buffer = "memory"
`, dir, out)
			cfg, err := config.Parse("half.toml", []byte(doc), os.LookupEnv)
			if err != nil {
				t.Fatal(err)
			}
			a := New(cfg, Options{Isolation: func(p *config.Plugin) bool { return iso && p.Kind == sdk.KindOutput }})
			if err := a.Open(context.Background(), true); err != nil {
				t.Fatal(err)
			}
			a.Start()
			defer a.Stop(context.Background())
			readLines(t, out, 40)
			waitFor(t, "the queue to empty", func() bool { return a.outputs[0].q.Stats().Depth == 0 })
			lines := readLines(t, out, 40)
			if len(lines) != 40 {
				t.Fatalf("%d messages delivered, want each of 40 once:\n%s", len(lines), strings.Join(lines, "\n"))
			}
			for i, l := range lines {
				if l != fmt.Sprintf("slow/%d", i) {
					t.Fatalf("delivery %d is %s, want slow/%d", i, l, i)
				}
			}
			if got := a.outputs[0].in.published.Load(); got != 40 {
				t.Errorf("published counter %d, want 40", got)
			}
		})
	}
}

func TestBatchesAreCappedByBytesAndPeekFollows(t *testing.T) {
	big := make([]sdk.Message, 256)
	for i := range big {
		big[i].Payload = make([]byte, 57<<10)
	}
	batch, bytes := nextBatch(big)
	if len(batch) != 4 || bytes > maxBatchBytes {
		t.Fatalf("57 KB messages: batch of %d (%d bytes), want 4 within %d", len(batch), bytes, maxBatchBytes)
	}
	huge := []sdk.Message{{Payload: make([]byte, 2*maxBatchBytes)}, {}}
	if batch, _ := nextBatch(huge); len(batch) != 1 {
		t.Fatalf("one message larger than the cap: batch of %d, want it alone", len(batch))
	}
	peek := nextPeek(publishBatch, 256, 4)
	if peek != 5 {
		t.Fatalf("after a trimmed batch of 4, peek %d, want 5", peek)
	}
	for range 10 {
		peek = nextPeek(peek, peek, peek) // small messages again, queue full
	}
	if peek != publishBatch {
		t.Fatalf("peek grew back to %d, want %d", peek, publishBatch)
	}
	if got := nextPeek(64, 10, 10); got != 64 {
		t.Fatalf("a short queue changed peek to %d", got)
	}
	if publishBudget(maxBatchBytes) <= publishBudget(0) || publishBudget(0) != publishBaseBudget {
		t.Fatalf("budget does not grow with bytes: %v, %v", publishBudget(0), publishBudget(maxBatchBytes))
	}
}
