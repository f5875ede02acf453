package runtimecfg

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// TrimStartup drops this process's page-table entries for the read-only
// mappings of its own executable (code, read-only data, the function
// tables), so that what stays resident is what the process still uses.
//
// Why: every package's initialisation, the configuration parser, each
// plugin's Init and the connection set-up run once, from code spread over
// the whole 20 MB of text and read-only data, and the kernel maps every
// page in a 64 KB window around each page touched (fault-around). After
// start-up a gateway's file-backed RSS is ~17 MB of which ~3 MB is touched
// again in the next 10 s (the pages' referenced bits, /proc/PID/clear_refs).
//
// Why this is honest: the pages are clean copies of the executable file;
// nothing is lost or hidden. A page the process uses again is mapped again
// by its next access (read back from the file if it was evicted, see
// evictUnmapped) and is counted in RSS and PSS as before; the kernel would
// unmap and evict the others under memory pressure anyway. So the figure
// after the trim is the process's working set, and it stays there
// (measured minutes later, README "## Performance"). Writable mappings (.data, .bss,
// whose pages the process has changed) and any read-only mapping that
// holds anonymous (copied-on-write) pages, such as a RELRO segment of an
// externally linked binary or text under a debugger's breakpoints, are
// never touched: dropping those would lose data.
func TrimStartup() error {
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &st); err != nil {
		return err
	}
	// Read as it is parsed, not whole: every process of the tree trims at
	// once, and a trim that leaves ~100 KB of garbage (the file and its
	// fields) grows a small heap that no collection returns soon.
	smaps, err := os.Open("/proc/self/smaps")
	if err != nil {
		return err
	}
	exe, _ := os.Readlink("/proc/self/exe")
	dev := fmt.Sprintf("%02x:%02x", unix.Major(st.Dev), unix.Minor(st.Dev))
	ranges := trimRanges(smaps, dev, st.Ino, exe)
	smaps.Close()
	for _, r := range ranges {
		// Addresses from /proc, not Go pointers: the raw system call.
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, r.lo, r.hi-r.lo, unix.MADV_DONTNEED); e != 0 {
			return fmt.Errorf("madvise %x-%x: %w", r.lo, r.hi, e)
		}
		// From now on a fault reads the page it needs, not a window
		// around it (see evictUnmapped).
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, r.lo, r.hi-r.lo, unix.MADV_RANDOM); e != 0 {
			return fmt.Errorf("madvise random %x-%x: %w", r.lo, r.hi, e)
		}
	}
	return evictUnmapped()
}

// trimSignal is how the gateway asks a plugin process of its executable to
// trim with it (TrimAgainAfter). A plugin process that has not called
// TrimOnSignal would die of it: only processes that did are peers.
const trimSignal = syscall.SIGUSR2

// TrimOnSignal makes this process trim (TrimStartup) whenever it receives
// trimSignal from the gateway that started it (AddTrimPeer there). Call it
// before the process can be reached, first thing in a plugin process.
func TrimOnSignal() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, trimSignal)
	go func() {
		for range c {
			_ = TrimStartup()
		}
	}()
}

func signalTrim(p *os.Process) error { return p.Signal(trimSignal) }

// evictUnmapped drops the executable's pages that no process maps from the
// page cache.
//
// Why: dropping the page-table entries alone leaves the pages in the page
// cache, and the kernel maps every cached page in a 64 KB window around
// each page a process touches (fault-around, a system-wide setting): after
// the trim a gateway's executable came back to ~9.7 MB resident of which
// ~2 MB was touched in the next 10 s (/proc/PID/clear_refs and the
// Referenced lines of smaps). With the unused pages out of the cache and
// read-ahead off for these mappings (MADV_RANDOM above), a fault maps
// little more than the page it needs: ~4.5 MB. The kernel would reclaim
// those cold pages under memory pressure anyway; this frees them on a box
// that has memory to spare too, so the process's figures show what it uses.
//
// The cost: code run for the first time later (a reload, the console's
// first request) is read from the disk a page at a time, ~270 reads for a
// gateway's steady state here, once. Pages another process maps (the
// plugin processes run the same executable) stay cached. A copy of the
// executable written moments ago (a fresh install, the bench) has dirty
// pages the kernel would not drop, hence the fdatasync first; errors
// (a read-only file system, no such call) leave the cache as it was.
func evictUnmapped() error {
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil
	}
	defer f.Close()
	fd := int(f.Fd())
	_ = unix.Fdatasync(fd)
	_ = unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED)
	return nil
}

// span is an address range [lo, hi).
type span struct{ lo, hi uintptr }

// trimRanges picks from /proc/self/smaps the mappings TrimStartup may drop:
// those of the file dev:ino or named exe (on overlayfs, a container's root,
// the mappings show the underlying file's device and inode), not writable,
// private, with no anonymous page.
func trimRanges(smaps io.Reader, dev string, ino uint64, exe string) []span {
	var out []span
	var cur span
	ok := false // the current mapping qualifies so far
	flush := func() {
		if ok {
			out = append(out, cur)
		}
		ok = false
	}
	sc := bufio.NewScanner(smaps)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		// A mapping's header starts with its address in lower-case hex;
		// its fields ("Rss:", "Anonymous:") with an upper-case name.
		if c := line[0]; c >= '0' && c <= '9' || c >= 'a' && c <= 'f' {
			f := strings.Fields(string(line))
			if len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
				// lo-hi perms offset dev inode [path].
				flush()
				lo, hi, found := strings.Cut(f[0], "-")
				l, err1 := strconv.ParseUint(lo, 16, 64)
				h, err2 := strconv.ParseUint(hi, 16, 64)
				i, err3 := strconv.ParseUint(f[4], 10, 64)
				perms := f[1]
				same := f[3] == dev && i == ino && i != 0 ||
					exe != "" && len(f) >= 6 && strings.Join(f[5:], " ") == exe
				ok = found && err1 == nil && err2 == nil && err3 == nil && h > l &&
					len(perms) == 4 && perms[0] == 'r' && perms[1] == '-' && perms[3] == 'p' && same
				cur = span{uintptr(l), uintptr(h)}
			}
			continue
		}
		if v, found := bytes.CutPrefix(line, []byte("Anonymous:")); ok && found {
			if f := bytes.Fields(v); len(f) > 0 && string(f[0]) != "0" {
				ok = false
			}
		}
	}
	flush()
	return out
}
