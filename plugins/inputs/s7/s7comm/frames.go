// Package s7comm speaks S7comm, the protocol of Siemens S7-300/400/1200/1500
// PLCs, over ISO-on-TCP: TPKT (RFC 1006) carrying ISO 8073 COTP class 0,
// carrying S7 PDUs. It does the little a data gateway needs: connect with
// rack/slot TSAPs, negotiate the PDU size, and Read Var / Write Var with
// several items per request in the DB, M (merker), I and Q areas.
//
// No Go S7 library is served by the module proxy this project builds with
// (github.com/robinson/gos7 and its forks are not), so the protocol is
// written here from the public descriptions of the frames. Every parser
// works on a byte slice, never panics, and says which frame and which byte
// it did not accept: the input logs that when a device answers garbage.
package s7comm

import (
	"encoding/binary"
	"fmt"
)

// Area is an S7 memory area, with its protocol code.
type Area byte

const (
	AreaI  Area = 0x81 // process inputs (I, German E)
	AreaQ  Area = 0x82 // process outputs (Q, German A)
	AreaM  Area = 0x83 // merkers / flags (M)
	AreaDB Area = 0x84 // data blocks
)

func (a Area) String() string {
	switch a {
	case AreaI:
		return "I"
	case AreaQ:
		return "Q"
	case AreaM:
		return "M"
	case AreaDB:
		return "DB"
	}
	return fmt.Sprintf("area(0x%02x)", byte(a))
}

// Item is one variable of a Read Var or Write Var request: Size bytes from
// byte Start of the area (of data block DB), or with IsBit the single bit
// Bit of byte Start.
type Item struct {
	Area  Area
	DB    int
	Start int
	Bit   int
	IsBit bool
	Size  int
}

// size is the number of data bytes the item moves.
func (it Item) size() int {
	if it.IsBit {
		return 1
	}
	return it.Size
}

func (it Item) String() string {
	prefix := it.Area.String()
	if it.Area == AreaDB {
		prefix = fmt.Sprintf("DB%d.DB", it.DB)
	}
	if it.IsBit {
		return fmt.Sprintf("%sX%d.%d", prefix, it.Start, it.Bit)
	}
	return fmt.Sprintf("%sB%d[%d]", prefix, it.Start, it.Size)
}

// Limits of the protocol.
const (
	// MaxItems is the most items one request may carry. The protocol's
	// count is a byte, but S7-300/400 CPUs (and snap7) accept at most 20.
	MaxItems = 20
	// MaxAddress is the highest byte address the 3-byte bit address of
	// an item can hold (bit addresses are 21+3 bits).
	MaxAddress = 1<<21 - 1
	tpktLen    = 4
	// dtHeader is the COTP data TPDU header: length indicator, type 0xF0,
	// TPDU number with the end-of-transmission bit.
	dtHeader  = 3
	jobHeader = 10 // S7 header of a job
	ackHeader = 12 // S7 header of an ack_data: job + error class and code
	itemSpec  = 12 // one item in a Read/Write Var parameter
)

// FrameError says which frame could not be understood and where.
type FrameError struct {
	Frame  string // "TPKT", "COTP", "S7 header", "read response", ...
	Offset int    // byte offset within that frame
	Msg    string
}

func (e *FrameError) Error() string {
	return fmt.Sprintf("s7comm: %s: at byte %d: %s", e.Frame, e.Offset, e.Msg)
}

func frameErr(frame string, off int, format string, args ...any) error {
	return &FrameError{Frame: frame, Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// PLCError is a request the PLC refused as a whole (the error class and
// code of the S7 header of its answer). The connection is still usable.
type PLCError struct{ Class, Code byte }

func (e *PLCError) Error() string {
	names := map[byte]string{0x81: "application relationship", 0x82: "object definition", 0x83: "no resources",
		0x84: "error on service processing", 0x85: "error on supplies", 0x87: "access error"}
	n := names[e.Class]
	if n == "" {
		n = "unknown class"
	}
	return fmt.Sprintf("s7comm: the PLC refused the request: error class 0x%02x (%s), code 0x%02x", e.Class, n, e.Code)
}

// ItemError is one item the PLC refused, with its return code.
type ItemError struct{ Code byte }

func (e *ItemError) Error() string {
	names := map[byte]string{0x01: "hardware fault", 0x03: "access to the object not allowed",
		0x05: "address out of range", 0x06: "data type not supported", 0x07: "data type inconsistent",
		0x0A: "object does not exist"}
	n := names[e.Code]
	if n == "" {
		n = "unknown return code"
	}
	return fmt.Sprintf("PLC returned 0x%02x (%s)", e.Code, n)
}

const retOK = 0xFF

// TPKT

// tpktLength checks a TPKT header and returns the length of the whole
// packet (header included).
func tpktLength(h []byte) (int, error) {
	if len(h) < tpktLen {
		return 0, frameErr("TPKT", len(h), "%d bytes, a header has 4", len(h))
	}
	if h[0] != 3 {
		return 0, frameErr("TPKT", 0, "version %d, want 3", h[0])
	}
	n := int(binary.BigEndian.Uint16(h[2:4]))
	if n < tpktLen+2 {
		return 0, frameErr("TPKT", 2, "length %d is shorter than a header and a COTP TPDU", n)
	}
	return n, nil
}

func appendTPKT(dst []byte, payloadLen int) []byte {
	return binary.BigEndian.AppendUint16(append(dst, 3, 0), uint16(tpktLen+payloadLen))
}

// COTP TPDU types (the high nibble of the second byte).
const (
	cotpCR = 0xE0 // connection request
	cotpCC = 0xD0 // connection confirm
	cotpDR = 0x80 // disconnect request
	cotpDT = 0xF0 // data
	cotpER = 0x70 // error
)

// connectRequest is the TPKT frame of a COTP connection request asking
// for the TSAPs and 1024-byte TPDUs.
func connectRequest(srcTSAP, dstTSAP uint16) []byte {
	cr := []byte{
		0, cotpCR, 0, 0, 0, 1, 0, // LI (set below), CR, dst ref, src ref, class 0
		0xC0, 1, 0x0A, // TPDU size 2^10
		0xC1, 2, byte(srcTSAP >> 8), byte(srcTSAP),
		0xC2, 2, byte(dstTSAP >> 8), byte(dstTSAP),
	}
	cr[0] = byte(len(cr) - 1)
	return append(appendTPKT(nil, len(cr)), cr...)
}

// cotp is a parsed COTP TPDU.
type cotp struct {
	typ  byte
	eot  bool   // DT: the last TPDU of an S7 PDU
	data []byte // DT: user data
}

// parseCOTP reads the TPDU after a TPKT header.
func parseCOTP(b []byte) (cotp, error) {
	const f = "COTP"
	if len(b) < 2 {
		return cotp{}, frameErr(f, len(b), "%d bytes, a TPDU has at least 2", len(b))
	}
	li := int(b[0])
	if li < 1 || 1+li > len(b) {
		return cotp{}, frameErr(f, 0, "length indicator %d does not fit the %d bytes received", li, len(b))
	}
	t := cotp{typ: b[1] & 0xF0}
	switch t.typ {
	case cotpDT:
		if li < 2 {
			return cotp{}, frameErr(f, 0, "data TPDU with length indicator %d, want 2", li)
		}
		t.eot = b[2]&0x80 != 0
		t.data = b[1+li:]
	case cotpCC:
		if li < 6 {
			return cotp{}, frameErr(f, 0, "connection confirm with length indicator %d, want at least 6", li)
		}
	case cotpDR:
		reason := byte(0)
		if li >= 6 {
			reason = b[6]
		}
		return cotp{}, frameErr(f, 1, "the PLC disconnected (disconnect request, reason 0x%02x): wrong rack/slot or connection type?", reason)
	case cotpER:
		return cotp{}, frameErr(f, 1, "the PLC answered a TPDU error")
	default:
		return cotp{}, frameErr(f, 1, "unexpected TPDU type 0x%02x", b[1])
	}
	return t, nil
}

func appendDT(dst []byte, s7Len int) []byte {
	return append(appendTPKT(dst, dtHeader+s7Len), 2, cotpDT, 0x80)
}

// S7 PDU types (ROSCTR).
const (
	rosJob     = 1
	rosAck     = 2
	rosAckData = 3
)

// S7 functions.
const (
	fnSetup = 0xF0
	fnRead  = 0x04
	fnWrite = 0x05
)

func appendJobHeader(dst []byte, ref uint16, paramLen, dataLen int) []byte {
	dst = append(dst, 0x32, rosJob, 0, 0)
	dst = binary.BigEndian.AppendUint16(dst, ref)
	dst = binary.BigEndian.AppendUint16(dst, uint16(paramLen))
	return binary.BigEndian.AppendUint16(dst, uint16(dataLen))
}

// s7Ack is a parsed S7 answer.
type s7Ack struct {
	rosctr          byte
	ref             uint16
	errClass, errCo byte
	param, data     []byte
}

// parseS7 reads an S7 PDU the PLC sent: an ack or ack_data.
func parseS7(b []byte) (s7Ack, error) {
	const f = "S7 header"
	if len(b) < jobHeader {
		return s7Ack{}, frameErr(f, len(b), "%d bytes, a header has at least %d", len(b), jobHeader)
	}
	if b[0] != 0x32 {
		return s7Ack{}, frameErr(f, 0, "protocol id 0x%02x, want 0x32", b[0])
	}
	a := s7Ack{rosctr: b[1], ref: binary.BigEndian.Uint16(b[4:6])}
	pl, dl := int(binary.BigEndian.Uint16(b[6:8])), int(binary.BigEndian.Uint16(b[8:10]))
	h := jobHeader
	switch a.rosctr {
	case rosAck, rosAckData:
		h = ackHeader
		if len(b) < h {
			return s7Ack{}, frameErr(f, len(b), "%d bytes, an ack header has %d", len(b), ackHeader)
		}
		a.errClass, a.errCo = b[10], b[11]
	default:
		return s7Ack{}, frameErr(f, 1, "PDU type %d, want an acknowledgement (2 or 3)", a.rosctr)
	}
	if h+pl+dl != len(b) {
		return s7Ack{}, frameErr(f, 6, "parameter length %d and data length %d do not match the %d bytes after the header",
			pl, dl, len(b)-h)
	}
	a.param, a.data = b[h:h+pl], b[h+pl:]
	return a, nil
}

// setupRequest is the S7 PDU asking for a PDU size.
func setupRequest(ref uint16, pdu int) []byte {
	b := appendJobHeader(nil, ref, 8, 0)
	b = append(b, fnSetup, 0, 0, 1, 0, 1) // one job in flight each way
	return binary.BigEndian.AppendUint16(b, uint16(pdu))
}

// parseSetup reads the PDU size from a setup communication answer.
func parseSetup(a s7Ack) (int, error) {
	const f = "setup communication response"
	if len(a.param) != 8 {
		return 0, frameErr(f, 0, "parameter of %d bytes, want 8", len(a.param))
	}
	if a.param[0] != fnSetup {
		return 0, frameErr(f, 0, "function 0x%02x, want 0xf0", a.param[0])
	}
	pdu := int(binary.BigEndian.Uint16(a.param[6:8]))
	if pdu < MinPDU {
		return 0, frameErr(f, 6, "PDU size %d, below the %d bytes this client needs", pdu, MinPDU)
	}
	return pdu, nil
}

// MinPDU is the smallest PDU size accepted from a PLC: room for one item.
const MinPDU = 64

func appendItemSpec(dst []byte, it Item) []byte {
	ts, n, addr := byte(0x02), it.Size, it.Start<<3
	if it.IsBit {
		ts, n, addr = 0x01, 1, it.Start<<3|it.Bit
	}
	dst = append(dst, 0x12, 0x0A, 0x10, ts)
	dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	db := 0
	if it.Area == AreaDB {
		db = it.DB
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(db))
	return append(dst, byte(it.Area), byte(addr>>16), byte(addr>>8), byte(addr))
}

// checkItem refuses items the frame cannot express.
func checkItem(it Item) error {
	switch {
	case it.Area != AreaI && it.Area != AreaQ && it.Area != AreaM && it.Area != AreaDB:
		return fmt.Errorf("s7comm: item %s: unknown area", it)
	case it.Area == AreaDB && (it.DB < 1 || it.DB > 65535):
		return fmt.Errorf("s7comm: item %s: DB number %d, want 1..65535", it, it.DB)
	case it.Start < 0 || it.Start > MaxAddress:
		return fmt.Errorf("s7comm: item %s: byte address %d, want 0..%d", it, it.Start, MaxAddress)
	case it.IsBit && (it.Bit < 0 || it.Bit > 7):
		return fmt.Errorf("s7comm: item %s: bit %d, want 0..7", it, it.Bit)
	case !it.IsBit && (it.Size < 1 || it.Size > 65535):
		return fmt.Errorf("s7comm: item %s: size %d, want 1..65535", it, it.Size)
	}
	return nil
}

// readRequest is the S7 PDU of a Read Var job.
func readRequest(ref uint16, items []Item) []byte {
	b := appendJobHeader(make([]byte, 0, ReadRequestSize(len(items))), ref, 2+itemSpec*len(items), 0)
	b = append(b, fnRead, byte(len(items)))
	for _, it := range items {
		b = appendItemSpec(b, it)
	}
	return b
}

// ReadRequestSize is the S7 PDU size of a Read Var request of n items.
func ReadRequestSize(n int) int { return jobHeader + 2 + itemSpec*n }

// ReadResponseSize is the largest S7 PDU size of the answer to a Read
// Var of items of these data sizes (each but the last padded to even).
func ReadResponseSize(sizes ...int) int {
	n := ackHeader + 2
	for i, s := range sizes {
		n += 4 + s
		if i < len(sizes)-1 && s%2 == 1 {
			n++
		}
	}
	return n
}

// WriteRequestSize is the S7 PDU size of a Write Var request with items
// of these data sizes.
func WriteRequestSize(sizes ...int) int {
	return ReadRequestSize(len(sizes)) + ReadResponseSize(sizes...) - ackHeader - 2
}

// Result is the outcome of one item of a read: its bytes, or why the PLC
// refused it (an *ItemError).
type Result struct {
	Data []byte
	Err  error
}

// parseReadResponse splits the data of a Read Var answer into one result
// per requested item. The results' data alias b.
func parseReadResponse(a s7Ack, items []Item) ([]Result, error) {
	const f = "read response"
	if len(a.param) != 2 || a.param[0] != fnRead {
		return nil, frameErr(f, 0, "parameter % x, want 04 and an item count", a.param)
	}
	if int(a.param[1]) != len(items) {
		return nil, frameErr(f, 1, "%d items, %d were asked for", a.param[1], len(items))
	}
	res := make([]Result, len(items))
	d, off := a.data, 0
	for i, it := range items {
		if off+4 > len(d) {
			return nil, frameErr(f, ackHeader+2+off, "item %d: %d bytes left, an item header has 4", i+1, len(d)-off)
		}
		code, ts, n := d[off], d[off+1], int(binary.BigEndian.Uint16(d[off+2:off+4]))
		if code != retOK {
			res[i].Err = &ItemError{Code: code}
			off += 4
			continue
		}
		switch ts {
		case 0x03, 0x04, 0x05: // bit, byte/word/dword, integer: length in bits
			n = (n + 7) / 8
		case 0x07, 0x09: // real, octet string: length in bytes
		default:
			return nil, frameErr(f, ackHeader+2+off+1, "item %d: unknown transport size 0x%02x", i+1, ts)
		}
		if n != it.size() {
			return nil, frameErr(f, ackHeader+2+off+2, "item %d (%s): %d bytes, %d were asked for", i+1, it, n, it.size())
		}
		off += 4
		if off+n > len(d) {
			return nil, frameErr(f, ackHeader+2+off, "item %d: %d data bytes announced, %d left", i+1, n, len(d)-off)
		}
		res[i].Data = d[off : off+n : off+n]
		off += n
		if n%2 == 1 && i < len(items)-1 && off < len(d) {
			off++ // fill byte
		}
	}
	if off != len(d) {
		return nil, frameErr(f, ackHeader+2+off, "%d bytes after the last item", len(d)-off)
	}
	return res, nil
}

// writeRequest is the S7 PDU of a Write Var job; data[i] is the bytes of
// items[i] (one byte, 0 or 1, for a bit).
func writeRequest(ref uint16, items []Item, data [][]byte) []byte {
	sizes := make([]int, len(items))
	for i := range items {
		sizes[i] = len(data[i])
	}
	pl := 2 + itemSpec*len(items)
	b := appendJobHeader(make([]byte, 0, WriteRequestSize(sizes...)), ref, pl, WriteRequestSize(sizes...)-jobHeader-pl)
	b = append(b, fnWrite, byte(len(items)))
	for _, it := range items {
		b = appendItemSpec(b, it)
	}
	for i, it := range items {
		ts, bits := byte(0x04), 8*len(data[i])
		if it.IsBit {
			ts, bits = 0x03, 1
		}
		b = append(b, 0, ts)
		b = binary.BigEndian.AppendUint16(b, uint16(bits))
		b = append(b, data[i]...)
		if len(data[i])%2 == 1 && i < len(items)-1 {
			b = append(b, 0)
		}
	}
	return b
}

// parseWriteResponse reads the return code of every item of a Write Var.
func parseWriteResponse(a s7Ack, n int) ([]error, error) {
	const f = "write response"
	if len(a.param) != 2 || a.param[0] != fnWrite {
		return nil, frameErr(f, 0, "parameter % x, want 05 and an item count", a.param)
	}
	if int(a.param[1]) != n {
		return nil, frameErr(f, 1, "%d items, %d were written", a.param[1], n)
	}
	if len(a.data) != n {
		return nil, frameErr(f, ackHeader+2, "%d return codes for %d items", len(a.data), n)
	}
	errs := make([]error, n)
	for i, c := range a.data {
		if c != retOK {
			errs[i] = &ItemError{Code: c}
		}
	}
	return errs, nil
}
