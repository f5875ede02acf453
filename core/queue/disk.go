package queue

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// Disk is the store-and-forward queue on disk: append-only segment files
// plus a small file holding the sequence number of the oldest message not
// yet acknowledged.
//
// Durability: Push returns only after its whole batch is written and
// fdatasync'd, so whatever Push accepted survives kill -9 and power loss.
// Ack is recorded with a plain write and no sync: after kill -9 the page
// cache still holds it; after a power loss the newest acknowledgements may
// be forgotten, which means those messages are sent again — a duplicate,
// allowed by at-least-once, never a loss.
//
// Recovery (OpenDisk) reads every segment, checks each record's CRC and
// sequence, truncates a segment at the first bad record (a torn write at
// the tail after a crash) and keeps everything before it.
//
// Why segment files and not bbolt: measured in disk_bench_test.go, see the
// outputs.mqtt README. A B+tree pays for random access that a FIFO never
// needs, and frees nothing on disk until it is compacted.
type Disk struct {
	mu    sync.Mutex
	dir   string
	limit int64
	// segMax is the size at which a new segment is started; acknowledged
	// data is freed a whole segment at a time.
	segMax int64

	segs     []*segment // oldest first; the last one is appended to
	headIdx  int        // records of segs[0] already acknowledged or dropped
	headOff  int64      // offset in segs[0] of the oldest pending record
	headUsed int64      // MessageSize of segs[0]'s consumed records
	headSeq  uint64     // sequence of the oldest pending record (or nextSeq)
	nextSeq  uint64
	depth    int
	bytes    int64
	dropped  uint64
	// inflightDropped counts messages dropped from the front since the
	// last Peek, so that Ack skips them (see Queue.Ack).
	inflightDropped int
	truncated       int64

	lock    *os.File
	ackFile *os.File
	buf     []byte
	ackBuf  [12]byte
	ready   chan struct{}
	closed  bool
}

type segment struct {
	first    uint64 // sequence of its first record
	count    int
	size     int64 // bytes in the file
	msgBytes int64 // MessageSize sum of its records
	f        *os.File
	path     string
}

const (
	segSuffix   = ".seg"
	ackName     = "ack"
	lockName    = "lock"
	maxSegBytes = 16 << 20
	minSegBytes = 64 << 10
)

var _ Queue = (*Disk)(nil)

// OpenDisk opens (or creates) the queue in dir, holding at most limit
// bytes (0: no limit), and makes every message not yet acknowledged
// available again, oldest first.
func OpenDisk(dir string, limit int64) (*Disk, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("queue directory: %w", err)
	}
	q := &Disk{dir: dir, limit: limit, ready: make(chan struct{}, 1), segMax: maxSegBytes}
	if limit > 0 {
		// Acknowledged data is freed per segment: small segments keep the
		// disk use near the limit.
		q.segMax = min(max(limit/8, minSegBytes), maxSegBytes)
	}
	var err error
	q.lock, err = os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("queue lock: %w", err)
	}
	if err := lockDir(q.lock); err != nil {
		q.lock.Close()
		return nil, fmt.Errorf("queue %s is in use by another process: %w", dir, err)
	}
	if err := q.recover(); err != nil {
		q.Close()
		return nil, err
	}
	return q, nil
}

// Truncated reports how many bytes of damaged records recovery cut off
// (a torn write from a crash in the middle of a Push); the core may log it.
func (q *Disk) Truncated() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.truncated
}

func (q *Disk) recover() error {
	var err error
	q.ackFile, err = os.OpenFile(filepath.Join(q.dir, ackName), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return fmt.Errorf("queue ack file: %w", err)
	}
	ackSeq := uint64(0)
	var ab [12]byte
	if n, _ := q.ackFile.ReadAt(ab[:], 0); n == len(ab) &&
		crc32.Checksum(ab[:8], castagnoli) == binary.LittleEndian.Uint32(ab[8:]) {
		ackSeq = binary.LittleEndian.Uint64(ab[:8])
	}
	// A damaged ack file costs duplicates (everything is resent), never
	// a loss.
	entries, err := os.ReadDir(q.dir)
	if err != nil {
		return fmt.Errorf("queue directory: %w", err)
	}
	var firsts []uint64
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, segSuffix) {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(name, segSuffix), 10, 64)
		if err != nil {
			continue
		}
		firsts = append(firsts, n)
	}
	sort.Slice(firsts, func(i, j int) bool { return firsts[i] < firsts[j] })
	q.nextSeq = ackSeq
	for i, first := range firsts {
		s, err := q.loadSegment(first)
		if err != nil {
			return err
		}
		last := i == len(firsts)-1
		if s.count == 0 && !last || s.count > 0 && s.first+uint64(s.count) <= ackSeq && !last {
			s.f.Close()
			if err := os.Remove(s.path); err != nil {
				return fmt.Errorf("queue: removing consumed segment: %w", err)
			}
			continue
		}
		if len(q.segs) > 0 {
			prev := q.segs[len(q.segs)-1]
			if s.first < prev.first+uint64(prev.count) {
				// Overlapping sequences cannot come from this code; refuse
				// rather than replay in a wrong order.
				s.f.Close()
				return fmt.Errorf("queue: segment %s overlaps the one before it", s.path)
			}
		}
		q.segs = append(q.segs, s)
		q.nextSeq = max(q.nextSeq, s.first+uint64(s.count))
	}
	for _, s := range q.segs {
		q.depth += s.count
		q.bytes += s.msgBytes
	}
	q.headSeq = q.nextSeq
	if len(q.segs) > 0 {
		q.headSeq = q.segs[0].first
	}
	// Skip what was acknowledged before the restart.
	if skip := q.countBelow(ackSeq); skip > 0 {
		if err := q.advance(skip); err != nil {
			return err
		}
	}
	return nil
}

// countBelow counts pending records with a sequence below seq.
func (q *Disk) countBelow(seq uint64) int {
	n := 0
	for _, s := range q.segs {
		if seq <= s.first {
			break
		}
		n += min(s.count, int(min(seq-s.first, uint64(s.count))))
	}
	return n
}

// loadSegment reads and checks one segment file, truncating it at the
// first record that is cut short, corrupt or out of sequence.
func (q *Disk) loadSegment(first uint64) (*segment, error) {
	path := filepath.Join(q.dir, segName(first))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("queue segment: %w", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("queue segment %s: %w", path, err)
	}
	s := &segment{first: first, f: f, path: path}
	off := 0
	for off < len(data) {
		info, err := decodeRecord(data[off:], nil)
		if err != nil || info.seq != first+uint64(s.count) {
			break
		}
		off += info.n
		s.count++
		s.msgBytes += info.size
	}
	s.size = int64(off)
	if off < len(data) {
		q.truncated += int64(len(data) - off)
		if err := f.Truncate(int64(off)); err != nil {
			f.Close()
			return nil, fmt.Errorf("queue segment %s: truncating a damaged tail: %w", path, err)
		}
		if err := datasync(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("queue segment %s: %w", path, err)
		}
	}
	return s, nil
}

func segName(first uint64) string { return fmt.Sprintf("%020d%s", first, segSuffix) }

// Push appends msgs and returns once they are on disk (fdatasync): only
// then may the caller forget them.
func (q *Disk) Push(msgs []sdk.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return errors.New("queue closed")
	}
	q.buf = q.buf[:0]
	var msgBytes int64
	for i := range msgs {
		m := &msgs[i]
		if len(m.Topic) > maxTopicLen || recordLen(m) > maxBody {
			return fmt.Errorf("queue: message on %.60q too large to queue", m.Topic)
		}
		q.buf = appendRecord(q.buf, q.nextSeq+uint64(i), m)
		msgBytes += MessageSize(m)
	}
	tail, err := q.tailFor(int64(len(q.buf)))
	if err != nil {
		return err
	}
	if _, err := tail.f.Write(q.buf); err != nil {
		// Cut off whatever part was written: the sequence must stay whole.
		_ = tail.f.Truncate(tail.size)
		return fmt.Errorf("queue write: %w", err)
	}
	if err := datasync(tail.f); err != nil {
		_ = tail.f.Truncate(tail.size)
		return fmt.Errorf("queue sync: %w", err)
	}
	tail.size += int64(len(q.buf))
	tail.count += len(msgs)
	tail.msgBytes += msgBytes
	q.nextSeq += uint64(len(msgs))
	q.depth += len(msgs)
	q.bytes += msgBytes
	if q.depth == len(msgs) {
		q.headSeq = tail.first + uint64(tail.count-len(msgs))
	}
	if q.limit > 0 && q.bytes > q.limit {
		if err := q.dropOldest(); err != nil {
			return err
		}
	}
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return nil
}

// tailFor returns the segment to append n bytes to, starting a new one
// when the current one is full.
func (q *Disk) tailFor(n int64) (*segment, error) {
	if len(q.segs) > 0 {
		t := q.segs[len(q.segs)-1]
		if t.size == 0 || t.size+n <= q.segMax {
			return t, nil
		}
	}
	path := filepath.Join(q.dir, segName(q.nextSeq))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND|os.O_TRUNC, 0o640)
	if err != nil {
		return nil, fmt.Errorf("queue segment: %w", err)
	}
	// The new file's directory entry must be durable before records in
	// it are acknowledged to the producer.
	if err := syncDir(q.dir); err != nil {
		f.Close()
		return nil, err
	}
	s := &segment{first: q.nextSeq, f: f, path: path}
	q.segs = append(q.segs, s)
	q.removeConsumed()
	return s, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("queue directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("queue directory sync: %w", err)
	}
	return nil
}

// removeConsumed deletes leading segments every record of which is
// acknowledged or dropped, keeping the one being appended to.
func (q *Disk) removeConsumed() {
	for len(q.segs) > 1 && q.headIdx >= q.segs[0].count {
		s := q.segs[0]
		s.f.Close()
		_ = os.Remove(s.path)
		q.segs = q.segs[1:]
		q.headIdx, q.headOff, q.headUsed = 0, 0, 0
		q.headSeq = q.segs[0].first
	}
}

// dropOldest drops the oldest messages until the queue is within its
// limit, never the newest message.
func (q *Disk) dropOldest() error {
	before := q.depth
	defer func() {
		n := before - q.depth
		q.dropped += uint64(n)
		q.inflightDropped += n
	}()
	for q.bytes > q.limit && q.depth > 1 {
		s := q.segs[0]
		rest := s.count - q.headIdx
		if rest == 0 {
			q.removeConsumed()
			if q.segs[0] == s {
				break
			}
			continue
		}
		// An older segment that must go entirely goes without reading it.
		if len(q.segs) > 1 && q.bytes-(s.msgBytes-q.headUsed) >= q.limit {
			if err := q.advance(rest); err != nil {
				return err
			}
			continue
		}
		r := bufio.NewReaderSize(io.NewSectionReader(s.f, q.headOff, s.size-q.headOff), 64<<10)
		var scratch []byte
		for q.bytes > q.limit && q.depth > 1 && q.headIdx < s.count {
			info, err := readRecord(r, &scratch, nil)
			if err != nil {
				return fmt.Errorf("queue segment %s: %w", s.path, err)
			}
			q.consume(info)
		}
		q.removeConsumed()
	}
	if before != q.depth {
		return q.writeAck()
	}
	return nil
}

// consume moves the head past one record of segs[0].
func (q *Disk) consume(info recordInfo) {
	q.headIdx++
	q.headOff += int64(info.n)
	q.headUsed += info.size
	q.headSeq = info.seq + 1
	q.depth--
	q.bytes -= info.size
}

// advance consumes the n oldest pending records.
func (q *Disk) advance(n int) error {
	for n > 0 && q.depth > 0 {
		s := q.segs[0]
		rest := s.count - q.headIdx
		if rest == 0 {
			q.removeConsumed()
			if q.segs[0] == s {
				return nil
			}
			continue
		}
		if n >= rest {
			// The rest of the segment, without reading it.
			n -= rest
			q.depth -= rest
			q.bytes -= s.msgBytes - q.headUsed
			q.headIdx, q.headOff, q.headUsed = s.count, s.size, s.msgBytes
			q.headSeq = s.first + uint64(s.count)
			if len(q.segs) > 1 {
				q.removeConsumed()
			} else {
				q.headSeq = q.nextSeq
			}
			continue
		}
		r := bufio.NewReaderSize(io.NewSectionReader(s.f, q.headOff, s.size-q.headOff), 64<<10)
		var scratch []byte
		for ; n > 0; n-- {
			info, err := readRecord(r, &scratch, nil)
			if err != nil {
				return fmt.Errorf("queue segment %s: %w", s.path, err)
			}
			q.consume(info)
		}
	}
	return nil
}

// readRecord reads one record from r, reusing *scratch.
func readRecord(r *bufio.Reader, scratch *[]byte, m *sdk.Message) (recordInfo, error) {
	hdr, err := r.Peek(recHeader)
	if err != nil {
		return recordInfo{}, errShort
	}
	body := binary.LittleEndian.Uint32(hdr)
	if body < bodyFixed || body > maxBody {
		return recordInfo{}, errCorrupt
	}
	need := recHeader + int(body)
	if cap(*scratch) < need {
		*scratch = make([]byte, need)
	}
	b := (*scratch)[:need]
	if _, err := io.ReadFull(r, b); err != nil {
		return recordInfo{}, errShort
	}
	return decodeRecord(b, m)
}

// Peek returns up to max of the oldest pending messages, read from disk.
func (q *Disk) Peek(max int) ([]sdk.Message, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.inflightDropped = 0
	n := min(max, q.depth)
	if n <= 0 {
		return nil, nil
	}
	out := make([]sdk.Message, 0, n)
	var scratch []byte
	for i, s := range q.segs {
		off := int64(0)
		if i == 0 {
			off = q.headOff
		}
		if off >= s.size {
			continue
		}
		r := bufio.NewReaderSize(io.NewSectionReader(s.f, off, s.size-off), 64<<10)
		for len(out) < n {
			var m sdk.Message
			if _, err := readRecord(r, &scratch, &m); err != nil {
				if err == errShort {
					break // end of this segment
				}
				return nil, fmt.Errorf("queue segment %s: %w", s.path, err)
			}
			out = append(out, m)
		}
		if len(out) == n {
			break
		}
	}
	return out, nil
}

// Ack removes the n oldest messages (less those dropped since the Peek)
// and records the new head; see the type's comment for why without sync.
func (q *Disk) Ack(n int) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	n -= q.inflightDropped
	q.inflightDropped = 0
	if n <= 0 || q.closed {
		return nil
	}
	if err := q.advance(n); err != nil {
		return err
	}
	return q.writeAck()
}

func (q *Disk) writeAck() error {
	binary.LittleEndian.PutUint64(q.ackBuf[:8], q.headSeq)
	binary.LittleEndian.PutUint32(q.ackBuf[8:], crc32.Checksum(q.ackBuf[:8], castagnoli))
	if _, err := q.ackFile.WriteAt(q.ackBuf[:], 0); err != nil {
		return fmt.Errorf("queue ack: %w", err)
	}
	return nil
}

func (q *Disk) Ready() <-chan struct{} { return q.ready }

func (q *Disk) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return Stats{Depth: q.depth, Bytes: q.bytes, Dropped: q.dropped}
}

// Close records the head and releases the files and the directory lock.
func (q *Disk) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil
	}
	q.closed = true
	var err error
	if q.ackFile != nil {
		err = q.writeAck()
		if e := q.ackFile.Sync(); err == nil {
			err = e
		}
		q.ackFile.Close()
	}
	for _, s := range q.segs {
		s.f.Close()
	}
	if q.lock != nil {
		q.lock.Close()
	}
	return err
}
