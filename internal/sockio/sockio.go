// Package sockio reads and writes a TCP connection with raw system calls,
// for the gateway's hot paths (Modbus requests, MQTT publishes and their
// acknowledgements).
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
)

// Options tune a wrapped connection.
type Options struct {
	// QuickAck re-arms TCP_QUICKACK after every read system call that
	// returned data: the peer's next small packet is acknowledged at once
	// instead of after Linux's delayed-ACK timer (up to 40 ms), which a
	// peer with Nagle's algorithm on waits for before sending more.
	QuickAck bool
}

// Wrap returns c doing its reads and writes with raw system calls when it
// is a *net.TCPConn on a platform that supports that, else c itself.
func Wrap(c net.Conn, opts Options) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	return wrap(tc, opts)
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
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError(op, err)}
}
