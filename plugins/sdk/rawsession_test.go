package sdk

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/edgepipe/edgepipe/plugins/sdk/internal/wire"
)

// rawPair is a session socket pair as a host and a plugin hold it.
func rawPair(t *testing.T) (host, plugin *rawStream) {
	t.Helper()
	h, child, err := wire.SessionPair()
	if err != nil {
		t.Skip("no session socket pair here:", err)
	}
	p, err := net.FileConn(child)
	child.Close()
	if err != nil {
		t.Fatal(err)
	}
	host, plugin = newRawStream(h), newRawStream(p)
	t.Cleanup(func() { host.close(); plugin.close() })
	return host, plugin
}

func bigFrame(points int) *Frame {
	b := Batch{Device: "plc1", TS: 1732600000000, Points: make([]Point, points)}
	for i := range b.Points {
		b.Points[i] = Point{Name: "p" + string(rune('a'+i%26)) + strings.Repeat("x", i%7), Value: Float(float64(i) * 1.5), TS: b.TS}
	}
	return &Frame{Batches: []Batch{b}}
}

// Calls and replies cross the socket intact both ways, small and large
// (a message larger than the read buffer, several in a row without a read
// in between), and the buffers of a large one are not kept.
func TestRawStreamCarriesCallsAndReplies(t *testing.T) {
	host, plugin := rawPair(t)
	for _, n := range []int{0, 1, 1000, 100000, 3} {
		f := bigFrame(n)
		errc := make(chan error, 1)
		go func() { errc <- host.SendMsg(&wireCall{ID: uint64(n + 1), Process: newWireFrame(f)}) }()
		var c wireCall
		if err := plugin.RecvMsg(&c); err != nil {
			t.Fatalf("%d points: %v", n, err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if c.ID != uint64(n+1) || c.Process == nil || c.Process.F.NumPoints() != n {
			t.Fatalf("%d points: got call %d with %v", n, c.ID, c.Process)
		}
		resp, err := newWireFrameResponse(c.Process.F, nil)
		if err != nil {
			t.Fatal(err)
		}
		go func() { errc <- plugin.SendMsg(&wireReply{ID: c.ID, Frame: resp}) }()
		var r wireReply
		if err := host.RecvMsg(&r); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if r.ID != c.ID || r.Frame == nil || r.Frame.F.NumPoints() != n {
			t.Fatalf("%d points: reply %d with %v", n, r.ID, r.Frame)
		}
		if n > 0 && r.Frame.F.Batches[0].Points[n-1] != f.Batches[0].Points[n-1] {
			t.Fatalf("last point %+v, sent %+v", r.Frame.F.Batches[0].Points[n-1], f.Batches[0].Points[n-1])
		}
	}
	if cap(host.rbuf) > rawKeepBytes || cap(plugin.wbuf) > rawKeepBytes {
		t.Fatalf("buffers kept after a large message: read %d, write %d", cap(host.rbuf), cap(plugin.wbuf))
	}
	// Three in a row, read after they were all written.
	for id := uint64(1); id <= 3; id++ {
		if err := plugin.SendMsg(&wireReply{ID: id, Code: codes.NotFound, Message: "no"}); err != nil {
			t.Fatal(err)
		}
	}
	for id := uint64(1); id <= 3; id++ {
		var r wireReply
		if err := host.RecvMsg(&r); err != nil || r.ID != id || r.Code != codes.NotFound {
			t.Fatalf("reply %d: %+v %v", id, r, err)
		}
	}
}

// The end of the socket, a length beyond the limit and a message that
// does not parse end the stream with the statuses gRPC gives them.
func TestRawStreamErrorsHaveGRPCsCodes(t *testing.T) {
	host, plugin := rawPair(t)
	plugin.close()
	var r wireReply
	if err := host.RecvMsg(&r); status.Code(err) != codes.Unavailable {
		t.Fatalf("read after the peer closed: %v, want Unavailable", err)
	}
	if err := host.SendMsg(&wireCall{ID: 1, Gather: nil}); status.Code(err) != codes.Unavailable {
		t.Fatalf("write after the peer closed: %v, want Unavailable", err)
	}

	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"length over the limit", binary.BigEndian.AppendUint32(nil, wire.MaxMessageBytes+1)},
		{"unparsable message", append(binary.BigEndian.AppendUint32(nil, 2), 0xff, 0xff)},
	} {
		s := newRawStream(&readConn{r: bytes.NewReader(tc.in)})
		if err := s.RecvMsg(&r); status.Code(err) != codes.Internal {
			t.Fatalf("%s: %v, want Internal", tc.name, err)
		}
		if !s.conn.(*readConn).closed {
			t.Fatalf("%s: the stream was not closed", tc.name)
		}
	}
	// A message cut short is the socket's end.
	s := newRawStream(&readConn{r: bytes.NewReader(append(binary.BigEndian.AppendUint32(nil, 10), 1, 2))})
	if err := s.RecvMsg(&r); status.Code(err) != codes.Unavailable {
		t.Fatalf("cut short: %v, want Unavailable", err)
	}
}

// A plugin greets on its socket before the host looks; a socket nobody
// greeted on is not taken, without waiting.
func TestGreetingIsSeenWithoutWaiting(t *testing.T) {
	h, child, err := wire.SessionPair()
	if err != nil {
		t.Skip(err)
	}
	defer child.Close()
	if wire.Greeted(h) {
		t.Fatal("greeted on a silent socket")
	}
	p, err := net.FileConn(child)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := wire.Greet(p); err != nil {
		t.Fatal(err)
	}
	if !wire.Greeted(h) {
		t.Fatal("the greeting was not seen")
	}
	h.Close()
}

// readConn is a net.Conn that reads r and records Close.
type readConn struct {
	net.Conn
	r      io.Reader
	closed bool
}

func (c *readConn) Read(p []byte) (int, error) {
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.r.Read(p)
}
func (c *readConn) Close() error { c.closed = true; return nil }

// FuzzRawStream: whatever arrives on a session socket, the reader returns
// messages or an error, never panics, and stops at the first error.
func FuzzRawStream(f *testing.F) {
	frame, _ := newWireFrameResponse(bigFrame(3), nil)
	var b []byte
	for _, m := range []wire.Marshaler{&wireReply{ID: 1, Frame: frame}, &wireCall{ID: 2, Process: newWireFrame(bigFrame(2))}} {
		n, _ := m.SizeWire()
		b = binary.BigEndian.AppendUint32(b, uint32(n))
		b = m.AppendWire(b)
	}
	f.Add(b)
	f.Add(b[:len(b)-3])
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1, 8})
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, newMsg := range []func() any{func() any { return &wireReply{} }, func() any { return &wireCall{} }} {
			s := newRawStream(&readConn{r: bytes.NewReader(in)})
			for i := 0; ; i++ {
				err := s.RecvMsg(newMsg())
				if err != nil {
					if _, ok := status.FromError(err); !ok {
						t.Fatalf("error without a status: %v", err)
					}
					break
				}
				if i > len(in)/4 {
					t.Fatal("more messages than the input holds")
				}
			}
		}
	})
}
