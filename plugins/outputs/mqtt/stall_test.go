package mqtt

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/internal/testproxy"
)

// slowSink is a TCP connection to a reader behind a 200 KB/s link, with a
// send buffer of a few hundred KB: once it is full, Linux wakes a blocked
// writer only after a third of it has drained, about half a second here,
// although bytes leave all the time.
func slowSink(t *testing.T) *net.TCPConn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	px := testproxy.Start(t, ln.Addr().String(), 200<<10)
	c, err := net.Dial("tcp", px.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	tc := c.(*net.TCPConn)
	if err := tc.SetWriteBuffer(160 << 10); err != nil {
		t.Fatal(err)
	}
	return tc
}

func TestSlowWriteThatMovesIsNotCutShort(t *testing.T) {
	const stall = 300 * time.Millisecond
	payload := make([]byte, 800<<10)

	// What paho's write timeout does: one deadline for the whole write.
	plain := slowSink(t)
	_ = plain.SetWriteDeadline(time.Now().Add(stall))
	if _, err := plain.Write(payload); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a fixed deadline of %v over a slow link: %v, want the deadline to cut the write short (the test's link is not slow enough)", stall, err)
	}

	tc := slowSink(t)
	c := withStallTimeout(tc, tc, stall)
	start := time.Now()
	if n, err := c.Write(payload); err != nil || n != len(payload) {
		t.Fatalf("stall timeout %v: wrote %d of %d in %v: %v", stall, n, len(payload), time.Since(start), err)
	}
}

func TestStalledWriteFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	held := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept() // and never read
		if err == nil {
			held <- c
		}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	defer func() {
		select {
		case c := <-held:
			c.Close()
		default:
		}
	}()
	tc := raw.(*net.TCPConn)
	c := withStallTimeout(tc, tc, 200*time.Millisecond)
	done := make(chan error, 1)
	go func() {
		_, err := c.Write(make([]byte, 256<<20))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write to a peer that never reads: %v, want a deadline error", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a write to a peer that never reads did not fail")
	}
}
