package modbussim

import (
	"encoding/binary"
	"errors"
	"io"

	"github.com/simonvetter/modbus"
)

// RTU slave framing is done here (the Modbus library serves TCP only):
// frames are delimited by their function code's known length rather than
// by the 3.5-character silence, which a pseudo-terminal or a TCP stream
// does not preserve. A request with a function code the simulator does not
// implement has a length only its code's definition knows; it is taken to
// end at the first point where the bytes so far carry a valid CRC (the
// chance that a longer frame's prefix does so by accident is 1 in 65536),
// and it is answered with exception 01 (illegal function), as a slave
// does. A frame with a bad CRC throws away what was buffered, as a slave
// that lost sync waits for the line to go quiet.

// crc16 is the Modbus CRC (polynomial 0xA001 reflected, initial 0xFFFF).
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

// maxRTUFrame is the longest RTU frame: address, 253-byte PDU, CRC.
const maxRTUFrame = 256

// requestLen is the full length (address to CRC) of the RTU request at the
// head of b: 0 when more bytes are needed to tell, -1 when b cannot start
// a request (no CRC checks within the longest frame).
func requestLen(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	switch b[1] {
	case 1, 2, 3, 4, 5, 6:
		return 8
	case 15, 16:
		if len(b) < 7 {
			return 0
		}
		return 9 + int(b[6])
	}
	// Another function code: the shortest prefix that ends in its CRC.
	for n := 4; n <= len(b) && n <= maxRTUFrame; n++ {
		if crc16(b[:n-2]) == binary.LittleEndian.Uint16(b[n-2:n]) {
			return n
		}
	}
	if len(b) >= maxRTUFrame {
		return -1
	}
	return 0
}

// ServeRTU answers RTU requests read from rw until reading fails (the
// stream is closed). It is how the simulator serves serial ports,
// pseudo-terminals and RTU over TCP.
func (s *Server) ServeRTU(rw io.ReadWriter) error {
	h := &handler{s: s}
	buf := make([]byte, 0, 512)
	tmp := make([]byte, 512)
	for {
		n, err := rw.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if err != nil {
			return err
		}
		for len(buf) > 0 {
			need := requestLen(buf)
			if need < 0 {
				buf = buf[:0]
				break
			}
			if need == 0 || len(buf) < need {
				break
			}
			frame := buf[:need]
			if crc16(frame[:need-2]) != binary.LittleEndian.Uint16(frame[need-2:]) {
				buf = buf[:0]
				break
			}
			if resp := h.rtu(frame[0], frame[1], frame[2:need-2]); resp != nil {
				resp = binary.LittleEndian.AppendUint16(resp, crc16(resp))
				if _, err := rw.Write(resp); err != nil {
					return err
				}
			}
			buf = append(buf[:0], buf[need:]...)
		}
	}
}

// rtu executes one request PDU and returns the response ADU without its
// CRC, or nil when the slave stays silent: another unit is addressed, the
// unit is offline, or the request was a broadcast (unit 0).
func (h *handler) rtu(id, fc uint8, p []byte) []byte {
	if id == 0 {
		// Broadcast: every unit executes writes, nobody answers.
		if fc == 5 || fc == 6 || fc == 15 || fc == 16 {
			h.s.mu.Lock()
			ids := make([]uint8, 0, len(h.s.units))
			for uid := range h.s.units {
				ids = append(ids, uid)
			}
			h.s.mu.Unlock()
			for _, uid := range ids {
				h.pdu(uid, fc, p)
			}
		}
		return nil
	}
	resp, err := h.pdu(id, fc, p)
	if errors.Is(err, modbus.ErrGWPathUnavailable) || errors.Is(err, modbus.ErrGWTargetFailedToRespond) {
		return nil // no such slave on the bus, or a dead one: silence
	}
	if err != nil {
		return []byte{id, fc | 0x80, exceptionCode(err)}
	}
	return append([]byte{id, fc}, resp...)
}

func exceptionCode(err error) byte {
	switch {
	case errors.Is(err, modbus.ErrIllegalFunction):
		return 1
	case errors.Is(err, modbus.ErrIllegalDataAddress):
		return 2
	case errors.Is(err, modbus.ErrIllegalDataValue):
		return 3
	case errors.Is(err, modbus.ErrServerDeviceBusy):
		return 6
	case errors.Is(err, modbus.ErrGWPathUnavailable):
		return 0x0A
	case errors.Is(err, modbus.ErrGWTargetFailedToRespond):
		return 0x0B
	}
	return 4
}

// supported tells the function codes the simulator implements.
func supported(fc uint8) bool {
	switch fc {
	case 1, 2, 3, 4, 5, 6, 15, 16:
		return true
	}
	return false
}

// unsupported answers a request with a function code the simulator does
// not implement: exception 01 from a unit that is there, and what an
// absent or offline unit answers otherwise (silence over RTU, a gateway
// exception over TCP).
func (h *handler) unsupported(id uint8) error {
	h.s.count(id)
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	if _, err := h.lookup(id); err != nil {
		return err
	}
	return modbus.ErrIllegalFunction
}

// pdu decodes a request payload (after the function code), runs it against
// the unit and encodes the response payload.
func (h *handler) pdu(id, fc uint8, p []byte) ([]byte, error) {
	be := binary.BigEndian
	if !supported(fc) {
		return nil, h.unsupported(id)
	}
	if len(p) < 4 {
		return nil, modbus.ErrIllegalDataValue
	}
	addr, qty := be.Uint16(p), be.Uint16(p[2:])
	span := func(max uint16) error {
		if qty == 0 || qty > max {
			return modbus.ErrIllegalDataValue
		}
		if int(addr)+int(qty) > 65536 {
			return modbus.ErrIllegalDataAddress
		}
		return nil
	}
	switch fc {
	case 1, 2:
		if err := span(2000); err != nil {
			return nil, err
		}
		area := Coil
		if fc == 2 {
			area = Discrete
		}
		bits, err := h.bits(id, area, addr, qty, false, nil)
		if err != nil {
			return nil, err
		}
		out := make([]byte, 1+(len(bits)+7)/8)
		out[0] = byte(len(out) - 1)
		for i, b := range bits {
			if b {
				out[1+i/8] |= 1 << (i % 8)
			}
		}
		return out, nil
	case 3, 4:
		if err := span(125); err != nil {
			return nil, err
		}
		area := Holding
		if fc == 4 {
			area = Input
		}
		regs, err := h.registers(id, area, addr, qty, false, nil)
		if err != nil {
			return nil, err
		}
		out := []byte{byte(2 * len(regs))}
		for _, r := range regs {
			out = be.AppendUint16(out, r)
		}
		return out, nil
	case 5:
		if qty != 0xFF00 && qty != 0 {
			return nil, modbus.ErrIllegalDataValue
		}
		if _, err := h.bits(id, Coil, addr, 1, true, []bool{qty == 0xFF00}); err != nil {
			return nil, err
		}
		return p[:4], nil
	case 6:
		if _, err := h.registers(id, Holding, addr, 1, true, []uint16{qty}); err != nil {
			return nil, err
		}
		return p[:4], nil
	case 15:
		if err := span(1968); err != nil {
			return nil, err
		}
		if len(p) < 5 || int(p[4]) != (int(qty)+7)/8 || len(p) != 5+int(p[4]) {
			return nil, modbus.ErrIllegalDataValue
		}
		args := make([]bool, qty)
		for i := range args {
			args[i] = p[5+i/8]&(1<<(i%8)) != 0
		}
		if _, err := h.bits(id, Coil, addr, qty, true, args); err != nil {
			return nil, err
		}
		return p[:4], nil
	case 16:
		if err := span(123); err != nil {
			return nil, err
		}
		if len(p) < 5 || int(p[4]) != 2*int(qty) || len(p) != 5+int(p[4]) {
			return nil, modbus.ErrIllegalDataValue
		}
		args := make([]uint16, qty)
		for i := range args {
			args[i] = be.Uint16(p[5+2*i:])
		}
		if _, err := h.registers(id, Holding, addr, qty, true, args); err != nil {
			return nil, err
		}
		return p[:4], nil
	}
	return nil, modbus.ErrIllegalFunction
}
