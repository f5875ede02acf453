//go:build linux

package sockio

import (
	"io"
	"net"
	"sync"
	"syscall"
	"unsafe"
)

// conn is a socket whose reads and writes are raw system calls.
type conn struct {
	socket
	rc     syscall.RawConn
	rd, wr call
}

// call is the state of one direction's system call. syscall.RawConn takes
// a func(fd) bool; a closure over the caller's buffer would be allocated
// at every call, so the function is a method value bound once, and the
// buffer and results pass through here, under mu (one read and one write
// at a time, as the net package does too).
type call struct {
	mu       sync.Mutex
	buf      []byte
	n        int
	errno    syscall.Errno
	quickAck bool
	fn       func(fd uintptr) bool
}

func wrap(sc socket, opts Options) net.Conn {
	rc, err := sc.SyscallConn()
	if err != nil {
		return sc
	}
	c := &conn{socket: sc, rc: rc}
	c.rd.quickAck = opts.QuickAck
	c.rd.fn, c.wr.fn = c.rd.read, c.wr.write
	if opts.QuickAck {
		_ = rc.Control(armQuickAck)
	}
	return c
}

// armQuickAck sets TCP_QUICKACK; a failure only costs the delayed ACK.
func armQuickAck(fd uintptr) {
	one := int32(1)
	_, _, _ = syscall.RawSyscall6(syscall.SYS_SETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_QUICKACK,
		uintptr(unsafe.Pointer(&one)), unsafe.Sizeof(one), 0)
}

// read is one read into buf; false asks the poller to wait for data.
func (s *call) read(fd uintptr) bool {
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&s.buf[0])), uintptr(len(s.buf)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		s.n, s.errno = int(r), e
		if e == 0 && r > 0 && s.quickAck {
			armQuickAck(fd)
		}
		return true
	}
}

// write writes all of buf, counting in n; false asks the poller to wait
// for room in the send buffer.
func (s *call) write(fd uintptr) bool {
	for s.n < len(s.buf) {
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&s.buf[s.n])), uintptr(len(s.buf)-s.n))
		switch e {
		case 0:
			s.n += int(r)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			s.errno = e
			return true
		}
	}
	return true
}

func (c *conn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	s := &c.rd
	s.mu.Lock()
	s.buf, s.n, s.errno = b, 0, 0
	err := c.rc.Read(s.fn)
	n, errno := s.n, s.errno
	s.buf = nil
	s.mu.Unlock()
	switch {
	case err != nil:
		return 0, rename(err, "read")
	case errno != 0:
		return 0, opError(c, "read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (c *conn) Write(b []byte) (int, error) {
	s := &c.wr
	s.mu.Lock()
	s.buf, s.n, s.errno = b, 0, 0
	var err error
	if len(b) > 0 {
		err = c.rc.Write(s.fn)
	}
	n, errno := s.n, s.errno
	s.buf = nil
	s.mu.Unlock()
	switch {
	case err != nil:
		return n, rename(err, "write")
	case errno != 0:
		return n, opError(c, "write", errno)
	}
	return n, nil
}
