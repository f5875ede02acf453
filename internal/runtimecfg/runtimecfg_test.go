package runtimecfg

import (
	"os"
	"runtime"
	"strings"
	"testing"
)

func TestForLetsTheEnvironmentWin(t *testing.T) {
	env := func(kv map[string]string) func(string) string {
		return func(k string) string { return kv[k] }
	}
	def := For(env(nil))
	if def.MaxProcs != 1 || def.GCPercent != defaultGCPercent || def.TrimAfter != startupGrace || !def.NoHeapProfile {
		t.Errorf("defaults: %+v", def)
	}
	s := For(env(map[string]string{"GOMAXPROCS": "4", "GOGC": "200"}))
	if s.MaxProcs != 0 || s.GCPercent != 0 {
		t.Errorf("GOMAXPROCS and GOGC set: Apply would still set %+v", s)
	}
	if s.TrimAfter != startupGrace {
		t.Errorf("the trim does not depend on the environment: %+v", s)
	}
	if s := For(env(map[string]string{"GODEBUG": "gctrace=1,memprofilerate=1"})); s.NoHeapProfile {
		t.Errorf("GODEBUG=memprofilerate=1: heap profiling would be switched off")
	}
	if s := For(env(map[string]string{"GOGC": "off"})); s.GCPercent != 0 || s.MaxProcs != 1 {
		t.Errorf("GOGC=off: %+v", s)
	}
}

// The runtime's default rate is what Apply recognises as "nobody chose".
func TestRuntimeMemProfileRateIsTheDefault(t *testing.T) {
	if runtime.MemProfileRate != runtimeMemProfileRate && !strings.Contains(os.Getenv("GODEBUG"), "memprofilerate=") {
		t.Errorf("runtime.MemProfileRate is %d, runtimeMemProfileRate %d", runtime.MemProfileRate, runtimeMemProfileRate)
	}
}
