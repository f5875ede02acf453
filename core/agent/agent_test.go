package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/core/isolate"
	"github.com/edgepipe/edgepipe/plugins/sdk"

	_ "github.com/edgepipe/edgepipe/plugins/inputs/synthetic"
	_ "github.com/edgepipe/edgepipe/plugins/outputs/file"
)

// The test binary serves its own plugins when re-executed, exactly like
// the edgepipe binary does.
func TestMain(m *testing.M) {
	isolate.MaybeServe()
	os.Exit(m.Run())
}

// scale doubles every numeric value: a processor whose effect shows.
type scale struct{}

func (scale) Init(_ context.Context, req *sdk.InitRequest) (*sdk.InitResponse, error) {
	_, err := sdk.DecodeConfig(req, &struct{}{})
	return &sdk.InitResponse{}, err
}
func (scale) Close(context.Context) error { return nil }
func (scale) Process(_ context.Context, f *sdk.Frame) (*sdk.Frame, error) {
	for i := range f.Batches {
		for j := range f.Batches[i].Points {
			p := &f.Batches[i].Points[j]
			if x, ok := p.Value.AsFloat(); ok {
				p.Value = sdk.Float(2 * x)
			}
		}
	}
	return f, nil
}

// render turns points into one message each, without timestamps, so runs
// can be compared; it counts its calls in its persisted state.
type render struct{ state sdk.State }

func (r *render) Init(_ context.Context, req *sdk.InitRequest) (*sdk.InitResponse, error) {
	r.state = req.State
	_, err := sdk.DecodeConfig(req, &struct{}{})
	return &sdk.InitResponse{}, err
}
func (*render) Close(context.Context) error { return nil }
func (r *render) Process(_ context.Context, f *sdk.Frame) (*sdk.Frame, error) {
	calls := 0
	if v, ok := r.state.Get("calls"); ok {
		fmt.Sscan(string(v), &calls)
	}
	r.state.Set("calls", []byte(fmt.Sprint(calls+1)))
	for _, b := range f.Batches {
		for _, p := range b.Points {
			f.Messages = append(f.Messages, sdk.Message{Topic: b.Device + "/" + p.Name,
				Payload: p.Value.AppendJSON(nil), QoS: 1})
		}
	}
	f.Batches = nil
	return f, nil
}

func init() {
	sdk.Register(sdk.Registration{Kind: sdk.KindProcessor, Name: "testscale", Factory: func() sdk.Plugin { return scale{} }})
	sdk.Register(sdk.Registration{Kind: sdk.KindProcessor, Name: "testrender", Factory: func() sdk.Plugin { return &render{} }})
}

func pipelineConfig(t *testing.T, out string) *config.Config {
	t.Helper()
	doc := fmt.Sprintf(`[agent]
device_id = "GW-T"
data_dir = %q
[[inputs.synthetic]]
device = "d"
points = 3
pattern = "constant"
interval = "20ms"
[[processors.testscale]]
[[processors.testrender]]
[[outputs.file]]
path = %q
buffer = "memory"
`, t.TempDir(), out)
	cfg, err := config.Parse("test.toml", []byte(doc), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// readLines waits until the file holds at least n lines.
func readLines(t *testing.T, path string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var lines []string
		if fh, err := os.Open(path); err == nil {
			sc := bufio.NewScanner(fh)
			for sc.Scan() {
				lines = append(lines, sc.Text())
			}
			fh.Close()
		}
		if len(lines) >= n {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d lines after 20s, want %d", path, len(lines), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func runPipeline(t *testing.T, isolated bool, n int) ([]string, *Agent, string) {
	out := filepath.Join(t.TempDir(), "out.txt")
	a := New(pipelineConfig(t, out), Options{Isolation: func(*config.Plugin) bool { return isolated }})
	if err := a.Open(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	a.Start()
	return readLines(t, out, n), a, out
}

func TestIsolatedAndInProcessGiveTheSameResult(t *testing.T) {
	local, la, _ := runPipeline(t, false, 30)
	la.Stop(context.Background())
	remote, ra, _ := runPipeline(t, true, 30)
	st := ra.Stats()
	ra.Stop(context.Background())
	for _, p := range st.Plugins {
		if !p.Isolated || p.Pid == 0 || p.Pid == os.Getpid() {
			t.Errorf("plugin %s not in its own process: %+v", p.ID, p)
		}
	}
	if strings.Join(local[:30], "\n") != strings.Join(remote[:30], "\n") {
		t.Fatalf("results differ:\nin-process:\n%s\nisolated:\n%s", strings.Join(local[:6], "\n"), strings.Join(remote[:6], "\n"))
	}
	if local[0] != "d/p0\t0" || local[2] != "d/p2\t4" {
		t.Fatalf("unexpected output (doubling lost?): %q", local[:3])
	}
}

func TestKilledPluginProcessIsRestartedAndPipelineResumes(t *testing.T) {
	before, a, out := runPipeline(t, true, 9)
	defer a.Stop(context.Background())
	pids := map[string]int{}
	for _, p := range a.Stats().Plugins {
		pids[p.ID] = p.Pid
	}
	victim := "processors.testscale#1"
	if err := syscall.Kill(pids[victim], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	after := readLines(t, out, len(before)+60)
	st := a.Stats()
	for _, p := range st.Plugins {
		switch p.ID {
		case victim:
			if p.Restarts != 1 || p.Pid == pids[victim] || p.Pid == 0 {
				t.Errorf("%s: restarts %d pid %d (was %d), want one restart with a new pid", p.ID, p.Restarts, p.Pid, pids[p.ID])
			}
		default:
			if p.Restarts != 0 || p.Pid != pids[p.ID] {
				t.Errorf("%s was disturbed: restarts %d pid %d (was %d)", p.ID, p.Restarts, p.Pid, pids[p.ID])
			}
		}
	}
	// Frames after the restart are still doubled: the new process was
	// initialised like the old one.
	last := after[len(after)-3:]
	if last[0] != "d/p0\t0" || last[1] != "d/p1\t2" || last[2] != "d/p2\t4" {
		t.Fatalf("after restart: %q", last)
	}
}

func TestPluginStatePersistsAcrossRuns(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out.txt")
	cfg := pipelineConfig(t, out)
	calls := func() int {
		b, err := os.ReadFile(filepath.Join(cfg.Agent.DataDir, "state", "processors.testrender_1.json"))
		if err != nil {
			t.Fatal(err)
		}
		var st map[string][]byte
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(string(st["calls"]))
		return n
	}
	var seen []int
	for run := 1; run <= 2; run++ {
		// The second run is isolated: state crosses the process boundary.
		a := New(cfg, Options{Isolation: func(*config.Plugin) bool { return run == 2 }})
		if err := a.Open(context.Background(), true); err != nil {
			t.Fatal(err)
		}
		a.Start()
		readLines(t, out, 3*5*run)
		a.Stop(context.Background())
		seen = append(seen, calls())
	}
	if seen[0] < 5 || seen[1] < seen[0]+5 {
		t.Fatalf("render calls after run 1: %d, after run 2: %d; the count must carry over", seen[0], seen[1])
	}
}

func TestOpenReportsEveryPluginError(t *testing.T) {
	doc := `[agent]
device_id = "GW-T"
[[inputs.synthetic]]
points = -4
[[inputs.synthetic]]
device = "x"
pattern = "zigzag"
[[outputs.file]]
colour = 1
`
	cfg, err := config.Parse("bad.toml", []byte(doc), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	for _, iso := range []bool{false, true} {
		a := New(cfg, Options{DryRun: true, Isolation: func(*config.Plugin) bool { return iso }})
		err = a.Open(context.Background(), true)
		got := fmt.Sprint(err)
		for _, want := range []string{"bad.toml:4: inputs.synthetic#1.points: want 0 to 1000000, got -4",
			"bad.toml:7: inputs.synthetic#2.pattern: want sine",
			"bad.toml:9: outputs.file#1.colour: unknown key"} {
			if !strings.Contains(got, want) {
				t.Errorf("isolated=%v: missing %q in:\n%s", iso, want, got)
			}
		}
	}
}
