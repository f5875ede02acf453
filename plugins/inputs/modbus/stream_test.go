package modbus

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	mb "github.com/simonvetter/modbus"
)

func withCRC(b ...byte) []byte { return binary.LittleEndian.AppendUint16(b, crc16(b)) }

// TestReadRTUResponse pins the framing of answers to the errors the input
// acts on (exception: the slave is alive; anything else: the stream is
// closed and reopened).
func TestReadRTUResponse(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		fc   byte
		want []byte
		err  error
	}{
		{"registers", withCRC(1, 3, 4, 0x12, 0x34, 0xAB, 0xCD), 3, []byte{4, 0x12, 0x34, 0xAB, 0xCD}, nil},
		{"write echo", withCRC(1, 6, 0, 7, 0xBE, 0xEF), 6, []byte{0, 7, 0xBE, 0xEF}, nil},
		{"exception", withCRC(1, 0x83, 2), 3, nil, mb.ErrIllegalDataAddress},
		{"gateway exception", withCRC(1, 0x84, 0x0B), 4, nil, mb.ErrGWTargetFailedToRespond},
		{"bad crc", []byte{1, 3, 2, 0, 1, 0, 0}, 3, nil, mb.ErrBadCRC},
		{"other unit", withCRC(2, 3, 2, 0, 1), 3, nil, mb.ErrBadUnitId},
		{"other function", withCRC(1, 4, 2, 0, 1), 3, nil, mb.ErrProtocolError},
		{"unknown exception", withCRC(1, 0x83, 0x42), 3, nil, mb.ErrProtocolError},
	}
	for _, c := range cases {
		got, err := readRTUResponse(bytes.NewReader(c.in), make([]byte, maxFrame), 1, c.fc)
		if !errors.Is(err, c.err) || c.err == nil && !bytes.Equal(got, c.want) {
			t.Errorf("%s: % x, %v; want % x, %v", c.name, got, err, c.want, c.err)
		}
	}
}

// FuzzRTUResponse: whatever a peer answers, reading it never panics, and
// an accepted answer is a whole frame of the function asked.
func FuzzRTUResponse(f *testing.F) {
	f.Add(withCRC(1, 3, 2, 0, 1), byte(3))
	f.Add(withCRC(1, 1, 1, 0x05), byte(1))
	f.Add(withCRC(1, 0x90, 4), byte(16))
	f.Add(withCRC(1, 3, 0xFF), byte(3))
	f.Add([]byte{1, 3}, byte(3))
	f.Fuzz(func(t *testing.T, in []byte, fc byte) {
		got, err := readRTUResponse(bytes.NewReader(in), make([]byte, maxFrame), 1, fc)
		if err != nil {
			return
		}
		if fc >= 1 && fc <= 4 {
			if len(got) < 1 || len(got) != 1+int(got[0]) {
				t.Fatalf("fc %d: payload % x does not hold its byte count", fc, got)
			}
		} else if len(got) != 4 {
			t.Fatalf("fc %d: payload % x is no echo", fc, got)
		}
	})
}

// mbap frames a PDU for unit 1 as Modbus TCP transaction txn.
func mbap(txn uint16, unit byte, pdu ...byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, txn)
	b = append(b, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(1+len(pdu)))
	return append(append(b, unit), pdu...)
}

// TestReadMBAPResponse pins the Modbus TCP framing of answers to the
// errors the input acts on, as TestReadRTUResponse does for RTU, and that
// a late answer to an earlier transaction is passed over.
func TestReadMBAPResponse(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		fc   byte
		want []byte
		err  error
	}{
		{"registers", mbap(7, 1, 3, 4, 0x12, 0x34, 0xAB, 0xCD), 3, []byte{4, 0x12, 0x34, 0xAB, 0xCD}, nil},
		{"late answer first", append(mbap(6, 1, 3, 2, 9, 9), mbap(7, 1, 3, 2, 0, 1)...), 3, []byte{2, 0, 1}, nil},
		{"write echo", mbap(7, 1, 6, 0, 7, 0xBE, 0xEF), 6, []byte{0, 7, 0xBE, 0xEF}, nil},
		{"exception", mbap(7, 1, 0x83, 2), 3, nil, mb.ErrIllegalDataAddress},
		{"gateway exception from unit 255", mbap(7, 0xFF, 0x84, 0x0B), 4, nil, mb.ErrGWTargetFailedToRespond},
		{"other unit", mbap(7, 2, 3, 2, 0, 1), 3, nil, mb.ErrBadUnitId},
		{"other function", mbap(7, 1, 4, 2, 0, 1), 3, nil, mb.ErrProtocolError},
		{"short byte count", mbap(7, 1, 3, 4, 0, 1), 3, nil, mb.ErrProtocolError},
		{"short echo", mbap(7, 1, 6, 0, 7), 6, nil, mb.ErrProtocolError},
		{"zero length", []byte{0, 7, 0, 0, 0, 0, 1}, 3, nil, mb.ErrProtocolError},
		{"too long", []byte{0, 7, 0, 0, 1, 0, 1}, 3, nil, mb.ErrProtocolError},
		{"unknown exception", mbap(7, 1, 0x83, 0x42), 3, nil, mb.ErrProtocolError},
		{"cut short", mbap(7, 1, 3, 4, 0x12)[:9], 3, nil, io.ErrUnexpectedEOF},
	}
	for _, c := range cases {
		got, err := readMBAPResponse(bytes.NewReader(c.in), make([]byte, maxFrame), 7, 1, c.fc)
		if !errors.Is(err, c.err) || c.err == nil && !bytes.Equal(got, c.want) {
			t.Errorf("%s: % x, %v; want % x, %v", c.name, got, err, c.want, c.err)
		}
	}
}

// FuzzMBAPResponse: whatever a peer answers, reading it never panics, and
// an accepted answer is a whole PDU of the function asked.
func FuzzMBAPResponse(f *testing.F) {
	f.Add(mbap(1, 1, 3, 2, 0, 1), byte(3))
	f.Add(mbap(1, 1, 1, 1, 0x05), byte(1))
	f.Add(mbap(1, 1, 0x90, 4), byte(16))
	f.Add(mbap(1, 1, 3, 0xFF), byte(3))
	f.Add(append(mbap(0, 1, 3, 2, 0, 1), mbap(1, 1, 16, 0, 1, 0, 2)...), byte(16))
	f.Fuzz(func(t *testing.T, in []byte, fc byte) {
		got, err := readMBAPResponse(bytes.NewReader(in), make([]byte, maxFrame), 1, 1, fc)
		if err != nil {
			return
		}
		if fc >= 1 && fc <= 4 {
			if len(got) < 1 || len(got) != 1+int(got[0]) {
				t.Fatalf("fc %d: payload % x does not hold its byte count", fc, got)
			}
		} else if len(got) != 4 {
			t.Fatalf("fc %d: payload % x is no echo", fc, got)
		}
	})
}
