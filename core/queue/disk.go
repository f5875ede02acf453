package queue

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

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
// Recovery (OpenDisk) reads every segment and checks each record's CRC and
// sequence. A record that fails is skipped: the reader resynchronises on
// the next offset that holds a valid record with a plausible sequence, so
// one damaged byte costs the record it hit and not the file after it.
// Missing sequence numbers (a damaged record, a deleted segment file) are
// counted as lost messages; a damaged tail of the newest segment with no
// valid record after it (a torn write from a crash) is cut off. See
// Damage. Damage found while running (Peek) is handled the same way and
// reported by a *DamageError: it never stalls delivery.
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
	headSeq  uint64     // every sequence below it is acknowledged or dropped
	nextSeq  uint64
	depth    int
	bytes    int64
	dropped  uint64
	// inflightDropped counts messages dropped from the front since the
	// last Peek, so that Ack skips them (see Queue.Ack).
	inflightDropped int

	damage       Damage // found by recovery
	corrupt      uint64 // damaged regions, recovery and run time
	lostCorrupt  uint64 // messages lost to damage
	droppedFull  uint64 // messages Push could not write for lack of space
	droppedWrite uint64 // messages Push could not write for another reason
	writeErr     error  // the last Push's write failure, nil once one succeeds

	lock    *os.File
	ackFile *os.File
	buf     []byte
	ackBuf  [12]byte
	ready   chan struct{}
	closed  bool
}

type segment struct {
	first    uint64 // sequence in its name: no record in it is below
	end      uint64 // sequence after its last record (first when empty)
	count    int    // valid records
	size     int64  // bytes of the file that are read
	msgBytes int64  // MessageSize sum of its records
	holes    []hole // damaged byte ranges the readers skip, by offset
	f        *os.File
	path     string
}

// hole is a damaged range of a segment file and the sequence numbers of
// the messages lost in it.
type hole struct {
	off, n   int64
	from, to uint64 // [from, to)
}

// Damage is what recovery found wrong with the files, for the core to
// count and log once.
type Damage struct {
	Corrupt int    // damaged regions (one or more records that failed their check)
	Missing int    // gaps in the sequence between files: a deleted or lost segment
	Lost    uint64 // messages lost to both, not counting acknowledged ones
	// Truncated is the bytes cut off the newest segment's damaged tail.
	// That is what a crash in the middle of a Push leaves (a batch never
	// confirmed to the producer), and damage there cannot be told from it,
	// so it is not counted in Corrupt or Lost.
	Truncated int64
}

// DamageError is returned by Peek, together with the good messages, when
// it found and skipped damaged records: the queue goes on without them.
type DamageError struct {
	Segment string
	Lost    uint64 // messages lost
}

func (e *DamageError) Error() string {
	return fmt.Sprintf("queue segment %s: skipped damaged records, %d messages lost", e.Segment, e.Lost)
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
// the newest segment (a torn write from a crash in the middle of a Push).
func (q *Disk) Truncated() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.damage.Truncated
}

// Damage reports what recovery found damaged or missing.
func (q *Disk) Damage() Damage {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.damage
}

// lostAbove is how many of the sequences [from, to) are not below ack:
// damage to acknowledged messages loses nothing.
func lostAbove(from, to, ack uint64) uint64 {
	from = max(from, ack)
	if to <= from {
		return 0
	}
	return to - from
}

func (q *Disk) recover() error {
	var err error
	q.ackFile, err = os.OpenFile(filepath.Join(q.dir, ackName), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return fmt.Errorf("queue ack file: %w", err)
	}
	ackSeq, ackOK := uint64(0), false
	var ab [12]byte
	if n, _ := q.ackFile.ReadAt(ab[:], 0); n == len(ab) &&
		crc32.Checksum(ab[:8], castagnoli) == binary.LittleEndian.Uint32(ab[8:]) {
		ackSeq, ackOK = binary.LittleEndian.Uint64(ab[:8]), true
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
	// expected is the sequence the next record should have. The ack file
	// is written before a consumed segment is removed, so a first segment
	// that starts above it means a file is missing.
	expected := ackSeq
	if !ackOK && len(firsts) > 0 {
		expected = firsts[0]
	}
	q.nextSeq = ackSeq
	for i, first := range firsts {
		last := i == len(firsts)-1
		upper := uint64(math.MaxUint64)
		if !last {
			upper = firsts[i+1]
		}
		if first < expected && len(q.segs) > 0 {
			// Overlapping sequences cannot come from this code; refuse
			// rather than replay in a wrong order.
			return fmt.Errorf("queue: segment %s overlaps the one before it", segName(first))
		}
		if first > expected {
			if n := lostAbove(expected, first, ackSeq); n > 0 {
				q.damage.Missing++
				q.damage.Lost += n
			}
		}
		expected = max(expected, first)
		s, sc, err := q.loadSegment(first, upper, ackSeq, last)
		if err != nil {
			return err
		}
		for _, h := range s.holes {
			if n := lostAbove(h.from, h.to, ackSeq); n > 0 {
				q.damage.Corrupt++
				q.damage.Lost += n
			}
		}
		if sc.tail > 0 && last {
			// Indistinguishable from a torn write of a Push that never
			// returned: cut off and reported in bytes, not as a loss.
			q.damage.Truncated += sc.tail
		}
		expected = max(expected, s.end)
		if !last && sc.tail > 0 {
			// A damaged end of an older segment: what it lost runs up to
			// the next file.
			if n := lostAbove(s.end, upper, ackSeq); n > 0 {
				q.damage.Corrupt++
				q.damage.Lost += n
			}
			expected = upper
		}
		if !last && s.end <= ackSeq {
			s.f.Close()
			if err := os.Remove(s.path); err != nil {
				return fmt.Errorf("queue: removing consumed segment: %w", err)
			}
			continue
		}
		if len(q.segs) == 0 {
			q.headIdx, q.headOff, q.headUsed = sc.headIdx, sc.headOff, sc.headUsed
		}
		q.segs = append(q.segs, s)
		q.nextSeq = max(q.nextSeq, s.end)
	}
	q.corrupt = uint64(q.damage.Corrupt + q.damage.Missing)
	q.lostCorrupt = q.damage.Lost
	q.recount()
	q.headSeq = q.nextSeq
	if q.depth > 0 {
		q.headSeq = max(ackSeq, q.segs[0].first)
	}
	return nil
}

// recount sets depth and bytes from the segments and the head.
func (q *Disk) recount() {
	q.depth, q.bytes = 0, 0
	for _, s := range q.segs {
		q.depth += s.count
		q.bytes += s.msgBytes
	}
	if len(q.segs) > 0 {
		q.depth -= q.headIdx
		q.bytes -= q.headUsed
	}
}

// segScan is what scanSegment found in a segment file.
type segScan struct {
	count    int
	msgBytes int64
	end      uint64 // sequence after the last valid record
	validEnd int64  // offset after the last valid record
	tail     int64  // bytes after validEnd holding no valid record
	holes    []hole
	// Records below the sequence given to scanSegment (acknowledged).
	headIdx  int
	headOff  int64
	headUsed int64
}

// scanSegment checks every record of a segment whose name says first:
// valid records have increasing sequences in [first, upper). On a bad
// record it resynchronises on the next offset holding a valid record and
// notes the skipped range as a hole with the sequences it lost.
func scanSegment(data []byte, first, upper, below uint64) segScan {
	sc := segScan{end: first}
	expected := first
	off := 0
	for off < len(data) {
		info, err := decodeRecord(data[off:], nil)
		if err != nil || info.seq < expected || info.seq >= upper {
			p, ok := resync(data, off+1, expected, upper)
			if !ok {
				sc.tail = int64(len(data) - off)
				break
			}
			info, _ = decodeRecord(data[p:], nil)
			sc.holes = append(sc.holes, hole{off: int64(off), n: int64(p - off), from: expected, to: info.seq})
			off = p
		} else if info.seq > expected {
			// Sequences missing without damaged bytes (a file written by
			// an older version after damage): a hole of no bytes.
			sc.holes = append(sc.holes, hole{off: int64(off), from: expected, to: info.seq})
		}
		off += info.n
		sc.count++
		sc.msgBytes += info.size
		expected = info.seq + 1
		if info.seq < below {
			sc.headIdx, sc.headOff, sc.headUsed = sc.count, int64(off), sc.headUsed+info.size
		}
	}
	sc.end = expected
	sc.validEnd = int64(off)
	return sc
}

// resync finds the first offset from p on that holds a valid record with
// a sequence in [expected, upper). The cheap checks come before the CRC.
func resync(data []byte, p int, expected, upper uint64) (int, bool) {
	for ; p+recHeader+bodyFixed <= len(data); p++ {
		body := binary.LittleEndian.Uint32(data[p:])
		if body < bodyFixed || uint64(body) > uint64(len(data)-p-recHeader) {
			continue
		}
		seq := binary.LittleEndian.Uint64(data[p+recHeader:])
		if seq < expected || seq >= upper {
			continue
		}
		if _, err := decodeRecord(data[p:], nil); err == nil {
			return p, true
		}
	}
	return 0, false
}

// loadSegment reads and checks one segment file. The newest segment's
// damaged tail is cut off (new records follow the good ones); an older
// segment's is only skipped.
func (q *Disk) loadSegment(first, upper, below uint64, last bool) (*segment, segScan, error) {
	path := filepath.Join(q.dir, segName(first))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0o640)
	if err != nil {
		return nil, segScan{}, fmt.Errorf("queue segment: %w", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, segScan{}, fmt.Errorf("queue segment %s: %w", path, err)
	}
	sc := scanSegment(data, first, upper, below)
	s := &segment{first: first, end: sc.end, count: sc.count, msgBytes: sc.msgBytes, holes: sc.holes,
		size: sc.validEnd, f: f, path: path}
	if sc.tail > 0 && last {
		if err := f.Truncate(sc.validEnd); err != nil {
			f.Close()
			return nil, segScan{}, fmt.Errorf("queue segment %s: truncating a damaged tail: %w", path, err)
		}
		if err := datasync(f); err != nil {
			f.Close()
			return nil, segScan{}, fmt.Errorf("queue segment %s: %w", path, err)
		}
	}
	return s, sc, nil
}

func segName(first uint64) string { return fmt.Sprintf("%020d%s", first, segSuffix) }

// Push appends msgs and returns once they are on disk (fdatasync): only
// then may the caller forget them. When the batch cannot be written (the
// disk is full) it is dropped and counted, what was queued before stays,
// and the next Push tries again: queuing resumes once there is space.
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
	first := q.nextSeq
	for i := range msgs {
		m := &msgs[i]
		if len(m.Topic) > maxTopicLen || recordLen(m) > maxBody {
			return fmt.Errorf("queue: message on %.60q too large to queue", m.Topic)
		}
		q.buf = appendRecord(q.buf, first+uint64(i), m)
		msgBytes += MessageSize(m)
	}
	if err := q.write(); err != nil {
		if isNoSpace(err) {
			q.droppedFull += uint64(len(msgs))
		} else {
			q.droppedWrite += uint64(len(msgs))
		}
		q.writeErr = err
		return err
	}
	q.writeErr = nil
	tail := q.segs[len(q.segs)-1]
	tail.count += len(msgs)
	tail.msgBytes += msgBytes
	q.nextSeq += uint64(len(msgs))
	tail.end = q.nextSeq
	q.depth += len(msgs)
	q.bytes += msgBytes
	if q.depth == len(msgs) {
		q.headSeq = first
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

// write appends q.buf to the tail segment and syncs it; on failure the
// segment is cut back so that its records stay whole.
func (q *Disk) write() error {
	tail, err := q.tailFor(int64(len(q.buf)))
	if err != nil {
		return err
	}
	if _, err := tail.f.Write(q.buf); err != nil {
		_ = tail.f.Truncate(tail.size)
		return fmt.Errorf("queue write: %w", err)
	}
	if err := datasync(tail.f); err != nil {
		_ = tail.f.Truncate(tail.size)
		return fmt.Errorf("queue sync: %w", err)
	}
	tail.size += int64(len(q.buf))
	return nil
}

func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// tailFor returns the segment to append n bytes to, starting a new one
// when the current one is full or ends below the next sequence (damage
// or acknowledgements moved the sequence past it): a segment's records
// stay in sequence, so nothing appended is mistaken for damage later.
func (q *Disk) tailFor(n int64) (*segment, error) {
	if len(q.segs) > 0 {
		t := q.segs[len(q.segs)-1]
		if t.end == q.nextSeq && (t.size == 0 || t.size+n <= q.segMax) {
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
		_ = os.Remove(path)
		return nil, err
	}
	s := &segment{first: q.nextSeq, end: q.nextSeq, f: f, path: path}
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
// acknowledged or dropped, keeping the one being appended to. The ack
// file is moved past them first, so that a crash between the two never
// looks like a missing file at the next start.
func (q *Disk) removeConsumed() {
	n := 0
	for n < len(q.segs)-1 {
		consumed := q.segs[n].count == 0
		if n == 0 {
			consumed = q.headIdx >= q.segs[0].count
		}
		if !consumed {
			break
		}
		n++
	}
	if n == 0 {
		return
	}
	gone := q.segs[:n]
	q.segs = q.segs[n:]
	q.headIdx, q.headOff, q.headUsed = 0, 0, 0
	q.headSeq = max(q.headSeq, q.segs[0].first)
	if q.depth == 0 {
		q.headSeq = q.nextSeq
	}
	_ = q.writeAck()
	for _, s := range gone {
		s.f.Close()
		_ = os.Remove(s.path)
	}
}

// segReader reads the records of one segment from an offset on, skipping
// its known holes. Any failure before the segment's end is damage.
type segReader struct {
	s       *segment
	r       *bufio.Reader
	pos     int64
	hole    int // next hole to look at
	scratch []byte
}

func (q *Disk) reader(i int) *segReader {
	s := q.segs[i]
	off := int64(0)
	if i == 0 {
		off = q.headOff
	}
	rd := &segReader{s: s, pos: off, r: bufio.NewReaderSize(io.NewSectionReader(s.f, off, s.size-off), 64<<10)}
	for rd.hole < len(s.holes) && s.holes[rd.hole].off < off {
		rd.hole++
	}
	return rd
}

// next reads the next record; io.EOF at the segment's end.
func (rd *segReader) next(m *sdk.Message) (recordInfo, error) {
	for rd.hole < len(rd.s.holes) && rd.s.holes[rd.hole].off == rd.pos {
		h := rd.s.holes[rd.hole]
		rd.hole++
		if rd.pos+h.n >= rd.s.size {
			// A damaged end: the file may be shorter than it was.
			rd.pos = rd.s.size
			break
		}
		if _, err := rd.r.Discard(int(h.n)); err != nil {
			return recordInfo{}, errShort
		}
		rd.pos += h.n
	}
	if rd.pos >= rd.s.size {
		return recordInfo{}, io.EOF
	}
	info, err := readRecord(rd.r, &rd.scratch, m)
	if err != nil {
		return info, err
	}
	rd.pos += int64(info.n)
	return info, nil
}

// rescan checks segment i again after a read failed in it and records
// its damage as holes: the readers skip them from then on. It reports the
// messages newly lost, and whether anything new was found at all (if not,
// the failure was not damage, e.g. an I/O error).
func (q *Disk) rescan(i int) (lost uint64, found bool, err error) {
	s := q.segs[i]
	data := make([]byte, s.size)
	n, err := s.f.ReadAt(data, 0)
	if err != nil && err != io.EOF {
		return 0, false, fmt.Errorf("queue segment %s: %w", s.path, err)
	}
	data = data[:n] // a file cut short is damage like any other
	upper := q.nextSeq
	if i+1 < len(q.segs) {
		upper = q.segs[i+1].first
	}
	below := uint64(0)
	if i == 0 {
		below = q.headSeq
	}
	sc := scanSegment(data, s.first, upper, below)
	if sc.validEnd < s.size {
		sc.holes = append(sc.holes, hole{off: sc.validEnd, n: s.size - sc.validEnd, from: sc.end, to: upper})
	}
	type extent struct{ off, n int64 }
	known := make(map[extent]bool, len(s.holes))
	for _, h := range s.holes {
		known[extent{h.off, h.n}] = true
	}
	for _, h := range sc.holes {
		if known[extent{h.off, h.n}] {
			continue
		}
		found = true
		if n := lostAbove(h.from, h.to, q.headSeq); n > 0 {
			lost += n
			q.corrupt++
		}
	}
	if !found {
		return 0, false, nil
	}
	s.holes, s.count, s.msgBytes = sc.holes, sc.count, sc.msgBytes
	if i == 0 {
		q.headIdx, q.headOff, q.headUsed = sc.headIdx, sc.headOff, sc.headUsed
	}
	q.lostCorrupt += lost
	q.recount()
	return lost, true, nil
}

// damaged handles a failed read in segment i: rescan it, or give up with
// the read's error when there was no damage to skip.
func (q *Disk) damaged(i int, readErr error, de **DamageError) error {
	lost, found, err := q.rescan(i)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("queue segment %s: %w", q.segs[i].path, readErr)
	}
	if *de == nil {
		*de = &DamageError{Segment: q.segs[i].path}
	}
	(*de).Lost += lost
	return nil
}

// dropOldest drops the oldest messages until the queue is within its
// limit, never the newest message.
func (q *Disk) dropOldest() error {
	before, lostBefore := q.depth, q.lostCorrupt
	defer func() {
		// Records found damaged on the way are counted as such, not here.
		n := before - q.depth - int(q.lostCorrupt-lostBefore)
		if n > 0 {
			q.dropped += uint64(n)
			q.inflightDropped += n
		}
	}()
	var de *DamageError
	for tries := 0; q.bytes > q.limit && q.depth > 1; {
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
		rd := q.reader(0)
		for q.bytes > q.limit && q.depth > 1 && q.headIdx < s.count {
			info, err := rd.next(nil)
			if err != nil {
				if tries++; tries > 8 {
					return err
				}
				if err := q.damaged(0, err, &de); err != nil {
					return err
				}
				break
			}
			q.consumeAt(info, rd.pos)
		}
		q.removeConsumed()
	}
	if before != q.depth {
		return q.writeAck()
	}
	return nil
}

// consumeAt moves the head past one record of segs[0] that ends at off.
func (q *Disk) consumeAt(info recordInfo, off int64) {
	q.headIdx++
	q.headOff = off
	q.headUsed += info.size
	q.headSeq = info.seq + 1
	q.depth--
	q.bytes -= info.size
}

// advance consumes the n oldest pending records.
func (q *Disk) advance(n int) error {
	var de *DamageError
	tries := 0
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
			q.headSeq = max(q.headSeq, s.end)
			if len(q.segs) > 1 {
				q.removeConsumed()
			} else {
				q.headSeq = q.nextSeq
			}
			continue
		}
		rd := q.reader(0)
		for ; n > 0; n-- {
			info, err := rd.next(nil)
			if err != nil {
				if tries++; tries > 8 {
					return err
				}
				if err := q.damaged(0, err, &de); err != nil {
					return err
				}
				break
			}
			q.consumeAt(info, rd.pos)
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
// Damaged records on the way are skipped and reported by a *DamageError
// returned with the good messages; the next Peek does not report them
// again.
func (q *Disk) Peek(max int) ([]sdk.Message, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.inflightDropped = 0
	var de *DamageError
	for tries := 0; ; tries++ {
		out, bad, err := q.peek(max)
		if err == nil {
			if de != nil {
				return out, de
			}
			return out, nil
		}
		if tries >= 8 {
			return nil, err
		}
		if err := q.damaged(bad, err, &de); err != nil {
			return nil, err
		}
	}
}

// peek reads up to max messages; on a failed read it returns the segment
// it failed in.
func (q *Disk) peek(max int) ([]sdk.Message, int, error) {
	n := min(max, q.depth)
	if n <= 0 {
		return nil, 0, nil
	}
	out := make([]sdk.Message, 0, n)
	for i := range q.segs {
		rd := q.reader(i)
		for len(out) < n {
			var m sdk.Message
			if _, err := rd.next(&m); err != nil {
				if err == io.EOF {
					break
				}
				return nil, i, err
			}
			out = append(out, m)
		}
		if len(out) == n {
			break
		}
	}
	return out, 0, nil
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
	st := Stats{Depth: q.depth, Bytes: q.bytes, Dropped: q.dropped, DroppedFull: q.droppedFull,
		DroppedWrite: q.droppedWrite, DroppedCorrupt: q.lostCorrupt, Corrupt: q.corrupt}
	if q.writeErr != nil {
		st.WriteErr = q.writeErr.Error()
	}
	return st
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
