package main

import (
	"os"
	"slices"
	"testing"
	"time"
)

const rollup = `55d9e86fb000-7fff402cb000 ---p 00000000 00:00 0                          [rollup]
Rss:               27400 kB
Pss:               25812 kB
Pss_Dirty:          8200 kB
Pss_Anon:           8192 kB
Pss_File:          17600 kB
Pss_Shmem:            20 kB
Shared_Clean:       1604 kB
Private_Dirty:       112 kB
`

func TestParseKBSmapsRollup(t *testing.T) {
	kv := parseKB([]byte(rollup))
	for k, want := range map[string]float64{"Rss": 27400, "Pss": 25812, "Pss_Anon": 8192, "Pss_File": 17600, "Pss_Shmem": 20} {
		if kv[k] != want {
			t.Errorf("%s = %v, want %v", k, kv[k], want)
		}
	}
	if len(kv) != 8 {
		t.Errorf("%d keys, want 8 (the address header is not one): %v", len(kv), kv)
	}
}

func TestParseKBStatus(t *testing.T) {
	kv := parseKB([]byte("Name:\tedgepipe (x): y\nVmHWM:\t   30300 kB\nVmRSS:\t   29100 kB\nThreads:\t7\n"))
	if kv["VmRSS"] != 29100 || kv["VmHWM"] != 30300 || len(kv) != 2 {
		t.Errorf("got %v", kv)
	}
}

func TestParseStatPPID(t *testing.T) {
	for _, c := range []struct {
		in   string
		ppid int
		ok   bool
	}{
		{"123 (edgepipe) S 45 123 123 0 -1", 45, true},
		{"123 (a) b) (c) R 7 1 1", 7, true}, // comm with spaces and parentheses
		{"123 (edgepipe", 0, false},
		{"123 (x) S", 0, false},
		{"123 (x) S abc", 0, false},
	} {
		ppid, ok := parseStatPPID([]byte(c.in))
		if ppid != c.ppid || ok != c.ok {
			t.Errorf("parseStatPPID(%q) = %d, %v; want %d, %v", c.in, ppid, ok, c.ppid, c.ok)
		}
	}
}

// TestMemOfSelf reads this process's own memory: PSS is never above RSS
// and its parts add up to it.
func TestMemOfSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/smaps_rollup"); err != nil {
		t.Skip("no /proc/self/smaps_rollup:", err)
	}
	m := memOf(os.Getpid())
	if m.PSS <= 0 || m.PSS > m.RSS+0.01 {
		t.Errorf("PSS %.2f MB, RSS %.2f MB", m.PSS, m.RSS)
	}
	if d := m.PSS - (m.PSSAnon + m.PSSFile + m.PSSShmem); d > 0.1 || d < -0.1 {
		t.Errorf("PSS %.2f MB != anon %.2f + file %.2f + shmem %.2f", m.PSS, m.PSSAnon, m.PSSFile, m.PSSShmem)
	}
	if pids := tree(os.Getpid()); len(pids) == 0 || pids[0] != os.Getpid() {
		t.Errorf("tree(self) = %v", pids)
	}
}

func FuzzParseKB(f *testing.F) {
	f.Add([]byte(rollup))
	f.Add([]byte("VmRSS:\t 1 kB\n:\nkB\n: 1 kB"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = parseKB(b)
		_, _ = parseStatPPID(b)
		_ = parseTelegrafBatch(b)
	})
}

func TestParseTelegrafBatch(t *testing.T) {
	for in, want := range map[string][]telegrafMetric{
		`{"metrics":[{"fields":{"r0000":1,"r0001":2},"name":"modbus","tags":{"name":"plc1","slave_id":"1","type":"holding_register"},"timestamp":1764633600123}]}`: {{1764633600123, 2}},
		`{"metrics":[{"fields":{"a":1},"name":"x","tags":{},"timestamp":5},{"fields":{"b":1.5,"c":-2,"d":3},"name":"y","tags":{"k":"v"},"timestamp":7}]}`:          {{5, 1}, {7, 3}},
		`{"metrics":[]}`:           nil,
		`{"fields":{"a":1`:         nil, // cut short: an unterminated object is not counted
		`{"fields":{"a":1},"x":2}`: {{0, 1}},
	} {
		if got := parseTelegrafBatch([]byte(in)); !slices.Equal(got, want) {
			t.Errorf("parseTelegrafBatch(%s) = %v, want %v", in, got, want)
		}
	}
}

func TestGatheredBetween(t *testing.T) {
	var g gathered
	g.add([]telegrafMetric{{100, 10}, {200, 10}, {300, 10}})
	if n, complete := g.between(150, 300); n != 10 || !complete {
		t.Errorf("between(150, 300) = %d, %v; want 10, true", n, complete)
	}
	if n, complete := g.between(150, 400); n != 20 || complete {
		t.Errorf("between(150, 400) = %d, %v; want 20, false", n, complete)
	}
	if g.last() != 300 {
		t.Errorf("last = %d", g.last())
	}
}

func TestLoadWindow(t *testing.T) {
	for _, c := range []struct{ interval, want, got time.Duration }{
		{time.Second, 10 * time.Second, 10 * time.Second},
		{time.Second, 10400 * time.Millisecond, 10 * time.Second},
		{time.Second, 10600 * time.Millisecond, 11 * time.Second},
		{5 * time.Second, time.Second, 5 * time.Second}, // at least one interval
		{100 * time.Millisecond, 20 * time.Second, 20 * time.Second},
	} {
		if got := (load{Interval: c.interval}).window(c.want); got != c.got {
			t.Errorf("window(%s) at %s = %s, want %s", c.want, c.interval, got, c.got)
		}
	}
}

// TestRunningOutside finds this test process as running its own binary
// when it is not in the tree given, and nothing else.
func TestRunningOutside(t *testing.T) {
	self := os.Getpid()
	if got := runningOutside(self, []int{self}); len(got) != 0 {
		t.Errorf("runningOutside(self, [self]) = %v, want none", got)
	}
	if got := runningOutside(self, nil); !slices.Equal(got, []int{self}) {
		t.Errorf("runningOutside(self, nil) = %v, want [%d]", got, self)
	}
}
