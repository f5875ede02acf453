package runtimecfg

import (
	"os"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"
)

func TestForLetsTheEnvironmentWin(t *testing.T) {
	env := func(kv map[string]string) func(string) string {
		return func(k string) string { return kv[k] }
	}
	def := For(env(nil), 0)
	if def.MaxProcs != 1 || def.MemoryLimit != 0 || def.TrimAfter != startupGrace || !def.NoHeapProfile {
		t.Errorf("defaults: %+v", def)
	}
	if s := For(env(nil), 100<<20); s.MemoryLimit != 80<<20 {
		t.Errorf("under a 100 MiB cgroup limit: a heap limit of %d, want 80 MiB", s.MemoryLimit)
	}
	s := For(env(map[string]string{"GOMAXPROCS": "4", "GOMEMLIMIT": "50MiB"}), 100<<20)
	if s.MaxProcs != 0 || s.MemoryLimit != 0 {
		t.Errorf("GOMAXPROCS and GOMEMLIMIT set: Apply would still set %+v", s)
	}
	if s.TrimAfter != startupGrace {
		t.Errorf("the trim does not depend on the environment: %+v", s)
	}
	if s := For(env(map[string]string{"GODEBUG": "gctrace=1,memprofilerate=1"}), 0); s.NoHeapProfile {
		t.Errorf("GODEBUG=memprofilerate=1: heap profiling would be switched off")
	}
}

func TestCgroupMemoryLimit(t *testing.T) {
	files := func(m map[string]string) func(string) ([]byte, error) {
		return func(name string) ([]byte, error) {
			if v, ok := m[name]; ok {
				return []byte(v), nil
			}
			return nil, os.ErrNotExist
		}
	}
	for _, c := range []struct {
		name  string
		files map[string]string
		want  int64
	}{
		{"v2 service limit", map[string]string{"/proc/self/cgroup": "0::/system.slice/edgepipe.service\n",
			"/sys/fs/cgroup/system.slice/edgepipe.service/memory.max": "268435456\n",
			"/sys/fs/cgroup/system.slice/memory.max":                  "max\n"}, 256 << 20},
		{"v2 a parent is tighter", map[string]string{"/proc/self/cgroup": "0::/a/b\n",
			"/sys/fs/cgroup/a/b/memory.max": "max\n", "/sys/fs/cgroup/a/memory.max": "1048576\n"}, 1 << 20},
		{"v2 no limit", map[string]string{"/proc/self/cgroup": "0::/\n", "/sys/fs/cgroup/memory.max": "max\n"}, 0},
		{"v1 limit", map[string]string{"/proc/self/cgroup": "9:name=systemd:/\n4:cpu,memory:/box\n0::/\n",
			"/sys/fs/cgroup/memory/box/memory.limit_in_bytes": "536870912\n"}, 512 << 20},
		{"v1 unlimited", map[string]string{"/proc/self/cgroup": "4:memory:/box\n",
			"/sys/fs/cgroup/memory/box/memory.limit_in_bytes": "9223372036854771712\n"}, 0},
		{"unreadable", map[string]string{}, 0},
		{"garbage", map[string]string{"/proc/self/cgroup": "::\n:memory\nx:memory:relative\n"}, 0},
	} {
		if got := cgroupMemoryLimit(files(c.files)); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

func FuzzCgroupMemoryLimit(f *testing.F) {
	f.Add("0::/system.slice/x\n4:memory:/box\n", "268435456")
	f.Add("4:cpu,memory:/../..\n", "max")
	f.Fuzz(func(t *testing.T, cgroup, limit string) {
		n := cgroupMemoryLimit(func(name string) ([]byte, error) {
			if name == "/proc/self/cgroup" {
				return []byte(cgroup), nil
			}
			return []byte(limit), nil
		})
		if n < 0 || n >= unlimited {
			t.Fatalf("limit %d", n)
		}
	})
}

// The runtime's default rate is what Apply recognises as "nobody chose".
func TestRuntimeMemProfileRateIsTheDefault(t *testing.T) {
	if runtime.MemProfileRate != runtimeMemProfileRate && !strings.Contains(os.Getenv("GODEBUG"), "memprofilerate=") {
		t.Errorf("runtime.MemProfileRate is %d, runtimeMemProfileRate %d", runtime.MemProfileRate, runtimeMemProfileRate)
	}
}

var sink [][]byte

// settle returns the start-up's garbage to the system: the heap's freed
// memory is released, not kept for a next cycle paced from the peak.
func TestSettleReturnsStartupGarbage(t *testing.T) {
	for i := 0; i < 64; i++ {
		sink = append(sink, make([]byte, 1<<20))
	}
	sink = nil
	released := func() uint64 {
		s := []metrics.Sample{{Name: "/memory/classes/heap/released:bytes"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	before := released()
	settle()
	if after := released(); after < before+32<<20 {
		t.Errorf("released heap %d -> %d bytes after 64 MB of garbage", before, after)
	}
}

// Calls to TrimAgainAfter share one timer: the last call's time stands.
func TestTrimAgainAfterCoalesces(t *testing.T) {
	TrimAgainAfter(time.Hour)
	retrimMu.Lock()
	first := retrim
	retrimMu.Unlock()
	TrimAgainAfter(2 * time.Hour)
	retrimMu.Lock()
	second := retrim
	retrimMu.Unlock()
	if first == nil || first != second {
		t.Fatalf("two calls made two timers (%p, %p)", first, second)
	}
	second.Stop()
}
