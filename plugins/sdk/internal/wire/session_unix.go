//go:build unix

package wire

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"

	"github.com/edgepipe/edgepipe/internal/sockio"
)

// InheritedSession is the plugin's end of the session socket when the host
// passed one (SessionFDEnv), greeted; nil when none was passed or it is
// not a socket. The variable is cleared: a process the plugin starts does
// not inherit the descriptor's meaning.
func InheritedSession() net.Conn {
	v := os.Getenv(SessionFDEnv)
	if v == "" {
		return nil
	}
	_ = os.Unsetenv(SessionFDEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil
	}
	f := os.NewFile(uintptr(fd), "edgepipe-session")
	c, err := net.FileConn(f) // a duplicate of the descriptor
	_ = f.Close()
	if err != nil {
		return nil
	}
	if err := Greet(c); err != nil {
		_ = c.Close()
		return nil
	}
	return sockio.Wrap(c, sockio.Options{})
}

// SessionPair makes the socket pair of a plugin's session (see package
// sdk's rawsession.go): the host's end, and the child's end to pass to the
// plugin process as an inherited file (exec.Cmd.ExtraFiles) named in
// SessionFDEnv. The host closes child once the process has started.
func SessionPair() (host net.Conn, child *os.File, err error) {
	// Close-on-exec on both, set under ForkLock as the os package does:
	// no other child started meanwhile inherits them (exec.Cmd duplicates
	// an ExtraFiles entry into the plugin without the flag).
	syscall.ForkLock.RLock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, fmt.Errorf("session socket pair: %w", err)
	}
	hf := os.NewFile(uintptr(fds[0]), "edgepipe-session-host")
	host, err = net.FileConn(hf)
	_ = hf.Close()
	if err != nil {
		_ = syscall.Close(fds[1])
		return nil, nil, fmt.Errorf("session socket pair: %w", err)
	}
	return host, os.NewFile(uintptr(fds[1]), "edgepipe-session"), nil
}

// Greeted reports whether the plugin at the other end of host has written
// SessionHello, looking without waiting (package sdk's rawsession.go says
// why that is enough), and consumes it.
func Greeted(host net.Conn) bool {
	sc, ok := host.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	buf := make([]byte, len(SessionHello))
	var n int
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), buf)
		return true // one look, never a wait
	}); err != nil || rerr != nil {
		return false
	}
	return n == len(SessionHello) && string(buf) == SessionHello
}
