package runtimecfg

import (
	"path"
	"strconv"
	"strings"
)

// unlimited is where a cgroup v1 limit means "none" (the kernel reports
// the largest page-aligned int64 there).
const unlimited = 1 << 60

// cgroupMemoryLimit is the tightest memory limit over the process's cgroup
// and its ancestors (cgroup v2 memory.max, or v1 memory.limit_in_bytes),
// read through readFile; 0 when there is none or it cannot be read.
func cgroupMemoryLimit(readFile func(string) ([]byte, error)) int64 {
	b, err := readFile("/proc/self/cgroup")
	if err != nil {
		return 0
	}
	var best int64
	try := func(file string) {
		v, err := readFile(file)
		if err != nil {
			return
		}
		t := strings.TrimSpace(string(v))
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil || n <= 0 || n >= unlimited { // "max", or v1's none
			return
		}
		if best == 0 || n < best {
			best = n
		}
	}
	for _, line := range strings.Split(string(b), "\n") {
		// hierarchy-ID:controllers:path
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 || !strings.HasPrefix(f[2], "/") {
			continue
		}
		var dir, file string
		switch {
		case f[0] == "0" && f[1] == "":
			dir, file = "/sys/fs/cgroup", "memory.max"
		case hasController(f[1], "memory"):
			dir, file = "/sys/fs/cgroup/memory", "memory.limit_in_bytes"
		default:
			continue
		}
		for p := path.Clean(f[2]); ; p = path.Dir(p) {
			try(path.Join(dir, p, file))
			if p == "/" {
				break
			}
		}
	}
	return best
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}
