package mqtt

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
	"sync"
)

// Payloads by reference. paho builds every PUBLISH in a new buffer of its
// own (the fixed header, the topic, the packet id and a copy of the
// payload) before its one Write: at the bench's ~60 KB batch a poll, that
// copy was nine tenths of what an isolated MQTT output's process
// allocated, and the collections it paced a fifth of that process's CPU.
// So Publish hands paho a stub in place of a large payload, registered
// with the connection's payloadRefs, and refConn, the outermost layer of
// the connection paho writes to, puts the payload back as the packet
// passes: the broker receives the packet paho would have written with the
// payload itself, byte for byte, from a buffer the connection reuses.
//
// A stub never leaves the process: it starts with eight random bytes of
// this connection (a message of the same shape from anywhere else cannot
// be mistaken for one), and a stub whose payload is not registered, or a
// PUBLISH written in pieces (a paho that no longer writes a packet in one
// call), fails the write, which paho reports as a lost connection; the
// core then offers the batch again on the next one.

// refThreshold is the least payload that goes by reference: below it
// paho's copy costs less than the stub's bookkeeping.
const refThreshold = 1 << 10

// stubLen is a stub's size: the connection's nonce, then the id.
const stubLen = 16

// maxKeptPacket bounds the rewrite buffer kept between packets: one huge
// message must not pin its size for the connection's life.
const maxKeptPacket = 1 << 20

// payloadRefs are the payloads of one connection handed to paho as
// stubs and not yet written. Publish registers them (stub), refConn takes
// them back as paho writes their packets (resolve); on a connection that
// fails, what is left goes with it. Safe for concurrent use.
type payloadRefs struct {
	nonce [8]byte

	mu   sync.Mutex
	next uint64
	m    map[uint64][]byte

	wmu sync.Mutex // one packet at a time through buf
	buf []byte     // the rewritten packet, reused
}

func newPayloadRefs() *payloadRefs {
	r := &payloadRefs{m: map[uint64][]byte{}}
	rand.Read(r.nonce[:]) // never fails (crypto/rand)
	return r
}

// stub returns what to hand paho for payload: payload itself when it is
// small, else a stub that refConn resolves to it. payload must not change
// until paho has written the packet, which Publish's confirmation implies.
func (r *payloadRefs) stub(payload []byte) []byte {
	if r == nil || len(payload) < refThreshold {
		return payload
	}
	r.mu.Lock()
	r.next++
	id := r.next
	r.m[id] = payload
	r.mu.Unlock()
	s := make([]byte, stubLen)
	copy(s, r.nonce[:])
	binary.BigEndian.PutUint64(s[len(r.nonce):], id)
	return s
}

var (
	errUnknownRef = errors.New("a payload reference with no payload registered (a bug): closing the connection rather than publish it")
	errSplitWrite = errors.New("a PUBLISH written in pieces: payload references cannot be resolved (a paho upgrade changed how it writes)")
)

// resolve returns the packet to write for p, one whole packet as paho
// writes it: p itself unless it is a PUBLISH carrying one of r's stubs,
// then the packet with the payload in its place, in r's buffer (the
// caller holds r.wmu until it has written it).
func (r *payloadRefs) resolve(p []byte) ([]byte, error) {
	if len(p) == 0 || p[0]>>4 != 3 {
		return p, nil
	}
	length, n, ok := readLength(p[1:])
	if !ok || 1+n+length != len(p) {
		return nil, errSplitWrite
	}
	body := p[1+n:]
	if len(body) < 2 {
		return p, nil // malformed: the broker says so, as it would without us
	}
	vh := 2 + int(binary.BigEndian.Uint16(body))
	if (p[0]>>1)&3 > 0 {
		vh += 2 // packet identifier
	}
	if vh+stubLen != len(body) || !bytes.Equal(body[vh:vh+len(r.nonce)], r.nonce[:]) {
		return p, nil
	}
	id := binary.BigEndian.Uint64(body[vh+len(r.nonce):])
	r.mu.Lock()
	payload, found := r.m[id]
	delete(r.m, id)
	r.mu.Unlock()
	if !found {
		return nil, errUnknownRef
	}
	out := append(r.buf[:0], p[0])
	out = appendLength(out, vh+len(payload))
	out = append(append(out, body[:vh]...), payload...)
	if cap(out) <= maxKeptPacket {
		r.buf = out
	} else {
		r.buf = nil
	}
	return out, nil
}

// readLength decodes an MQTT remaining length: its value, how many bytes
// it took, false when it is cut off or longer than four bytes.
func readLength(b []byte) (length, n int, ok bool) {
	for i := 0; i < 4 && i < len(b); i++ {
		length |= int(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return length, i + 1, true
		}
	}
	return 0, 0, false
}

// refConn is the connection paho writes to: each Write, one packet,
// goes out with its stub resolved (see payloadRefs).
type refConn struct {
	net.Conn
	refs *payloadRefs
}

// withRefs wraps c for refs; without refs (nothing goes by reference) c
// is written as it is.
func withRefs(c net.Conn, refs *payloadRefs) net.Conn {
	if refs == nil {
		return c
	}
	return &refConn{Conn: c, refs: refs}
}

func (c *refConn) Write(p []byte) (int, error) {
	c.refs.wmu.Lock()
	defer c.refs.wmu.Unlock()
	out, err := c.refs.resolve(p)
	if err != nil {
		return 0, err
	}
	if _, err := c.Conn.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}
