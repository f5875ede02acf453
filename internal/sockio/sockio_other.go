//go:build !linux

package sockio

import "net"

func wrap(tc *net.TCPConn, _ Options) net.Conn { return tc }
