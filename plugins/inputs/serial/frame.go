package serial

import (
	"bytes"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"
)

// maxFrame bounds a frame in delimiter and idle-gap framing: a line that
// never sends its delimiter (wrong baud rate, wrong delimiter) must not
// grow a buffer without end.
const maxFrame = 4096

// counters are the plugin's Health counters. They are atomics because the
// stream loop updates them while Health reads them from another goroutine.
type counters struct {
	frames       atomic.Uint64 // frames that gave at least one value
	unmatched    atomic.Uint64 // well-formed frames that matched no point
	badChecksum  atomic.Uint64 // frames whose checksum did not verify
	short        atomic.Uint64 // frames cut short: unfinished at timeout, or too short for their points
	tooLong      atomic.Uint64 // frames longer than maxFrame, dropped
	noiseBytes   atomic.Uint64 // bytes thrown away outside any frame
	valueErrors  atomic.Uint64 // a pattern matched but its text did not convert
	polls        atomic.Uint64
	pollTimeouts atomic.Uint64 // polls after which some point was still without a value
	writes       atomic.Uint64
	writeErrors  atomic.Uint64
	opens        atomic.Uint64
	openErrors   atomic.Uint64
	portLost     atomic.Uint64
	unsolicited  atomic.Uint64 // poll mode: frames that came outside a request
}

// framer cuts the byte stream into frames by exactly one rule: a
// delimiter, a fixed length, or a silence of idleGap. It is driven by the
// arrival time of each chunk rather than by the clock, so it behaves the
// same in tests, in the fuzzer and on a real line, and it never allocates
// once its buffer has grown.
//
// With start set, bytes before a frame's start are noise and are skipped:
// that is how the framer finds its way back after garbage on the line.
// In delimiter framing a new start inside an unfinished frame also ends
// that frame as cut short, so "\x02W:1\x02W:2\r\n" yields only "\x02W:2".
type framer struct {
	delim   []byte
	length  int
	gap     time.Duration
	start   []byte
	timeout time.Duration // an unfinished frame older than this is dropped; 0: never
	c       *counters

	buf         []byte
	first, last time.Time // arrival of the frame's first and latest bytes
}

// feed adds a chunk that arrived at `at` and calls out for every frame it
// completes. out must not keep the slice: the framer reuses it.
func (f *framer) feed(data []byte, at time.Time, out func([]byte)) {
	if len(f.buf) > 0 {
		f.expire(at, out)
	}
	for _, b := range data {
		if len(f.buf) == 0 {
			f.first = at
		}
		f.buf = append(f.buf, b)
		if n := len(f.start); n > 0 && len(f.buf) <= n {
			// Still matching the start bytes: drop leading bytes until
			// what is buffered is a prefix of start again.
			for len(f.buf) > 0 && !bytes.HasPrefix(f.start, f.buf) {
				f.buf = f.buf[:copy(f.buf, f.buf[1:])]
				f.c.noiseBytes.Add(1)
			}
			if len(f.buf) < n {
				continue // start not complete yet
			}
		}
		switch {
		case f.length > 0:
			if len(f.buf) == f.length {
				f.emit(out)
			}
		case len(f.delim) > 0:
			body := f.buf[len(f.start):]
			if bytes.HasSuffix(body, f.delim) {
				f.buf = f.buf[:len(f.buf)-len(f.delim)]
				f.emit(out)
				continue
			}
			if n := len(f.start); n > 0 && len(body) >= n && bytes.HasSuffix(body, f.start) {
				// A new frame began before this one ended.
				f.c.short.Add(1)
				f.buf = append(f.buf[:0], f.start...)
				f.first = at
				continue
			}
			if len(f.buf) > maxFrame {
				f.c.tooLong.Add(1)
				f.buf = f.buf[:0]
			}
		default: // idle gap
			if len(f.buf) > maxFrame {
				f.c.tooLong.Add(1)
				f.buf = f.buf[:0]
			}
		}
	}
	if len(f.buf) > 0 {
		f.last = at
	}
}

// expire ends or drops the buffered frame when time has run out at now:
// in idle-gap framing a silence of gap ends the frame; a frame unfinished
// after timeout is dropped as cut short.
func (f *framer) expire(now time.Time, out func([]byte)) {
	if len(f.buf) == 0 {
		return
	}
	started := len(f.buf) >= len(f.start)
	if f.gap > 0 && now.Sub(f.last) >= f.gap {
		if started {
			f.emit(out)
		} else {
			f.c.noiseBytes.Add(uint64(len(f.buf)))
			f.buf = f.buf[:0]
		}
		return
	}
	if f.timeout > 0 && now.Sub(f.first) >= f.timeout {
		f.drop()
	}
}

// emit hands the buffered frame to out with the buffer already emptied,
// so that out may drop or reset the framer (a poll that ends with this
// frame does). The bytes stay valid until the next feed.
func (f *framer) emit(out func([]byte)) {
	frame := f.buf
	f.buf = f.buf[:0]
	out(frame)
}

// drop discards the buffered bytes: an unfinished frame counts as cut
// short, a partial start as noise.
func (f *framer) drop() {
	switch {
	case len(f.buf) == 0:
	case len(f.buf) >= len(f.start):
		f.c.short.Add(1)
	default:
		f.c.noiseBytes.Add(uint64(len(f.buf)))
	}
	f.buf = f.buf[:0]
}

// busy reports whether part of a frame is buffered.
func (f *framer) busy() bool { return len(f.buf) > 0 }

// deadline is when expire has something to do; zero when nothing is
// buffered or nothing can expire.
func (f *framer) deadline() time.Time {
	if len(f.buf) == 0 {
		return time.Time{}
	}
	var d time.Time
	if f.gap > 0 {
		d = f.last.Add(f.gap)
	}
	if f.timeout > 0 {
		if t := f.first.Add(f.timeout); d.IsZero() || t.Before(d) {
			d = t
		}
	}
	return d
}

// checksum is a frame check over the frame's last bytes.
type checksum uint8

const (
	ckNone checksum = iota
	ckSum8
	ckXor8
	ckCRC16
)

var checksumNames = [...]string{"none", "sum8", "xor8", "crc16-modbus"}

func (c checksum) String() string { return checksumNames[c] }

func parseChecksum(s string) (checksum, bool) {
	if s == "" {
		return ckNone, true
	}
	for i, n := range checksumNames {
		if s == n {
			return checksum(i), true
		}
	}
	return 0, false
}

// size is the number of check bytes at the end of a frame.
func (c checksum) size() int {
	switch c {
	case ckSum8, ckXor8:
		return 1
	case ckCRC16:
		return 2
	}
	return 0
}

// appendSum appends the check bytes of data: one byte for sum8 (the sum
// modulo 256) and xor8, two for crc16-modbus (low byte first, as Modbus
// RTU sends it).
func (c checksum) appendSum(dst, data []byte) []byte {
	switch c {
	case ckSum8:
		var s byte
		for _, b := range data {
			s += b
		}
		return append(dst, s)
	case ckXor8:
		var s byte
		for _, b := range data {
			s ^= b
		}
		return append(dst, s)
	case ckCRC16:
		crc := crc16(data)
		return append(dst, byte(crc), byte(crc>>8))
	}
	return dst
}

// verify splits a frame into its payload and check bytes and tells
// whether they agree. The check covers every byte of the frame before the
// check bytes, start bytes included (the delimiter is not part of the
// frame). ok is false and short true when the frame cannot even hold them.
func (c checksum) verify(frame []byte) (payload []byte, ok, short bool) {
	n := c.size()
	if n == 0 {
		return frame, true, false
	}
	if len(frame) <= n {
		return nil, false, true
	}
	payload = frame[:len(frame)-n]
	var buf [2]byte
	want := c.appendSum(buf[:0], payload)
	return payload, bytes.Equal(want, frame[len(frame)-n:]), false
}

// crc16 is the Modbus CRC: polynomial 0x8005 reflected (0xA001), initial
// value 0xFFFF, no final xor. Computed bitwise: a serial line delivers at
// most a few kilobytes a second, a table would buy nothing here.
func crc16(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, c := range b {
		crc ^= uint16(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// unescape reads the escapes of byte strings in the configuration: TOML
// literal strings ('R\r\n') keep their backslashes, and a device protocol
// needs control bytes. Known: \r \n \t \\ and \xHH; anything else is an
// error rather than a silent guess.
func unescape(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i+1 >= len(s) {
			return nil, fmt.Errorf("%q ends with a lone backslash (write \\\\ for a backslash)", s)
		}
		i++
		switch s[i] {
		case 'r':
			out = append(out, '\r')
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case '\\':
			out = append(out, '\\')
		case 'x':
			if i+3 > len(s) {
				return nil, fmt.Errorf("%q: \\x needs two hex digits", s)
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return nil, fmt.Errorf("%q: \\x%s is not two hex digits", s, s[i+1:i+3])
			}
			out = append(out, byte(v))
			i += 2
		default:
			return nil, fmt.Errorf("%q: unknown escape \\%c (known: \\r \\n \\t \\\\ \\xHH)", s, s[i])
		}
	}
	return out, nil
}
