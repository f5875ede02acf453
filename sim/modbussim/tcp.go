package modbussim

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Modbus TCP is framed here rather than by the Modbus library's server,
// for the same reason as RTU (rtu.go): one implementation of the requests
// (handler.pdu) behind both framings, answering what the standard says. The
// library's server closes the connection on a request whose quantity is out
// of the protocol's range, where a slave answers exception 03 (illegal data
// value) and keeps serving.

// mbapLen is the MBAP header: transaction id, protocol id, length, unit id.
const mbapLen = 7

// ServeTCP answers Modbus TCP requests read from rw until reading fails
// (the client hung up or the server closed) or the stream stops being
// Modbus (a protocol id other than 0, a length no PDU has): then there is
// no telling where the next request starts, and the connection is
// dropped, as a device does. Every other request gets an answer: its data,
// or an exception.
func (s *Server) ServeTCP(rw io.ReadWriter) error {
	h := &handler{s: s}
	var hdr [mbapLen]byte
	pdu := make([]byte, 253)
	for {
		if _, err := io.ReadFull(rw, hdr[:]); err != nil {
			return err
		}
		proto, n := binary.BigEndian.Uint16(hdr[2:]), int(binary.BigEndian.Uint16(hdr[4:]))
		if proto != 0 || n < 2 || n > 1+len(pdu) {
			return fmt.Errorf("modbus tcp: protocol id %d, length %d: not a Modbus request", proto, n)
		}
		p := pdu[:n-1]
		if _, err := io.ReadFull(rw, p); err != nil {
			return err
		}
		unit, fc := hdr[6], p[0]
		out, err := h.pdu(unit, fc, p[1:])
		if err != nil {
			out = []byte{fc | 0x80, exceptionCode(err)}
		} else {
			out = append([]byte{fc}, out...)
		}
		resp := append(hdr[:4:4], 0, 0, unit)
		binary.BigEndian.PutUint16(resp[4:], uint16(1+len(out)))
		if _, err := rw.Write(append(resp, out...)); err != nil {
			return err
		}
	}
}
