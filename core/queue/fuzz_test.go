package queue

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// FuzzDecodeRecord: any bytes either decode to a record that re-encodes
// to exactly those bytes, or are refused; never a panic, never a length
// beyond the input.
func FuzzDecodeRecord(f *testing.F) {
	m := msg(7)
	f.Add(appendRecord(nil, 42, &m))
	f.Add(appendRecord(nil, 0, &sdk.Message{}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Add([]byte{11, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var got sdk.Message
		info, err := decodeRecord(b, &got)
		if err != nil {
			return
		}
		if info.n > len(b) || info.n < recHeader+bodyFixed {
			t.Fatalf("record length %d for %d bytes", info.n, len(b))
		}
		if re := appendRecord(nil, info.seq, &got); !bytes.Equal(re, b[:info.n]) {
			t.Fatalf("round trip differs:\n%x\n%x", re, b[:info.n])
		}
		if info.size != MessageSize(&got) {
			t.Fatalf("size %d, want %d", info.size, MessageSize(&got))
		}
	})
}

// FuzzRecoverSegment appends arbitrary bytes to a segment of valid
// records: recovery must keep every valid record, never fail, never panic,
// and leave a queue that works.
func FuzzRecoverSegment(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 2, 3})
	m := msg(5)
	f.Add(appendRecord(nil, 5, &m)) // the next record, valid: kept
	f.Add(appendRecord(nil, 9, &m)) // out of sequence: cut
	f.Fuzz(func(t *testing.T, tail []byte) {
		dir := t.TempDir()
		var data []byte
		for i := 0; i < 5; i++ {
			m := msg(i)
			data = appendRecord(data, uint64(i), &m)
		}
		if err := os.WriteFile(filepath.Join(dir, segName(0)), append(data, tail...), 0o600); err != nil {
			t.Fatal(err)
		}
		q, err := OpenDisk(dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		got, err := q.Peek(1 << 20)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) < 5 {
			t.Fatalf("lost valid records: %d left", len(got))
		}
		expectSeqs(t, got[:5], 0, 5)
		if err := q.Push(batch(100, 2)); err != nil {
			t.Fatal(err)
		}
		if err := q.Ack(len(got)); err != nil {
			t.Fatal(err)
		}
		rest, _ := q.Peek(10)
		expectSeqs(t, rest, 100, 2)
	})
}

// placed is where one record lies on disk.
type placed struct {
	file     int
	off, end int64
	seq      int
}

var recoverSeeds = []struct {
	n, per, acked uint16
	ops           []byte
}{
	{100, 20, 0, nil},
	{100, 20, 30, []byte{0, 0, 0x80, 0}}, // flip in the first file
	{200, 30, 0, []byte{1, 2, 0x40, 0}},  // zero a byte in the middle file
	{200, 30, 50, []byte{3, 1, 0, 0}},    // delete the second file
	{150, 25, 10, []byte{2, 5, 0xf0, 0}}, // truncate the last file
	{300, 9, 120, []byte{0, 3, 1, 7, 3, 4, 0, 0, 2, 7, 0x80, 0, 1, 0, 0x10, 0}},
}

// fillQueue queues total messages in segments of about perSeg, and
// acknowledges the first ack of them.
func fillQueue(t *testing.T, dir string, total, perSeg, ack int) *Disk {
	q := openT(t, dir, 0)
	m0 := msg(0)
	q.segMax = int64(perSeg * recordLen(&m0))
	for i := 0; i < total; i += 7 {
		if err := q.Push(batch(i, min(7, total-i))); err != nil {
			t.Fatal(err)
		}
	}
	got, err := q.Peek(ack)
	if err != nil || len(got) != ack {
		t.Fatalf("peek %d: %d, %v", ack, len(got), err)
	}
	q.Ack(ack)
	return q
}

// damageFiles maps the records of the (undamaged) segment files in dir,
// then applies ops, four bytes each: bit flip, zeroed byte, truncation or
// deletion of a file at a position. It returns the records and the
// sequences of those the damage touched.
func damageFiles(t *testing.T, dir string, ops []byte) ([]placed, map[int]bool) {
	files := segFiles(t, dir)
	sort.Strings(files)
	var recs []placed
	for fi, p := range files {
		data, _ := os.ReadFile(p)
		for off := 0; off < len(data); {
			info, err := decodeRecord(data[off:], nil)
			if err != nil {
				t.Fatalf("undamaged file %s unreadable at %d", p, off)
			}
			recs = append(recs, placed{file: fi, off: int64(off), end: int64(off + info.n), seq: int(info.seq)})
			off += info.n
		}
	}
	damaged := map[int]bool{}
	deleted := map[int]bool{}
	for len(ops) >= 4 && len(files) > 0 {
		op, fi, at := ops[0]%4, int(ops[1])%len(files), int64(ops[2])<<8|int64(ops[3])
		ops = ops[4:]
		if deleted[fi] {
			continue
		}
		st, err := os.Stat(files[fi])
		if err != nil || st.Size() == 0 && op != 3 {
			continue
		}
		size := st.Size()
		at = at * size >> 16 // a position in the file
		hit := func(from, to int64) {
			for _, r := range recs {
				if r.file == fi && r.end > from && r.off < to {
					damaged[r.seq] = true
				}
			}
		}
		switch op {
		case 0, 1:
			f, err := os.OpenFile(files[fi], os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			b := []byte{0}
			f.ReadAt(b, at)
			old := b[0]
			if op == 0 {
				b[0] ^= 1 << (ops4(at) % 8)
			} else {
				b[0] = 0
			}
			if b[0] != old {
				hit(at, at+1)
				f.WriteAt(b, at)
			}
			f.Close()
		case 2:
			os.Truncate(files[fi], at)
			hit(at, size)
		case 3:
			os.Remove(files[fi])
			deleted[fi] = true
			hit(0, size)
		}
	}
	return recs, damaged
}

// checkKept: got is an in-order subset of the messages ack..total-1, and
// holds every record the damage did not touch.
func checkKept(t *testing.T, got []sdk.Message, ack, total int, recs []placed, damaged map[int]bool) {
	prev := ack - 1
	have := map[int]bool{}
	for _, m := range got {
		s := seqOf(t, m)
		if s <= prev || s >= total {
			t.Fatalf("message %d after %d (acked %d, queued %d)", s, prev, ack, total)
		}
		expectSeqs(t, []sdk.Message{m}, s, 1)
		prev = s
		have[s] = true
	}
	for _, r := range recs {
		if r.seq >= ack && !damaged[r.seq] && !have[r.seq] {
			t.Fatalf("intact record %d lost (file %d, %d..%d)", r.seq, r.file, r.off, r.end)
		}
	}
}

// FuzzRecover queues messages over several segments, acknowledges some,
// then damages the files as ops says (bit flips, zeroed bytes, truncated
// and deleted files) and reopens: the recovered messages are always a
// subset, in order, of the unacknowledged ones, every record the damage
// did not touch is among them, and the queue works on. Never a panic.
func FuzzRecover(f *testing.F) {
	for _, s := range recoverSeeds {
		f.Add(s.n, uint8(s.per), s.acked, s.ops)
	}
	f.Fuzz(func(t *testing.T, n uint16, per uint8, acked uint16, ops []byte) {
		total := 1 + int(n)%400
		ack := int(acked) % (total + 1)
		dir := memDir(t)
		fillQueue(t, dir, total, 3+int(per)%60, ack).Close()
		recs, damaged := damageFiles(t, dir, ops)

		q, err := OpenDisk(dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		got, err := q.Peek(1 << 20)
		if err != nil {
			t.Fatal(err)
		}
		checkKept(t, got, ack, total, recs, damaged)
		if st := q.Stats(); st.Depth != len(got) {
			t.Fatalf("depth %d, peeked %d", st.Depth, len(got))
		}
		// The queue works on: new messages come after the recovered ones.
		if err := q.Push(batch(1000, 3)); err != nil {
			t.Fatal(err)
		}
		if err := q.Ack(len(got)); err != nil {
			t.Fatal(err)
		}
		rest, err := q.Peek(10)
		if err != nil {
			t.Fatal(err)
		}
		expectSeqs(t, rest, 1000, 3)
	})
}

// FuzzRuntimeDamage damages the files of an open queue, as FuzzRecover
// does, and delivers it in batches: Peek never fails for good (damage
// comes back as a *DamageError with the good messages), what is
// delivered is an in-order subset holding every intact record, and once
// everything is acknowledged nothing comes back at the next start.
func FuzzRuntimeDamage(f *testing.F) {
	for _, s := range recoverSeeds {
		f.Add(s.n, uint8(s.per), s.acked, s.ops)
	}
	f.Fuzz(func(t *testing.T, n uint16, per uint8, acked uint16, ops []byte) {
		total := 1 + int(n)%400
		ack := int(acked) % (total + 1)
		dir := memDir(t)
		q := fillQueue(t, dir, total, 3+int(per)%60, ack)
		recs, damaged := damageFiles(t, dir, ops)

		var got []sdk.Message
		for round := 0; q.Stats().Depth > 0; round++ {
			if round > total+10 {
				t.Fatalf("delivery stalled with %d queued", q.Stats().Depth)
			}
			b, err := q.Peek(1 + round%40)
			if _, ok := err.(*DamageError); err != nil && !ok {
				t.Fatal(err)
			}
			got = append(got, b...)
			if err := q.Ack(len(b)); err != nil {
				t.Fatal(err)
			}
		}
		checkKept(t, got, ack, total, recs, damaged)
		q.Close()
		q, err := OpenDisk(dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		if st := q.Stats(); st.Depth != 0 {
			t.Fatalf("%d delivered messages came back", st.Depth)
		}
	})
}

// ops4 picks a bit from a position, so one op byte less is needed.
func ops4(at int64) int64 { return at*7 + 3 }

// memDir is a directory in RAM when the machine has one (/dev/shm): the
// fuzzer runs thousands of queues, and their fsyncs would dominate.
func memDir(t *testing.T) string {
	d, err := os.MkdirTemp("/dev/shm", "queue-fuzz-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}
