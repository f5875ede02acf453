package mqtt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
)

// truncatedMarker starts the payload of a PUBLISH that limitConn cut: the
// marker, the original payload size in decimal, a NUL, then the first
// bytes of the payload. A server cannot make a real command look like more
// than a refused one with it: a payload that starts so is refused as too
// large, which is all a forged one could achieve.
var truncatedMarker = []byte("\x00edgepipe-truncated:")

// keptBytes is how much of a cut payload is kept, to salvage its id.
const keptBytes = 512

// limitConn bounds what an incoming message can cost: paho reads every
// packet whole into memory, so a 250 MB PUBLISH would be 250 MB (and
// more) of heap before any check could refuse it. limitConn reads the MQTT
// stream beneath paho and rewrites a PUBLISH whose payload is larger than
// max into a small one: the topic, the packet id (paho still acknowledges
// it, so the server does not send it again) and a marked head of the
// payload, discarding the rest as it streams by. Everything else passes
// through untouched.
type limitConn struct {
	net.Conn
	max     int
	pending []byte // rewritten bytes to hand to paho first
	remain  int64  // bytes of the current packet to pass through as they are
	skip    int64  // bytes of the current packet to discard
	scratch [32 << 10]byte
}

func withLimit(c net.Conn, max int) net.Conn { return &limitConn{Conn: c, max: max} }

func (c *limitConn) Read(p []byte) (int, error) {
	for {
		switch {
		case len(c.pending) > 0:
			n := copy(p, c.pending)
			c.pending = c.pending[n:]
			return n, nil
		case c.skip > 0:
			n, err := c.Conn.Read(c.scratch[:min(c.skip, int64(len(c.scratch)))])
			c.skip -= int64(n)
			if err != nil {
				return 0, err
			}
		case c.remain > 0:
			n, err := c.Conn.Read(p[:min(int64(len(p)), c.remain)])
			c.remain -= int64(n)
			return n, err
		default:
			if err := c.nextPacket(); err != nil {
				return 0, err
			}
		}
	}
}

// nextPacket reads the fixed header of the next packet and decides what
// to do with it.
func (c *limitConn) nextPacket() error {
	hdr := make([]byte, 1, 5)
	if _, err := io.ReadFull(c.Conn, hdr); err != nil {
		return err
	}
	var length int64
	for i := 0; ; i++ {
		if i == 4 {
			return errors.New("malformed MQTT packet length")
		}
		var b [1]byte
		if _, err := io.ReadFull(c.Conn, b[:]); err != nil {
			return err
		}
		hdr = append(hdr, b[0])
		length |= int64(b[0]&0x7f) << (7 * i)
		if b[0]&0x80 == 0 {
			break
		}
	}
	if length <= int64(c.max) {
		c.pending, c.remain = hdr, length
		return nil
	}
	if hdr[0]>>4 != 3 {
		// Only a PUBLISH can be large; anything else that claims to be is
		// a broken or hostile server.
		return fmt.Errorf("MQTT packet of type %d and %d bytes from the server; refusing it", hdr[0]>>4, length)
	}
	// A PUBLISH larger than max: read its variable header.
	var tl [2]byte
	if _, err := io.ReadFull(c.Conn, tl[:]); err != nil {
		return err
	}
	vhLen := 2 + int64(binary.BigEndian.Uint16(tl[:]))
	if (hdr[0]>>1)&3 > 0 {
		vhLen += 2 // packet identifier
	}
	if vhLen > length {
		return errors.New("malformed MQTT PUBLISH")
	}
	vh := make([]byte, vhLen)
	copy(vh, tl[:])
	if _, err := io.ReadFull(c.Conn, vh[2:]); err != nil {
		return err
	}
	size := length - vhLen
	if size <= int64(c.max) {
		c.pending, c.remain = append(hdr, vh...), size
		return nil
	}
	head := make([]byte, min(size, keptBytes))
	if _, err := io.ReadFull(c.Conn, head); err != nil {
		return err
	}
	payload := append(append(bytes.Clone(truncatedMarker), strconv.FormatInt(size, 10)...), 0)
	payload = append(payload, head...)
	out := []byte{hdr[0]}
	out = appendLength(out, len(vh)+len(payload))
	out = append(append(out, vh...), payload...)
	c.pending, c.skip = out, size-int64(len(head))
	return nil
}

func appendLength(b []byte, n int) []byte {
	for {
		d := byte(n & 0x7f)
		n >>= 7
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

// cutPayload reports whether limitConn cut payload, and if so the size it
// had and the head it kept.
func cutPayload(payload []byte) (head []byte, size int, ok bool) {
	rest, found := bytes.CutPrefix(payload, truncatedMarker)
	if !found {
		return nil, 0, false
	}
	num, head, found := bytes.Cut(rest, []byte{0})
	n, err := strconv.Atoi(string(num))
	if !found || err != nil {
		return rest, len(payload), true
	}
	return head, n, true
}
