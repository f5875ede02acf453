package main

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// What a process tree costs, read from /proc: the same functions measure
// the gateway with its plugin processes and Telegraf with its children, so
// that the two rows of a table are counted alike.

// tree lists root and every process descended from it (parents first).
func tree(root int) []int {
	kids := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if ppid, ok := parseStatPPID(b); ok {
			kids[ppid] = append(kids[ppid], pid)
		}
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, kids[out[i]]...)
	}
	return out
}

// parseStatPPID reads the parent pid from /proc/PID/stat: "pid (comm) state
// ppid ...". The command name may hold spaces and parentheses, so the
// fields are counted from its last ')'.
func parseStatPPID(b []byte) (int, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(f[1])
	return ppid, err == nil
}

// cpuSeconds sums the CPU time of the processes: the on-CPU nanoseconds of
// every thread from /proc/<pid>/task/<tid>/schedstat, exact where the
// user+system ticks of /proc/<pid>/stat are sampled 100 times a second
// (too coarse for a process that runs in bursts of microseconds). Threads
// that exited are missed; Go rarely ends its threads.
func cpuSeconds(pids []int) float64 {
	var total float64
	for _, pid := range pids {
		dir := "/proc/" + strconv.Itoa(pid) + "/task/"
		tasks, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, t := range tasks {
			b, err := os.ReadFile(dir + t.Name() + "/schedstat")
			if err != nil {
				continue
			}
			if f := strings.Fields(string(b)); len(f) > 0 {
				ns, _ := strconv.ParseFloat(f[0], 64)
				total += ns / 1e9
			}
		}
	}
	return total
}

// mem is a process's (or a tree's) memory in MB.
type mem struct {
	RSS, HWM float64 // VmRSS, VmHWM (peak RSS), from status
	// Proportional set size, from smaps_rollup: every page divided by the
	// number of processes that map it, so summed over a tree the pages its
	// processes share (the executable) count once, and pages shared with
	// processes outside it (libc.so, a binary another process also runs)
	// only in part.
	PSS, PSSAnon, PSSFile, PSSShmem float64
}

func (m *mem) add(o mem) {
	m.RSS += o.RSS
	m.HWM += o.HWM
	m.PSS += o.PSS
	m.PSSAnon += o.PSSAnon
	m.PSSFile += o.PSSFile
	m.PSSShmem += o.PSSShmem
}

// memOf reads one process's memory; a process that is gone reads as zero.
func memOf(pid int) mem {
	dir := "/proc/" + strconv.Itoa(pid) + "/"
	var m mem
	if b, err := os.ReadFile(dir + "status"); err == nil {
		kv := parseKB(b)
		m.RSS, m.HWM = kv["VmRSS"]/1024, kv["VmHWM"]/1024
	}
	if b, err := os.ReadFile(dir + "smaps_rollup"); err == nil {
		kv := parseKB(b)
		m.PSS, m.PSSAnon = kv["Pss"]/1024, kv["Pss_Anon"]/1024
		m.PSSFile, m.PSSShmem = kv["Pss_File"]/1024, kv["Pss_Shmem"]/1024
	}
	return m
}

// memOfAll sums memOf over the processes.
func memOfAll(pids []int) mem {
	var m mem
	for _, pid := range pids {
		m.add(memOf(pid))
	}
	return m
}

// parseKB reads the "Key:   123 kB" lines of /proc/PID/status or
// /proc/PID/smaps_rollup into a map of kB. Lines without a number (the
// rollup's address range header, "Name:  edgepipe") are skipped.
func parseKB(b []byte) map[string]float64 {
	kv := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			kv[strings.TrimSpace(key)] = v
		}
	}
	return kv
}

// linksLibc tells whether a process maps a shared libc: its file pages are
// shared with every other dynamically linked process on the machine, so
// its PSS counts them only in part, which a static build (CGO_ENABLED=0,
// as the release is built) cannot do. The bench says so beside the figure.
func linksLibc(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/maps")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 6 && strings.HasPrefix(filepath.Base(f[5]), "libc.so") {
			return true
		}
	}
	return false
}

// runningOutside lists the processes outside pids that run the same
// executable file as pid: they would share its pages and lower the tree's
// PSS below what the tree alone costs (the gateway is run from a copy of
// the bench for that reason).
func runningOutside(pid int, pids []int) []int {
	self, err := os.Stat("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		return nil
	}
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil || slices.Contains(pids, p) {
			continue
		}
		if fi, err := os.Stat("/proc/" + e.Name() + "/exe"); err == nil && os.SameFile(fi, self) {
			out = append(out, p)
		}
	}
	return out
}

// memSampler reads the PSS of a process tree every period, from this
// (the bench's) process: the reads cost the measured processes nothing.
// A Go heap's PSS rises and falls with its GC cycle, so the memory
// scenario reports the largest PSS over the window beside the last one.
type memSampler struct {
	stop chan struct{}
	done chan mem
}

func sampleMem(root int, period time.Duration) *memSampler {
	m := &memSampler{stop: make(chan struct{}), done: make(chan mem, 1)}
	go func() {
		var top mem
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			if cur := memOfAll(tree(root)); cur.PSS > top.PSS {
				top = cur
			}
			select {
			case <-m.stop:
				m.done <- top
				return
			case <-t.C:
			}
		}
	}()
	return m
}

// max stops the sampler and returns the sample of the largest PSS.
func (m *memSampler) max() mem {
	close(m.stop)
	return <-m.done
}
