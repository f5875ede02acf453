package queue

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func openT(t testing.TB, dir string, limit int64) *Disk {
	t.Helper()
	q, err := OpenDisk(dir, limit)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestDiskReopenReplaysUnacknowledgedOldestFirst(t *testing.T) {
	dir := t.TempDir()
	q := openT(t, dir, 0)
	q.Push(batch(0, 600))
	q.Push(batch(600, 400))
	q.Peek(300)
	q.Ack(300)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q = openT(t, dir, 0)
	defer q.Close()
	if st := q.Stats(); st.Depth != 700 {
		t.Fatalf("after reopen: %+v", st)
	}
	got, _ := q.Peek(1000)
	expectSeqs(t, got, 300, 700)
	// New messages go after the replayed ones.
	q.Push(batch(1000, 10))
	q.Ack(700)
	got, _ = q.Peek(100)
	expectSeqs(t, got, 1000, 10)
}

func TestDiskRefusesSecondOpener(t *testing.T) {
	dir := t.TempDir()
	q := openT(t, dir, 0)
	defer q.Close()
	if _, err := OpenDisk(dir, 0); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second open: %v", err)
	}
}

func segFiles(t testing.TB, dir string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	return m
}

func TestDiskSegmentsAreFreedAndLimitHolds(t *testing.T) {
	dir := t.TempDir()
	const limit = 1 << 20 // segments of 128 KiB
	q := openT(t, dir, limit)
	big := make([]byte, 900)
	n := 0
	for i := 0; i < 100; i++ {
		b := batch(n, 50)
		for j := range b {
			b[j].Payload = append(append([]byte(nil), b[j].Payload...), big...)
		}
		if err := q.Push(b); err != nil {
			t.Fatal(err)
		}
		n += 50
	}
	st := q.Stats()
	if st.Bytes > limit || st.Dropped == 0 || st.Depth+int(st.Dropped) != n {
		t.Fatalf("stats %+v after pushing %d", st, n)
	}
	var onDisk int64
	for _, f := range segFiles(t, dir) {
		fi, _ := os.Stat(f)
		onDisk += fi.Size()
	}
	if onDisk > limit+2*q.segMax {
		t.Fatalf("%d bytes on disk for a limit of %d", onDisk, limit)
	}
	got, _ := q.Peek(st.Depth)
	if len(got) != st.Depth || seqOf(t, got[0]) != int(st.Dropped) || seqOf(t, got[len(got)-1]) != n-1 {
		t.Fatalf("kept %d..%d, want %d..%d", seqOf(t, got[0]), seqOf(t, got[len(got)-1]), st.Dropped, n-1)
	}
	q.Ack(st.Depth)
	if files := segFiles(t, dir); len(files) != 1 {
		t.Fatalf("after acknowledging everything %d segment files remain", len(files))
	}
	q.Close()
	q = openT(t, dir, limit)
	defer q.Close()
	if st := q.Stats(); st.Depth != 0 {
		t.Fatalf("acknowledged messages came back: %+v", st)
	}
}

func TestDiskTruncatesDamagedTailAndKeepsTheRest(t *testing.T) {
	for name, damage := range map[string]func(path string, size int64){
		"garbage appended": func(p string, _ int64) {
			f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			f.Write([]byte{0x13, 0, 0, 0, 1, 2, 3, 4, 5})
			f.Close()
		},
		"last record cut short": func(p string, size int64) { os.Truncate(p, size-3) },
		"byte flipped in record 80": func(p string, _ int64) {
			f, _ := os.OpenFile(p, os.O_RDWR, 0)
			off := int64(20)
			for i := 0; i < 80; i++ {
				m := msg(i)
				off += int64(recordLen(&m))
			}
			b := []byte{0}
			f.ReadAt(b, off)
			b[0] ^= 0xff
			f.WriteAt(b, off)
			f.Close()
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			q := openT(t, dir, 0)
			q.Push(batch(0, 100))
			q.Close()
			files := segFiles(t, dir)
			fi, _ := os.Stat(files[0])
			damage(files[0], fi.Size())
			q = openT(t, dir, 0)
			defer q.Close()
			got, _ := q.Peek(1000)
			want := 100
			switch name {
			case "last record cut short":
				want = 99
			case "byte flipped in record 80":
				// Resynchronised: only record 80 is lost.
				expectSeqs(t, got[:80], 0, 80)
				expectSeqs(t, got[80:], 81, 19)
				if d := q.Damage(); d.Corrupt != 1 || d.Lost != 1 {
					t.Errorf("damage %+v, want one record lost", d)
				}
				return
			}
			expectSeqs(t, got, 0, want)
			if q.Truncated() == 0 {
				t.Error("truncation not reported")
			}
			// The queue goes on from there.
			q.Push(batch(want, 5))
			got, _ = q.Peek(1000)
			expectSeqs(t, got, 0, want+5)
		})
	}
}

// crashEnv makes the test binary a producer that is killed with SIGKILL.
const crashEnv = "EDGEPIPE_QUEUE_CRASH_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashEnv); dir != "" {
		crashChild(dir)
		return
	}
	os.Exit(m.Run())
}

// crashChild pushes batches of 100 and, every third batch, consumes 100,
// reporting each completed Push and Ack on stdout, until it is killed.
func crashChild(dir string) {
	q, err := OpenDisk(dir, 0)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	w := bufio.NewWriter(os.Stdout)
	pushed, acked := 0, 0
	for i := 0; ; i++ {
		if err := q.Push(batch(pushed, 100)); err != nil {
			fmt.Fprintln(w, "error", err)
			w.Flush()
			os.Exit(2)
		}
		pushed += 100
		fmt.Fprintln(w, "pushed", pushed)
		if i%3 == 2 {
			got, _ := q.Peek(100)
			if len(got) == 0 || seqOf(nopT{}, got[0]) != acked {
				fmt.Fprintln(w, "error head", len(got))
				w.Flush()
				os.Exit(2)
			}
			q.Ack(len(got))
			acked += len(got)
			fmt.Fprintln(w, "acked", acked)
		}
		w.Flush()
	}
}

type nopT struct{ testing.TB }

func (nopT) Helper()               {}
func (nopT) Fatalf(string, ...any) { os.Exit(3) }

func TestDiskSurvivesKill9(t *testing.T) {
	for round := 0; round < 3; round++ {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir)
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Every report the child wrote before it died is read, even those
		// after the kill was sent: the pipe keeps them.
		sc := bufio.NewScanner(out)
		pushed, acked := 0, 0
		killAt := 3000 + 1700*round
		killed := false
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 2 || f[0] == "error" {
				t.Fatalf("child: %s", sc.Text())
			}
			n, _ := strconv.Atoi(f[1])
			if f[0] == "pushed" {
				pushed = n
			} else {
				acked = n
			}
			if pushed >= killAt && !killed {
				cmd.Process.Signal(syscall.SIGKILL)
				killed = true
			}
		}
		cmd.Wait()
		q := openT(t, dir, 0)
		got, err := q.Peek(1 << 20)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			t.Fatalf("nothing survived; pushed %d acked %d", pushed, acked)
		}
		first, last := seqOf(t, got[0]), seqOf(t, got[len(got)-1])
		// Everything Push confirmed is there; the child may have pushed
		// one more batch (or acked once more) without reporting it.
		if last < pushed-1 || last > pushed+99 {
			t.Fatalf("last message %d, child confirmed pushing %d", last, pushed)
		}
		if first < acked || first > acked+100 {
			t.Fatalf("first message %d, child confirmed acking %d", first, acked)
		}
		expectSeqs(t, got, first, last-first+1)
		q.Close()
	}
}
