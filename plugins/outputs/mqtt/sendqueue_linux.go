package mqtt

import (
	"net"

	"golang.org/x/sys/unix"
)

// sendQueue reports how many bytes the kernel still holds for the socket
// (SIOCOUTQ: not yet sent or not yet acknowledged by the peer), or -1.
func sendQueue(tc *net.TCPConn) func() int {
	if tc == nil {
		return func() int { return -1 }
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return func() int { return -1 }
	}
	return func() int {
		q := -1
		_ = raw.Control(func(fd uintptr) {
			if v, err := unix.IoctlGetInt(int(fd), unix.SIOCOUTQ); err == nil {
				q = v
			}
		})
		return q
	}
}
