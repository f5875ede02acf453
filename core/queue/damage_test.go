package queue

import (
	"os"
	"sort"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// recordOffset is where message i (0-based, pushed as msg(from+k)) starts
// in a segment whose first message is msg(from).
func recordOffset(from, i int) int64 {
	off := int64(0)
	for k := 0; k < i; k++ {
		m := msg(from + k)
		off += int64(recordLen(&m))
	}
	return off
}

// damageAt overwrites one byte of a file with v, or xors it with x.
func damageAt(t testing.TB, path string, off int64, set bool, v byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := []byte{0}
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	if set {
		b[0] = v
	} else {
		b[0] ^= v
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// pushSegments fills a fresh queue in dir with segments of per messages
// each and closes it; it returns the segment files oldest first.
func pushSegments(t testing.TB, dir string, segments, per int) []string {
	t.Helper()
	q := openT(t, dir, 0)
	m := msg(0)
	q.segMax = int64(per * (recordLen(&m) + 2)) // per messages per segment
	for s := 0; s < segments; s++ {
		if err := q.Push(batch(s*per, per)); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	files := segFiles(t, dir)
	sort.Strings(files)
	if len(files) != segments {
		t.Fatalf("%d segment files, want %d", len(files), segments)
	}
	return files
}

// seqsOf returns the sequence numbers of what the queue holds.
func seqsOf(t testing.TB, q *Disk) []int {
	t.Helper()
	got, err := q.Peek(1 << 20)
	if err != nil {
		if _, ok := err.(*DamageError); !ok {
			t.Fatal(err)
		}
	}
	out := make([]int, len(got))
	for i, m := range got {
		out[i] = seqOf(t, m)
	}
	return out
}

func expectRange(t testing.TB, got []int, want ...[2]int) {
	t.Helper()
	var w []int
	for _, r := range want {
		for i := r[0]; i < r[1]; i++ {
			w = append(w, i)
		}
	}
	if len(got) != len(w) {
		t.Fatalf("got %d messages %v..., want %d", len(got), head(got), len(w))
	}
	for i := range w {
		if got[i] != w[i] {
			t.Fatalf("message %d is %d, want %d", i, got[i], w[i])
		}
	}
}

func head(s []int) []int { return s[:min(len(s), 10)] }

// A zeroed byte in the middle of a segment costs the record it hit, not
// the records after it.
func TestDiskResyncsAfterZeroedByte(t *testing.T) {
	dir := t.TempDir()
	q := openT(t, dir, 0)
	q.Push(batch(0, 100))
	q.Close()
	files := segFiles(t, dir)
	damageAt(t, files[0], recordOffset(0, 72)+20, true, 0) // in record 72's topic
	q = openT(t, dir, 0)
	defer q.Close()
	expectRange(t, seqsOf(t, q), [2]int{0, 72}, [2]int{73, 100})
	d := q.Damage()
	if d.Corrupt != 1 || d.Lost != 1 {
		t.Fatalf("damage %+v, want 1 region with 1 message", d)
	}
	if st := q.Stats(); st.Corrupt != 1 || st.DroppedCorrupt != 1 || st.Depth != 99 {
		t.Fatalf("stats %+v", st)
	}
}

// A deleted middle segment is reported with the number of messages it held.
func TestDiskReportsMissingSegment(t *testing.T) {
	dir := t.TempDir()
	files := pushSegments(t, dir, 4, 55)
	if err := os.Remove(files[1]); err != nil {
		t.Fatal(err)
	}
	q := openT(t, dir, 0)
	defer q.Close()
	expectRange(t, seqsOf(t, q), [2]int{0, 55}, [2]int{110, 220})
	d := q.Damage()
	if d.Missing != 1 || d.Lost != 55 {
		t.Fatalf("damage %+v, want 1 gap of 55 messages", d)
	}
	if st := q.Stats(); st.DroppedCorrupt != 55 {
		t.Fatalf("stats %+v", st)
	}
}

// Damage in records already delivered, then new messages: none of the new
// ones is lost at the next start.
func TestDiskNewMessagesAfterDamageInDeliveredRecordsSurvive(t *testing.T) {
	dir := t.TempDir()
	q := openT(t, dir, 0)
	q.Push(batch(0, 200))
	got, _ := q.Peek(200)
	q.Ack(len(got))
	q.Close()
	files := segFiles(t, dir)
	damageAt(t, files[0], recordOffset(0, 100)+10, false, 0x40)
	q = openT(t, dir, 0)
	if st := q.Stats(); st.Depth != 0 {
		t.Fatalf("delivered messages came back: %+v", st)
	}
	if d := q.Damage(); d.Lost != 0 {
		t.Fatalf("damage in delivered records counted as a loss: %+v", d)
	}
	if err := q.Push(batch(200, 119)); err != nil {
		t.Fatal(err)
	}
	q.Close()
	q = openT(t, dir, 0)
	defer q.Close()
	expectRange(t, seqsOf(t, q), [2]int{200, 319})
}

// A byte flipped in a queued record while the queue is open: Peek skips
// the record (and says so), delivery goes on, and the restart keeps
// everything after it.
func TestDiskRuntimeDamageSkippedNotStalled(t *testing.T) {
	dir := t.TempDir()
	files := pushSegments(t, dir, 3, 100)
	q := openT(t, dir, 0)
	got, err := q.Peek(50)
	if err != nil {
		t.Fatal(err)
	}
	expectSeqs(t, got, 0, 50)
	q.Ack(50)
	damageAt(t, files[0], recordOffset(0, 60)+20, false, 0x01)
	var seqs []int
	for round := 0; round < 10 && q.Stats().Depth > 0; round++ {
		got, err := q.Peek(64)
		if err != nil {
			de, ok := err.(*DamageError)
			if !ok {
				t.Fatal(err)
			}
			if de.Lost != 1 {
				t.Fatalf("damage error %v: lost %d, want 1", de, de.Lost)
			}
		}
		for _, m := range got {
			seqs = append(seqs, seqOf(t, m))
		}
		q.Ack(len(got))
	}
	expectRange(t, seqs, [2]int{50, 60}, [2]int{61, 300})
	if st := q.Stats(); st.Corrupt != 1 || st.DroppedCorrupt != 1 || st.Depth != 0 {
		t.Fatalf("stats %+v", st)
	}
	q.Close()

	// The same damage found at the next start, before delivery.
	dir = t.TempDir()
	files = pushSegments(t, dir, 3, 100)
	q = openT(t, dir, 0)
	damageAt(t, files[1], recordOffset(100, 5)+20, false, 0x01)
	q.Close()
	q = openT(t, dir, 0)
	defer q.Close()
	expectRange(t, seqsOf(t, q), [2]int{0, 105}, [2]int{106, 300})
}

// A damaged tail of a middle segment (no valid record after the damage in
// that file) loses only that tail.
func TestDiskTruncatedMiddleSegment(t *testing.T) {
	dir := t.TempDir()
	files := pushSegments(t, dir, 3, 40)
	if err := os.Truncate(files[1], recordOffset(40, 30)+5); err != nil {
		t.Fatal(err)
	}
	q := openT(t, dir, 0)
	defer q.Close()
	expectRange(t, seqsOf(t, q), [2]int{0, 70}, [2]int{80, 120})
	if d := q.Damage(); d.Lost != 10 {
		t.Fatalf("damage %+v, want 10 messages lost", d)
	}
}

func TestDiskAckFileAheadBeforeSegmentRemoval(t *testing.T) {
	// After a full segment is acknowledged and removed, the ack file
	// already points past it: no false gap at the next start.
	dir := t.TempDir()
	q := openT(t, dir, 0)
	m := msg(0)
	q.segMax = int64(50 * (recordLen(&m) + 2))
	for i := 0; i < 4; i++ {
		q.Push(batch(i*50, 50))
	}
	got, _ := q.Peek(120)
	q.Ack(len(got))
	q.Close()
	if n := len(segFiles(t, dir)); n != 2 {
		t.Fatalf("%d segment files left", n)
	}
	q = openT(t, dir, 0)
	defer q.Close()
	if d := q.Damage(); d != (Damage{}) {
		t.Fatalf("damage reported on a clean queue: %+v", d)
	}
	expectRange(t, seqsOf(t, q), [2]int{120, 200})
}

// Damage in the segment being appended to, found while running: the
// record is skipped, pushing goes on, and the next start keeps what was
// pushed after the damage.
func TestDiskRuntimeDamageInTailThenMorePushes(t *testing.T) {
	dir := t.TempDir()
	q := openT(t, dir, 0)
	q.Push(batch(0, 50))
	files := segFiles(t, dir)
	damageAt(t, files[0], recordOffset(0, 49)+20, false, 0x80) // the newest record
	got, err := q.Peek(100)
	if de, ok := err.(*DamageError); !ok || de.Lost != 1 {
		t.Fatalf("peek: %v", err)
	}
	expectSeqs(t, got, 0, 49)
	q.Push(batch(50, 20))
	q.Ack(10)
	got, err = q.Peek(100)
	if err != nil {
		t.Fatal(err)
	}
	expectSeqs(t, got[:39], 10, 39)
	expectSeqs(t, got[39:], 50, 20)
	q.Close()
	q = openT(t, dir, 0)
	defer q.Close()
	expectRange(t, seqsOf(t, q), [2]int{10, 49}, [2]int{50, 70})
}

// Dropping the oldest for the limit reads through damage without failing.
func TestDiskLimitDropsThroughDamage(t *testing.T) {
	dir := t.TempDir()
	one := MessageSize(&[]sdk.Message{msg(0)}[0])
	q := openT(t, dir, 100*one)
	q.Push(batch(0, 90))
	files := segFiles(t, dir)
	damageAt(t, files[0], recordOffset(0, 5)+20, false, 0x02)
	if err := q.Push(batch(90, 20)); err != nil {
		t.Fatal(err)
	}
	st := q.Stats()
	if st.Corrupt != 1 || st.DroppedCorrupt != 1 || st.Dropped == 0 || st.Depth+int(st.Dropped)+1 != 110 {
		t.Fatalf("stats %+v", st)
	}
	expectRange(t, seqsOf(t, q), [2]int{110 - st.Depth, 110})
	q.Close()
}
