//go:build !unix

package wire

import (
	"errors"
	"net"
	"os"
)

// Without Unix socket pairs the Session stays on gRPC.

func InheritedSession() net.Conn { return nil }

// SessionPair is not supported here: the Session stays on gRPC.
func SessionPair() (host net.Conn, child *os.File, err error) {
	return nil, nil, errors.New("session socket pair: not supported on this platform")
}

func Greeted(net.Conn) bool { return false }
