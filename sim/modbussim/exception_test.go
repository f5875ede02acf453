package modbussim

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// The frames in these tests are written out by hand from the Modbus
// Application Protocol (V1.1b3, section 7: exception responses) and the
// Messaging Implementation Guide (MBAP header), not built with the code
// under test.

func dialRaw(t *testing.T, url string) net.Conn {
	t.Helper()
	_, hostport, _ := strings.Cut(url, "://")
	c, err := net.DialTimeout("tcp", hostport, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// exchange sends req and reads exactly len(want) bytes, failing with what
// came instead (a closed connection shows as EOF).
func exchange(t *testing.T, c net.Conn, req, want []byte) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(req); err != nil {
		t.Fatalf("send % x: %v", req, err)
	}
	got := make([]byte, len(want))
	n, err := io.ReadFull(c, got)
	if err != nil {
		t.Fatalf("request % x: want % x, got % x then %v", req, want, got[:n], err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("request % x: want % x, got % x", req, want, got)
	}
}

// mbap frames a PDU for Modbus TCP: transaction id, protocol 0, length,
// unit id.
func mbap(tid uint16, unit byte, pdu ...byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, tid)
	b = append(b, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(1+len(pdu)))
	b = append(b, unit)
	return append(b, pdu...)
}

// rtuFrame appends the CRC, computed bit by bit from the standard's
// description (polynomial 0xA001, initial 0xFFFF, low byte first).
func rtuFrame(adu ...byte) []byte {
	crc := uint16(0xFFFF)
	for _, c := range adu {
		crc ^= uint16(c)
		for i := 0; i < 8; i++ {
			lsb := crc & 1
			crc >>= 1
			if lsb == 1 {
				crc ^= 0xA001
			}
		}
	}
	return append(adu, byte(crc), byte(crc>>8))
}

func TestRTUFrameHelper(t *testing.T) {
	// The read of 10 holding registers at 0 from unit 1, as every Modbus
	// RTU example prints it.
	if got := fmt.Sprintf("% x", rtuFrame(1, 3, 0, 0, 0, 10)); got != "01 03 00 00 00 0a c5 cd" {
		t.Fatalf("rtuFrame: %s", got)
	}
}

// TestTCPIllegalQuantityAnswersException03: a read or write of a quantity
// the protocol does not allow is answered with exception 03 (illegal data
// value), and the connection stays open for the next request.
func TestTCPIllegalQuantityAnswersException03(t *testing.T) {
	s := startTest(t, "tcp://127.0.0.1:0")
	c := dialRaw(t, s.Addr())
	cases := []struct {
		name string
		pdu  []byte
		fc   byte
	}{
		{"read 126 holding", []byte{0x03, 0, 0, 0, 126}, 0x03},
		{"read 0 input", []byte{0x04, 0, 0, 0, 0}, 0x04},
		{"read 2001 coils", []byte{0x01, 0, 0, 0x07, 0xD1}, 0x01},
		{"read 0 discrete", []byte{0x02, 0, 0, 0, 0}, 0x02},
		{"write 0 registers", []byte{0x10, 0, 0, 0, 0, 0}, 0x10},
		{"write 0x7B1 coils", append([]byte{0x0F, 0, 0, 0x07, 0xB1, 0xF7}, make([]byte, 0xF7)...), 0x0F},
		{"write coil 0x1234", []byte{0x05, 0, 1, 0x12, 0x34}, 0x05},
	}
	for i, tc := range cases {
		exchange(t, c, mbap(uint16(0x100+i), 1, tc.pdu...), mbap(uint16(0x100+i), 1, tc.fc|0x80, 0x03))
	}
	// Still open: a valid read is answered.
	exchange(t, c, mbap(7, 1, 0x03, 0, 2, 0, 2), mbap(7, 1, 0x03, 4, 0x12, 0x34, 0xAB, 0xCD))
	// An unsupported function code: exception 01, still open.
	exchange(t, c, mbap(8, 1, 0x2B, 0x0E, 1, 0), mbap(8, 1, 0xAB, 0x01))
	exchange(t, c, mbap(9, 1, 0x03, 0, 2, 0, 1), mbap(9, 1, 0x03, 2, 0x12, 0x34))
	// Unknown and offline units answer the gateway exceptions.
	exchange(t, c, mbap(10, 9, 0x03, 0, 0, 0, 1), mbap(10, 9, 0x83, 0x0A))
	s.SetOffline(2, true)
	exchange(t, c, mbap(11, 2, 0x04, 0, 10, 0, 1), mbap(11, 2, 0x84, 0x0B))
}

// TestRTUUnsupportedFunctionAnswersException01: over RTU (here RTU over
// TCP, served by the same framing as a serial port or a pseudo-terminal)
// a well-formed request with a function code the simulator does not
// implement is answered with exception 01 (illegal function), whatever its
// length, and the next request is still understood.
func TestRTUUnsupportedFunctionAnswersException01(t *testing.T) {
	s := startTest(t, "rtuovertcp://127.0.0.1:0")
	c := dialRaw(t, s.Addr())
	unsupported := [][]byte{
		{1, 0x07},                                  // read exception status: no data
		{1, 0x11},                                  // report server id
		{1, 0x08, 0, 0, 0xA5, 0x37},                // diagnostics, return query data
		{1, 0x16, 0, 4, 0xFF, 0x00, 0x00, 0x12},    // mask write register
		{1, 0x2B, 0x0E, 0x01, 0x00},                // read device identification
		{1, 0x17, 0, 0, 0, 1, 0, 5, 0, 1, 2, 0, 9}, // read/write multiple registers
	}
	for _, adu := range unsupported {
		exchange(t, c, rtuFrame(adu...), rtuFrame(1, adu[1]|0x80, 0x01))
		exchange(t, c, rtuFrame(1, 0x03, 0, 2, 0, 1), rtuFrame(1, 0x03, 2, 0x12, 0x34))
	}
	// An illegal quantity is exception 03 over RTU too.
	exchange(t, c, rtuFrame(1, 0x03, 0, 0, 0, 126), rtuFrame(1, 0x83, 0x03))
	// Another unit's request, supported or not, is not answered: the next
	// answer is for the next request addressed to us.
	if _, err := c.Write(append(rtuFrame(5, 0x07), rtuFrame(5, 0x03, 0, 0, 0, 1)...)); err != nil {
		t.Fatal(err)
	}
	exchange(t, c, rtuFrame(1, 0x03, 0, 3, 0, 1), rtuFrame(1, 0x03, 2, 0xAB, 0xCD))
}
