package sdk

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/edgepipe/edgepipe/internal/sockio"
	"github.com/edgepipe/edgepipe/plugins/sdk/internal/wire"
)

// The Session's own socket. The messages of every poll (Call and Reply of
// edgepipe.proto, the same bytes) can travel on a Unix socket of their own
// beside the gRPC connection instead of as the Session stream's HTTP/2
// frames: each message is its protobuf encoding after its length (4 bytes,
// big-endian), written with one system call and read with one. gRPC's
// transport spends more on a 1000-point message than the encoding does:
// the caller hands it to a writer goroutine that copies it into 16 KB DATA
// frames and a write buffer, and a reader goroutine parses the frames,
// copies them out and hands them to the caller; on a small gateway the
// goroutine switches and copies of the three hops of a poll cost more CPU
// than the points (BenchmarkProcessOverSocket, README "## Performance").
//
// The host makes the socket pair before it starts the plugin process and
// hands one end over as an inherited file descriptor named by
// wire.SessionFDEnv; the socket is private to the two processes (no path, no
// port), opened once for the life of the process. A plugin built with this
// SDK writes wire.SessionHello on it before go-plugin prints its handshake
// line, so when the host has read that line the greeting is already in
// the socket: the host looks without waiting, and a plugin that did not
// greet (an older SDK, a plugin in another language) keeps the Session on
// gRPC. Everything else (Init, Write, streams, health) stays on gRPC.

// rawStream carries a Session's messages on a socket; it is the
// sessionStream of both ends. SendMsg takes a wire.Marshaler, RecvMsg a
// wire.Unmarshaler (the session's messages are both). As sessionStream
// says, one goroutine sends at a time and one receives.
type rawStream struct {
	conn net.Conn
	wbuf []byte
	rbuf []byte // rbuf[r:w]: read from the socket, not yet taken
	r, w int
}

// rawKeepBytes bounds the buffers a stream keeps between messages: a
// camera picture of several MB is read once, not held.
const rawKeepBytes = 1 << 20

// rawMinRead is the read buffer's least size: a poll's message of a few
// hundred points arrives in one read system call.
const rawMinRead = 16 << 10

func newRawStream(c net.Conn) *rawStream { return &rawStream{conn: c} }

// errRawClosed is why a stream's calls fail after close.
var errRawClosed = errors.New("plugin session closed")

// close closes the socket; closing it again is harmless.
func (s *rawStream) close() { _ = s.conn.Close() }

// SendMsg writes m's length and encoding in one write. An error of the
// socket is codes.Unavailable, as gRPC reports a connection that broke.
func (s *rawStream) SendMsg(m any) error {
	w, ok := m.(wire.Marshaler)
	if !ok {
		return status.Errorf(codes.Internal, "session: cannot send %T", m)
	}
	n, err := w.SizeWire()
	if err != nil {
		return status.Errorf(codes.Internal, "grpc: error while marshaling: %v", err)
	}
	if n > wire.MaxMessageBytes {
		return status.Errorf(codes.ResourceExhausted, "session: message of %d bytes exceeds the limit of %d", n, wire.MaxMessageBytes)
	}
	if cap(s.wbuf) < 4+n {
		s.wbuf = make([]byte, 0, 4+n)
	}
	b := binary.BigEndian.AppendUint32(s.wbuf[:0], uint32(n))
	b = w.AppendWire(b)
	if len(b) != 4+n {
		return status.Errorf(codes.Internal, "session: %T wrote %d bytes, announced %d", m, len(b)-4, n)
	}
	_, err = s.conn.Write(b)
	if cap(s.wbuf) > rawKeepBytes {
		s.wbuf = nil
	}
	if err != nil {
		return status.Errorf(codes.Unavailable, "plugin session: %v", err)
	}
	return nil
}

// RecvMsg reads the next message into m. A malformed length ends the
// stream (the next message's start is lost): codes.Internal, as gRPC
// reports a message it cannot parse; the socket's end or error is
// codes.Unavailable.
func (s *rawStream) RecvMsg(m any) error {
	u, ok := m.(wire.Unmarshaler)
	if !ok {
		return status.Errorf(codes.Internal, "session: cannot receive into %T", m)
	}
	if err := s.fill(4); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(s.rbuf[s.r:])
	if n > wire.MaxMessageBytes {
		s.close()
		return status.Errorf(codes.Internal, "session: message of %d bytes exceeds the limit of %d", n, wire.MaxMessageBytes)
	}
	if err := s.fill(4 + int(n)); err != nil {
		return err
	}
	body := s.rbuf[s.r+4 : s.r+4+int(n)]
	s.r += 4 + int(n)
	err := u.UnmarshalWire(body)
	if s.r == s.w {
		s.r, s.w = 0, 0
		if cap(s.rbuf) > rawKeepBytes {
			s.rbuf = nil
		}
	}
	if err != nil {
		s.close()
		return status.Errorf(codes.Internal, "grpc: failed to unmarshal the received message: %v", err)
	}
	return nil
}

// fill reads until rbuf[r:w] holds at least n bytes, each read taking as
// much as the buffer has room for.
func (s *rawStream) fill(n int) error {
	if s.w-s.r >= n {
		return nil
	}
	if len(s.rbuf)-s.r < n {
		size := max(rawMinRead, len(s.rbuf))
		for size < n {
			size *= 2
		}
		if size != len(s.rbuf) {
			b := make([]byte, size)
			copy(b, s.rbuf[s.r:s.w])
			s.rbuf = b
		} else {
			copy(s.rbuf, s.rbuf[s.r:s.w])
		}
		s.w -= s.r
		s.r = 0
	}
	for s.w-s.r < n {
		k, err := s.conn.Read(s.rbuf[s.w:])
		s.w += k
		if err != nil && s.w-s.r < n {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				err = errRawClosed
			}
			return status.Errorf(codes.Unavailable, "plugin session: %v", err)
		}
	}
	return nil
}

// serveRawSession serves the session on the host's socket until the host
// closes it or the process ends.
func (s *grpcServer) serveRawSession(c net.Conn) {
	st := newRawStream(c)
	defer st.close()
	_ = s.serveSession(context.Background(), st)
}

// UseSessionSocket takes the host's end of the plugin's session socket
// when the plugin greeted on it, and the Session runs on it from the next
// call; it reports whether it took it (an ungreeted socket stays the
// caller's, grpcplugin.SessionSocket). Call it before the first call.
func (c *grpcClient) UseSessionSocket(host net.Conn) bool {
	if !wire.Greeted(host) {
		return false
	}
	c.smu.Lock()
	c.raw = sockio.Wrap(host, sockio.Options{})
	c.smu.Unlock()
	return true
}
