//go:build !linux

package sockio

import "net"

func wrap(sc socket, _ Options) net.Conn { return sc }
