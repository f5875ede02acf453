package queue

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// These benchmarks chose the disk queue's store: the segment files of
// disk.go against a bbolt B+tree holding the same records, both syncing
// every Push batch to disk before returning. Run with
//
//	go test -run '^$' -bench . -benchtime 2s ./core/queue
//
// and read msgs/s. Figures are in plugins/outputs/mqtt/README.md.

func benchMessages(n int) []sdk.Message {
	out := make([]sdk.Message, n)
	payload := []byte(`{"ts":1732600000000,"device":"plc1","points":[{"name":"temperature","value":21.5,"q":"good","ts":1732600000000}]}`)
	for i := range out {
		out[i] = sdk.Message{Topic: "Topic/flexem/fbox/GW-0001/data", Payload: payload, QoS: 1}
	}
	return out
}

// boltQueue is the minimum of a queue on bbolt: one transaction (one
// sync) per Push, sequence keys, cursor reads and deletes for Peek/Ack.
type boltQueue struct {
	db  *bolt.DB
	seq uint64
}

var bucket = []byte("q")

func openBolt(b *testing.B) *boltQueue {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "q.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucketIfNotExists(bucket); return err })
	return &boltQueue{db: db}
}

func (q *boltQueue) push(msgs []sdk.Message) error {
	return q.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucket)
		var key [8]byte
		for i := range msgs {
			q.seq++
			binary.BigEndian.PutUint64(key[:], q.seq)
			if err := bk.Put(key[:], appendRecord(nil, q.seq, &msgs[i])); err != nil {
				return err
			}
		}
		return nil
	})
}

func (q *boltQueue) peekAck(n int) (int, error) {
	got := 0
	err := q.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		for k, v := c.First(); k != nil && got < n; k, v = c.First() {
			var m sdk.Message
			if _, err := decodeRecord(v, &m); err != nil {
				return err
			}
			if err := c.Delete(); err != nil {
				return err
			}
			got++
		}
		return nil
	})
	return got, err
}

func benchPush(b *testing.B, batch int) {
	msgs := benchMessages(batch)
	b.Run("segments", func(b *testing.B) {
		q, err := OpenDisk(b.TempDir(), 0)
		if err != nil {
			b.Fatal(err)
		}
		defer q.Close()
		b.SetBytes(int64(batch * recordLen(&msgs[0])))
		for b.Loop() {
			if err := q.Push(msgs); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("bbolt", func(b *testing.B) {
		q := openBolt(b)
		b.SetBytes(int64(batch * recordLen(&msgs[0])))
		for b.Loop() {
			if err := q.push(msgs); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "msgs/s")
	})
}

// BenchmarkPush1000 is a backlog being written: 1000 messages per sync.
func BenchmarkPush1000(b *testing.B) { benchPush(b, 1000) }

// BenchmarkPush1 is the common case of one message per poll: the cost of
// the sync itself.
func BenchmarkPush1(b *testing.B) { benchPush(b, 1) }

// BenchmarkReplay reads and acknowledges a backlog of 100,000 messages in
// batches of 256, as the core does after an outage.
func BenchmarkReplay(b *testing.B) {
	const backlog, per = 100_000, 256
	msgs := benchMessages(1000)
	b.Run("segments", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			q, err := OpenDisk(b.TempDir(), 0)
			if err != nil {
				b.Fatal(err)
			}
			for i := 0; i < backlog/1000; i++ {
				q.Push(msgs)
			}
			b.StartTimer()
			for q.Stats().Depth > 0 {
				got, err := q.Peek(per)
				if err != nil {
					b.Fatal(err)
				}
				q.Ack(len(got))
			}
			b.StopTimer()
			q.Close()
			b.StartTimer()
		}
		b.ReportMetric(float64(b.N*backlog)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("bbolt", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			q := openBolt(b)
			for i := 0; i < backlog/1000; i++ {
				q.push(msgs)
			}
			b.StartTimer()
			for {
				n, err := q.peekAck(per)
				if err != nil {
					b.Fatal(err)
				}
				if n == 0 {
					break
				}
			}
		}
		b.ReportMetric(float64(b.N*backlog)/b.Elapsed().Seconds(), "msgs/s")
	})
}

// BenchmarkMemoryPush1000 is the memory queue for scale.
func BenchmarkMemoryPush1000(b *testing.B) {
	msgs := benchMessages(1000)
	q := NewMemory(64 << 20)
	for b.Loop() {
		q.Push(msgs)
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkPushAck is the steady state with every check on: batches of 256
// pushed (one fdatasync each), read back (CRC and sequence checked) and
// acknowledged.
func BenchmarkPushAck(b *testing.B) {
	const per = 256
	msgs := benchMessages(per)
	q, err := OpenDisk(b.TempDir(), 0)
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	for b.Loop() {
		if err := q.Push(msgs); err != nil {
			b.Fatal(err)
		}
		got, err := q.Peek(per)
		if err != nil || len(got) != per {
			b.Fatal(len(got), err)
		}
		if err := q.Ack(len(got)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*per)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkRecover256MB is the start of a gateway with a 256 MB backlog on
// disk: OpenDisk reads and checks every record. "damaged" has one zeroed
// byte in the middle of every segment, so every file is resynchronised.
func BenchmarkRecover256MB(b *testing.B) {
	for _, damaged := range []bool{false, true} {
		name := "clean"
		if damaged {
			name = "damaged"
		}
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			q, err := OpenDisk(dir, 0)
			if err != nil {
				b.Fatal(err)
			}
			msgs := benchMessages(1000)
			var written int64
			for written < 256<<20 {
				if err := q.Push(msgs); err != nil {
					b.Fatal(err)
				}
				written += int64(len(msgs) * recordLen(&msgs[0]))
			}
			depth := q.Stats().Depth
			q.Close()
			if damaged {
				for _, p := range segFiles(b, dir) {
					fi, _ := os.Stat(p)
					damageAt(b, p, fi.Size()/2, true, 0)
				}
			}
			b.SetBytes(written)
			for b.Loop() {
				q, err := OpenDisk(dir, 0)
				if err != nil {
					b.Fatal(err)
				}
				if d := q.Stats().Depth; d > depth || d < depth-100 {
					b.Fatalf("depth %d after recovery, %d queued", d, depth)
				}
				q.Close()
			}
		})
	}
}
