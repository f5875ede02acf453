// Package sockio reads and writes a socket with raw system calls, for the
// gateway's hot paths: Modbus requests, MQTT publishes and their
// acknowledgements (TCP), and the plugin transport (Unix sockets, or TCP).
//
// Why: Go's net package enters every socket read and write through the
// runtime's syscall entry, and when all of the process's Ps are idle that
// entry wakes the sysmon thread from its deep sleep; sysmon then polls
// every 20 us until the Ps are idle again and takes the P away from a
// system call that outlasts one of its ticks, handing it to another thread.
// A gateway polling a device is idle between every request and its answer,
// so each round trip cost several thread wake-ups, which on a small VM
// cost more CPU than the request itself (measured with the modbus-mqtt
// benchmark; see README "Performance"). A read or write on a non-blocking
// socket never blocks (it copies what the kernel has, or says EAGAIN), so
// it can be made the way the runtime's own network poller makes its
// calls: with RawSyscall, which the scheduler does not see. Waiting for
// the socket and deadlines stay the net package's (syscall.RawConn).
package sockio

import (
	"errors"
	"net"
	"os"
	"syscall"
)

// Options tune a wrapped connection.
type Options struct {
	// QuickAck re-arms TCP_QUICKACK after every read system call that
	// returned data: the peer's next small packet is acknowledged at once
	// instead of after Linux's delayed-ACK timer (up to 40 ms), which a
	// peer with Nagle's algorithm on waits for before sending more. TCP
	// only; ignored for other sockets.
	QuickAck bool
}

// socket is what Wrap can wrap: a net.Conn on a file descriptor
// (*net.TCPConn, *net.UnixConn).
type socket interface {
	net.Conn
	SyscallConn() (syscall.RawConn, error)
}

// Wrap returns c doing its reads and writes with raw system calls when it
// is a socket (*net.TCPConn, *net.UnixConn) on a platform that supports
// that, else c itself (a TLS connection, a net.Pipe).
func Wrap(c net.Conn, opts Options) net.Conn {
	s, ok := c.(socket)
	if !ok {
		return c
	}
	if _, tcp := c.(*net.TCPConn); !tcp {
		opts.QuickAck = false
	}
	return wrap(s, opts)
}

// rename gives an error of syscall.RawConn the operation the caller asked
// for ("read", not "raw-read"), so that messages read as before.
func rename(err error, op string) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op != op {
		e := *oe
		e.Op = op
		return &e
	}
	return err
}

// opError is the net package's error for a failed system call.
func opError(c net.Conn, op string, err error) error {
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError(op, err)}
}
