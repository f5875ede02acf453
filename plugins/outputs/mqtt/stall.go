package mqtt

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// stallConn gives up a write only when the link has stopped moving for
// stall, never because the write is merely slow.
//
// paho's own write timeout (SetWriteTimeout) is a deadline for writing one
// whole MQTT packet. On a slow link that cuts short writes that make
// progress: a 57 KB picture over 60 KB/s takes a second by itself, and
// behind a full send buffer the kernel wakes a blocked writer only once a
// third of the buffer has drained (megabytes on Linux, so tens of seconds
// at modem speed), although bytes leave the whole time. A packet cut in
// the middle also breaks the stream for good, so paho drops the
// connection and every message in flight is sent again.
//
// stallConn instead sets a short deadline for each attempt and, when it
// passes, looks whether anything moved meanwhile: bytes accepted by the
// write, or (Linux) the socket's send queue shrinking. Only a link that
// moved nothing at all for about stall fails the write. A deadline set by
// the caller (the TLS handshake's) is honoured as given.
type stallConn struct {
	net.Conn
	stall time.Duration
	queue func() int // bytes still in the kernel's send queue; -1 unknown

	mu       sync.Mutex
	deadline time.Time // the caller's write deadline, zero for none
}

func withStallTimeout(c net.Conn, tc *net.TCPConn, stall time.Duration) net.Conn {
	if stall <= 0 {
		return c
	}
	return &stallConn{Conn: c, stall: stall, queue: sendQueue(tc)}
}

func (s *stallConn) Write(b []byte) (int, error) {
	done := 0
	// The send queue is only looked at once a deadline passed, never on
	// the fast path: one ioctl per packet would cost a tenth of the CPU
	// of a QoS 1 replay. Deadlines come every stall/2, and the write fails
	// once a whole stall went by without anything seen moving.
	lastQ := -1
	moved := time.Now()
	for {
		s.mu.Lock()
		user := s.deadline
		s.mu.Unlock()
		d := time.Now().Add(s.stall / 2)
		if !user.IsZero() && user.Before(d) {
			d = user
		}
		_ = s.Conn.SetWriteDeadline(d)
		n, err := s.Conn.Write(b[done:])
		done += n
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return done, err
		}
		if !user.IsZero() && !time.Now().Before(user) {
			return done, err
		}
		q := s.queue()
		switch {
		case n > 0 || q >= 0 && lastQ >= 0 && q < lastQ:
			moved = time.Now() // the link moved: keep writing
		case time.Since(moved) >= s.stall && (q < 0 || lastQ >= 0):
			return done, err
		}
		lastQ = q
	}
}

func (s *stallConn) SetDeadline(t time.Time) error {
	s.mu.Lock()
	s.deadline = t
	s.mu.Unlock()
	return s.Conn.SetDeadline(t)
}

func (s *stallConn) SetWriteDeadline(t time.Time) error {
	s.mu.Lock()
	s.deadline = t
	s.mu.Unlock()
	return s.Conn.SetWriteDeadline(t)
}
