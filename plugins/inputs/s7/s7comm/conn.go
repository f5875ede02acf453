package s7comm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Connection types: the high byte of the PLC's TSAP.
const (
	ConnPG    = 1 // programming device (the default; every CPU accepts it)
	ConnOP    = 2 // operator panel
	ConnBasic = 3 // S7 basic
)

// Options of a connection.
type Options struct {
	Rack, Slot int
	ConnType   int           // ConnPG, ConnOP or ConnBasic; 0 means ConnPG
	PDUSize    int           // asked for at setup; the PLC may grant less; 0 means 960
	Timeout    time.Duration // per exchange (connect, request and answer); 0 means 2 s
}

// Conn is one ISO-on-TCP connection to a PLC, one request at a time. It is
// not safe for concurrent use. After any error other than a *PLCError the
// byte stream can no longer be trusted: Close it and Dial again.
type Conn struct {
	c       net.Conn
	pdu     int
	ref     uint16
	timeout time.Duration
	buf     []byte
}

// Dial connects to address (host or host:port, port 102 by default), opens
// the COTP connection to the rack and slot and negotiates the PDU size.
func Dial(ctx context.Context, address string, o Options) (*Conn, error) {
	if _, _, err := net.SplitHostPort(address); err != nil {
		address = net.JoinHostPort(address, "102")
	}
	if o.ConnType == 0 {
		o.ConnType = ConnPG
	}
	if o.PDUSize == 0 {
		o.PDUSize = 960
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Second
	}
	if o.Rack < 0 || o.Rack > 7 || o.Slot < 0 || o.Slot > 31 {
		return nil, fmt.Errorf("s7comm: rack %d slot %d: want rack 0..7 and slot 0..31", o.Rack, o.Slot)
	}
	d := net.Dialer{Timeout: o.Timeout}
	nc, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		return nil, err
	}
	c := &Conn{c: nc, timeout: o.Timeout}
	if err := c.handshake(ctx, o); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("s7comm: connecting to %s (rack %d, slot %d): %w", address, o.Rack, o.Slot, err)
	}
	return c, nil
}

func (c *Conn) handshake(ctx context.Context, o Options) error {
	if err := c.deadline(ctx); err != nil {
		return err
	}
	dst := uint16(o.ConnType)<<8 | uint16(o.Rack)<<5 | uint16(o.Slot)
	if _, err := c.c.Write(connectRequest(0x0100, dst)); err != nil {
		return err
	}
	t, err := c.readTPDU()
	if err != nil {
		return err
	}
	if t.typ != cotpCC {
		return frameErr("COTP", 1, "TPDU type 0x%02x in answer to the connection request, want a connection confirm", t.typ)
	}
	a, err := c.exchange(ctx, setupRequest(c.nextRef(), o.PDUSize))
	if err != nil {
		return err
	}
	pdu, err := parseSetup(a)
	if err != nil {
		return err
	}
	c.pdu = min(pdu, max(o.PDUSize, MinPDU))
	return nil
}

// PDUSize is the negotiated size of an S7 PDU: every request and every
// answer must fit it.
func (c *Conn) PDUSize() int { return c.pdu }

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

func (c *Conn) nextRef() uint16 {
	c.ref++
	if c.ref == 0 {
		c.ref = 1
	}
	return c.ref
}

func (c *Conn) deadline(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dl := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	return c.c.SetDeadline(dl)
}

// readTPDU reads one TPKT packet and parses its COTP TPDU.
func (c *Conn) readTPDU() (cotp, error) {
	var h [tpktLen]byte
	if _, err := io.ReadFull(c.c, h[:]); err != nil {
		return cotp{}, err
	}
	n, err := tpktLength(h[:])
	if err != nil {
		return cotp{}, err
	}
	if cap(c.buf) < n-tpktLen {
		c.buf = make([]byte, n-tpktLen)
	}
	b := c.buf[:n-tpktLen]
	if _, err := io.ReadFull(c.c, b); err != nil {
		return cotp{}, err
	}
	return parseCOTP(b)
}

// exchange sends one S7 job and returns the PLC's answer to it, put
// together from as many data TPDUs as the PLC sent.
func (c *Conn) exchange(ctx context.Context, job []byte) (s7Ack, error) {
	if err := c.deadline(ctx); err != nil {
		return s7Ack{}, err
	}
	frame := append(appendDT(make([]byte, 0, tpktLen+dtHeader+len(job)), len(job)), job...)
	if _, err := c.c.Write(frame); err != nil {
		return s7Ack{}, err
	}
	var pdu []byte
	for {
		t, err := c.readTPDU()
		if err != nil {
			return s7Ack{}, err
		}
		if t.typ != cotpDT {
			return s7Ack{}, frameErr("COTP", 1, "TPDU type 0x%02x during an exchange, want data", t.typ)
		}
		pdu = append(pdu, t.data...)
		if t.eot {
			break
		}
		if len(pdu) > 1<<16 {
			return s7Ack{}, frameErr("COTP", 0, "an S7 PDU of more than 64 KiB without end of transmission")
		}
	}
	a, err := parseS7(pdu)
	if err != nil {
		return s7Ack{}, err
	}
	ref := uint16(job[4])<<8 | uint16(job[5])
	if a.ref != ref {
		return s7Ack{}, frameErr("S7 header", 4, "PDU reference %d, the request had %d", a.ref, ref)
	}
	if a.errClass != 0 || a.errCo != 0 {
		return s7Ack{}, &PLCError{Class: a.errClass, Code: a.errCo}
	}
	if a.rosctr != rosAckData {
		return s7Ack{}, frameErr("S7 header", 1, "an acknowledgement without data, want ack_data")
	}
	return a, nil
}

// Read reads the items in one Read Var request; request and answer must
// fit the PDU (see ReadRequestSize, ReadResponseSize) and there may be at
// most MaxItems. Items the PLC refuses carry their own error; an error
// return means the whole request failed.
func (c *Conn) Read(ctx context.Context, items []Item) ([]Result, error) {
	if len(items) == 0 || len(items) > MaxItems {
		return nil, fmt.Errorf("s7comm: read of %d items: want 1..%d", len(items), MaxItems)
	}
	sizes := make([]int, len(items))
	for i, it := range items {
		if err := checkItem(it); err != nil {
			return nil, err
		}
		sizes[i] = it.size()
	}
	if n := max(ReadRequestSize(len(items)), ReadResponseSize(sizes...)); n > c.pdu {
		return nil, fmt.Errorf("s7comm: read of %d items needs a PDU of %d bytes, the PLC allows %d", len(items), n, c.pdu)
	}
	a, err := c.exchange(ctx, readRequest(c.nextRef(), items))
	if err != nil {
		return nil, err
	}
	return parseReadResponse(a, items)
}

// Write writes data[i] to items[i] in one Write Var request (a bit item
// takes one byte, 0 or 1). The request must fit the PDU (WriteRequestSize).
// The returned slice holds one error per item, nil where it was written.
func (c *Conn) Write(ctx context.Context, items []Item, data [][]byte) ([]error, error) {
	if len(items) == 0 || len(items) > MaxItems || len(data) != len(items) {
		return nil, fmt.Errorf("s7comm: write of %d items with %d values: want 1..%d items, one value each", len(items), len(data), MaxItems)
	}
	sizes := make([]int, len(items))
	for i, it := range items {
		if err := checkItem(it); err != nil {
			return nil, err
		}
		if len(data[i]) != it.size() {
			return nil, fmt.Errorf("s7comm: write of %s with %d bytes", it, len(data[i]))
		}
		sizes[i] = len(data[i])
	}
	if n := WriteRequestSize(sizes...); n > c.pdu {
		return nil, fmt.Errorf("s7comm: write of %d items needs a PDU of %d bytes, the PLC allows %d", len(items), n, c.pdu)
	}
	a, err := c.exchange(ctx, writeRequest(c.nextRef(), items, data))
	if err != nil {
		return nil, err
	}
	return parseWriteResponse(a, len(items))
}

// Broken reports whether err leaves the connection unusable: anything but
// the PLC refusing a request (*PLCError) or an item (*ItemError), which it
// answered in good order.
func Broken(err error) bool {
	var pe *PLCError
	var ie *ItemError
	return err != nil && !errors.As(err, &pe) && !errors.As(err, &ie)
}
