//go:build linux

package sockio

import (
	"io"
	"net"
	"syscall"
	"unsafe"
)

// conn is a TCP connection whose reads and writes are raw system calls.
type conn struct {
	*net.TCPConn
	rc       syscall.RawConn
	quickAck bool
}

func wrap(tc *net.TCPConn, opts Options) net.Conn {
	rc, err := tc.SyscallConn()
	if err != nil {
		return tc
	}
	c := &conn{TCPConn: tc, rc: rc, quickAck: opts.QuickAck}
	if c.quickAck {
		_ = rc.Control(func(fd uintptr) { armQuickAck(fd) })
	}
	return c
}

// armQuickAck sets TCP_QUICKACK; a failure only costs the delayed ACK.
func armQuickAck(fd uintptr) {
	one := int32(1)
	_, _, _ = syscall.RawSyscall6(syscall.SYS_SETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_QUICKACK,
		uintptr(unsafe.Pointer(&one)), unsafe.Sizeof(one), 0)
}

func (c *conn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
			switch e {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false // wait for the poller
			}
			n, errno = int(r), e
			if e == 0 && n > 0 && c.quickAck {
				armQuickAck(fd)
			}
			return true
		}
	})
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
	done := 0
	var errno syscall.Errno
	err := c.rc.Write(func(fd uintptr) bool {
		for done < len(b) {
			r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[done])), uintptr(len(b)-done))
			switch e {
			case 0:
				done += int(r)
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false // the send buffer is full: wait for the poller
			default:
				errno = e
				return true
			}
		}
		return true
	})
	switch {
	case err != nil:
		return done, rename(err, "write")
	case errno != 0:
		return done, opError(c, "write", errno)
	}
	return done, nil
}
