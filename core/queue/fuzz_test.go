package queue

import (
	"bytes"
	"os"
	"path/filepath"
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
