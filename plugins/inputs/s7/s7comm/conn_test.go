package s7comm_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/plugins/inputs/s7/internal/snap7test"
	"github.com/edgepipe/edgepipe/plugins/inputs/s7/s7comm"
)

func dial(t *testing.T, addr string, pdu int) *s7comm.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := s7comm.Dial(ctx, addr, s7comm.Options{Rack: 0, Slot: 1, PDUSize: pdu, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestSnap7ReadWrite talks to the snap7 server: PDU negotiation, a
// multi-item read across areas (odd sizes, so fill bytes are exercised), a
// bit write, a multi-item write read back on the server side, and the
// server's refusal of an address beyond a DB.
func TestSnap7ReadWrite(t *testing.T) {
	s := snap7test.Start(t)
	s.Set("DB", 1, 0, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9})
	s.Set("M", 0, 10, []byte{0xAA, 0xBB, 0xCC})
	s.Set("I", 0, 0, []byte{0x81})
	s.Set("Q", 0, 5, []byte{0x7E})
	c := dial(t, s.Addr(), 960)
	if p := c.PDUSize(); p < 240 || p > 960 {
		t.Fatalf("negotiated PDU %d", p)
	}
	ctx := context.Background()
	items := []s7comm.Item{
		{Area: s7comm.AreaDB, DB: 1, Start: 1, Size: 3},
		{Area: s7comm.AreaM, Start: 10, Size: 3},
		{Area: s7comm.AreaI, Start: 0, Bit: 7, IsBit: true},
		{Area: s7comm.AreaQ, Start: 5, Size: 1},
		{Area: s7comm.AreaDB, DB: 1, Start: 2000, Size: 2}, // beyond the 1024-byte DB
		{Area: s7comm.AreaDB, DB: 9, Start: 0, Size: 2},    // no such DB
	}
	res, err := c.Read(ctx, items)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]byte{{2, 3, 4}, {0xAA, 0xBB, 0xCC}, {1}, {0x7E}}
	for i, w := range want {
		if res[i].Err != nil || !bytes.Equal(res[i].Data, w) {
			t.Errorf("item %d (%s): % x %v, want % x", i, items[i], res[i].Data, res[i].Err, w)
		}
	}
	for _, i := range []int{4, 5} {
		var ie *s7comm.ItemError
		if !errors.As(res[i].Err, &ie) {
			t.Errorf("item %d (%s): %v, want the PLC's refusal", i, items[i], res[i].Err)
		}
	}

	werrs, err := c.Write(ctx, []s7comm.Item{
		{Area: s7comm.AreaDB, DB: 1, Start: 100, Size: 3},
		{Area: s7comm.AreaM, Start: 20, Bit: 3, IsBit: true},
		{Area: s7comm.AreaM, Start: 21, Size: 2},
	}, [][]byte{{0xDE, 0xAD, 0x01}, {1}, {0x12, 0x34}})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range werrs {
		if e != nil {
			t.Errorf("write item %d: %v", i, e)
		}
	}
	if got := s.Get("DB", 1, 100, 3); !bytes.Equal(got, []byte{0xDE, 0xAD, 0x01}) {
		t.Errorf("DB1 after write: % x", got)
	}
	if got := s.Get("M", 0, 20, 3); !bytes.Equal(got, []byte{0x08, 0x12, 0x34}) {
		t.Errorf("M after write: % x", got)
	}
}

// TestReadTooLargeForPDU: the client refuses, before sending, a request
// whose answer would not fit the negotiated PDU.
func TestReadTooLargeForPDU(t *testing.T) {
	s := snap7test.Start(t)
	c := dial(t, s.Addr(), 240)
	if c.PDUSize() != 240 {
		t.Fatalf("asked for 240, got %d", c.PDUSize())
	}
	_, err := c.Read(context.Background(), []s7comm.Item{{Area: s7comm.AreaDB, DB: 1, Start: 0, Size: 240}})
	if err == nil {
		t.Fatal("a read larger than the PDU was sent")
	}
	res, err := c.Read(context.Background(), []s7comm.Item{{Area: s7comm.AreaDB, DB: 1, Start: 0, Size: 240 - 18}})
	if err != nil || res[0].Err != nil || len(res[0].Data) != 222 {
		t.Fatalf("the largest read that fits: %v %v", err, res)
	}
}
