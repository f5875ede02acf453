package runtimecfg

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
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
	got := trimRanges([]byte(smapsFixture), "fd:01", 4242, "")
	want := []span{{0x400000, 0xd56000}, {0xd56000, 0x17e9000}}
	if len(got) != len(want) {
		t.Fatalf("got %x, want %x", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("range %d: got %x, want %x", i, got[i], want[i])
		}
	}
	if r := trimRanges([]byte(smapsFixture), "fd:01", 0, ""); len(r) != 0 {
		t.Errorf("inode 0 (anonymous mappings) must never qualify: %x", r)
	}
	// On overlayfs the mappings name the file but not stat's device and
	// inode: the path decides, with the same rules.
	if r := trimRanges([]byte(smapsFixture), "00:2a", 77, "/usr/bin/edgepipe"); len(r) != 2 || r[0] != want[0] || r[1] != want[1] {
		t.Errorf("by path: got %x, want %x", r, want)
	}
	if r := trimRanges([]byte(smapsFixture), "00:2a", 77, ""); len(r) != 0 {
		t.Errorf("neither device and inode nor path match: %x", r)
	}
}

func FuzzTrimRanges(f *testing.F) {
	f.Add([]byte(smapsFixture), "fd:01", uint64(4242), "/usr/bin/edgepipe")
	f.Add([]byte("0-1 r-xp 0 fd:01 1\n"), "fd:01", uint64(1), "")
	f.Add([]byte("ffffffffffffffff-0 r--p"), "", uint64(0), "x")
	f.Fuzz(func(t *testing.T, b []byte, dev string, ino uint64, exe string) {
		for _, r := range trimRanges(b, dev, ino, exe) {
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
