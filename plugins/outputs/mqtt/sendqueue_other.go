//go:build !linux

package mqtt

import "net"

// sendQueue is unknown here: a write counts as moving only when it
// accepted bytes.
func sendQueue(*net.TCPConn) func() int { return func() int { return -1 } }
