package runtimecfg

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

const smapsFixture = `00400000-00d56000 r-xp 00000000 fd:01 4242                               /usr/bin/edgepipe
Size:               9560 kB
Rss:                8472 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
00d56000-017e9000 r--p 00956000 fd:01 4242                               /usr/bin/edgepipe
Size:              10828 kB
Anonymous:             0 kB
VmFlags: rd mr mw me
017e9000-01800000 r--p 013e9000 fd:01 4242                               /usr/bin/edgepipe
Size:                 92 kB
Anonymous:             8 kB
VmFlags: rd mr mw me ac
01800000-01bdc000 rw-p 01400000 fd:01 4242                               /usr/bin/edgepipe
Anonymous:           144 kB
01bdc000-03c23000 rw-p 00000000 00:00 0
Anonymous:           128 kB
7f73de433000-7f73de459000 r--p 00000000 fd:01 99                         /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:             0 kB
7f73de459000-7f73de5af000 r-xp 00026000 fd:02 4242                       /other/device/same/inode
Anonymous:             0 kB
7f73de5af000-7f73de602000 r-xs 00000000 fd:01 4242                       /usr/bin/edgepipe
Anonymous:             0 kB
`

// Only the executable's private read-only mappings without a copied page
// qualify: not a RELRO-like mapping with anonymous pages, not the writable
// data, not another file, not the same inode on another device, not a
// shared mapping.
func TestTrimRangesPicksOnlyCleanReadOnlyExecutableMappings(t *testing.T) {
	got := trimRanges(strings.NewReader(smapsFixture), "fd:01", 4242, "")
	want := []span{{0x400000, 0xd56000}, {0xd56000, 0x17e9000}}
	if len(got) != len(want) {
		t.Fatalf("got %x, want %x", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("range %d: got %x, want %x", i, got[i], want[i])
		}
	}
	if r := trimRanges(strings.NewReader(smapsFixture), "fd:01", 0, ""); len(r) != 0 {
		t.Errorf("inode 0 (anonymous mappings) must never qualify: %x", r)
	}
	// On overlayfs the mappings name the file but not stat's device and
	// inode: the path decides, with the same rules.
	if r := trimRanges(strings.NewReader(smapsFixture), "00:2a", 77, "/usr/bin/edgepipe"); len(r) != 2 || r[0] != want[0] || r[1] != want[1] {
		t.Errorf("by path: got %x, want %x", r, want)
	}
	if r := trimRanges(strings.NewReader(smapsFixture), "00:2a", 77, ""); len(r) != 0 {
		t.Errorf("neither device and inode nor path match: %x", r)
	}
}

func FuzzTrimRanges(f *testing.F) {
	f.Add([]byte(smapsFixture), "fd:01", uint64(4242), "/usr/bin/edgepipe")
	f.Add([]byte("0-1 r-xp 0 fd:01 1\n"), "fd:01", uint64(1), "")
	f.Add([]byte("ffffffffffffffff-0 r--p"), "", uint64(0), "x")
	f.Fuzz(func(t *testing.T, b []byte, dev string, ino uint64, exe string) {
		for _, r := range trimRanges(bytes.NewReader(b), dev, ino, exe) {
			if r.hi <= r.lo {
				t.Fatalf("empty or inverted range %x", r)
			}
		}
	})
}

// exeRSS is the resident kB of this process's mappings of its executable.
func exeRSS(t *testing.T) int {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &st); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	ino := strconv.FormatUint(st.Ino, 10)
	kb, in := 0, false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			in = f[4] == ino
			continue
		}
		if in && len(f) >= 2 && f[0] == "Rss:" {
			n, _ := strconv.Atoi(f[1])
			kb += n
		}
	}
	return kb
}

// The trim drops resident pages of the executable, and the process goes
// on running the code it dropped (it is mapped again on use).
func TestTrimStartupDropsExecutablePagesAndTheProcessRunsOn(t *testing.T) {
	before := exeRSS(t)
	if before == 0 {
		t.Skip("no resident pages of the executable found in /proc/self/smaps")
	}
	if err := TrimStartup(); err != nil {
		t.Fatal(err)
	}
	after := exeRSS(t) // this very code runs from pages mapped again
	if after >= before {
		t.Errorf("executable RSS %d kB before the trim, %d kB after: nothing dropped", before, after)
	}
	// Code and read-only data used after the trim still work.
	if s := strings.Repeat(strconv.Itoa(42), 3); s != "424242" {
		t.Errorf("got %q", s)
	}
	t.Logf("executable RSS: %d kB -> %d kB", before, after)
}

// cachedUnmapped counts the pages of the file-backed range [lo, hi) of
// this process's address space that are in the page cache (mincore(2):
// for a file mapping it reports the cache) but not mapped by this process
// (the present bit of /proc/self/pagemap).
func cachedUnmapped(t *testing.T, pagemap *os.File, lo, hi uintptr) (cached, unmapped int) {
	t.Helper()
	n := int((hi - lo + 4095) / 4096)
	vec := make([]byte, n)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, lo, hi-lo, uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatalf("mincore %x-%x: %v", lo, hi, e)
	}
	entries := make([]byte, 8*n)
	if _, err := pagemap.ReadAt(entries, int64(lo/4096*8)); err != nil {
		t.Fatalf("pagemap %x-%x: %v", lo, hi, err)
	}
	for i, b := range vec {
		if b&1 == 0 {
			continue
		}
		cached++
		if entries[8*i+7]&0x80 == 0 { // bit 63: present
			unmapped++
		}
	}
	return cached, unmapped
}

// After the trim the executable's pages that nothing maps are out of the
// page cache, and the trimmed mappings read a page at a time (VmFlags rr):
// a later fault cannot bring a 64 KB neighbourhood back. The test binary
// was linked moments ago and nothing else maps it.
func TestTrimStartupEvictsUnusedPagesAndReadsAheadNoMore(t *testing.T) {
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &st); err != nil {
		t.Fatal(err)
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Readlink("/proc/self/exe")
	dev := fmt.Sprintf("%02x:%02x", unix.Major(st.Dev), unix.Minor(st.Dev))
	ranges := trimRanges(bytes.NewReader(smaps), dev, st.Ino, exe)
	if len(ranges) == 0 {
		t.Skip("no read-only mapping of the executable found in /proc/self/smaps")
	}
	pagemap, err := os.Open("/proc/self/pagemap")
	if err != nil {
		t.Skip(err)
	}
	defer pagemap.Close()
	count := func() (cached, unmapped int) {
		for _, r := range ranges {
			c, u := cachedUnmapped(t, pagemap, r.lo, r.hi)
			cached, unmapped = cached+c, unmapped+u
		}
		return cached, unmapped
	}
	// Make sure there is something to evict: the whole file cached.
	if b, err := os.ReadFile("/proc/self/exe"); err != nil || len(b) == 0 {
		t.Fatalf("read own executable: %v", err)
	}
	total := 0
	for _, r := range ranges {
		total += int((r.hi - r.lo) / 4096)
	}
	cached, unmapped := count()
	if err := TrimStartup(); err != nil {
		t.Fatal(err)
	}
	cachedAfter, unmappedAfter := count()
	t.Logf("executable's read-only mappings, %d pages: %d cached (%d of them not mapped) -> %d (%d)", total, cached, unmapped, cachedAfter, unmappedAfter)
	// Without the eviction every page stays cached (the trim only unmaps):
	// with it, those the test's code does not touch again go.
	if cachedAfter*10 > cached*9 {
		t.Errorf("cached pages: %d before the trim, %d after: the unused ones were not evicted", cached, cachedAfter)
	}
	smaps, err = os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range ranges {
		if !mappingHasFlag(smaps, r.lo, "rr") {
			t.Errorf("mapping at %x: no rr (random read) flag after the trim", r.lo)
		}
	}
}

// mappingHasFlag reports whether the mapping starting at lo lists flag in
// its VmFlags line.
func mappingHasFlag(smaps []byte, lo uintptr, flag string) bool {
	in := false
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			start, _, _ := strings.Cut(f[0], "-")
			v, _ := strconv.ParseUint(start, 16, 64)
			in = uintptr(v) == lo
			continue
		}
		if in && len(f) >= 1 && f[0] == "VmFlags:" {
			for _, x := range f[1:] {
				if x == flag {
					return true
				}
			}
			return false
		}
	}
	return false
}
