package sockio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// pair returns a wrapped client connection and the server's end.
func pair(t *testing.T, opts Options) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	w := Wrap(c, opts)
	t.Cleanup(func() { w.Close(); s.Close() })
	return w, s
}

func TestRoundTrip(t *testing.T) {
	for _, opts := range []Options{{}, {QuickAck: true}} {
		c, s := pair(t, opts)
		// Larger than any socket buffer: the write must wait for the
		// reader (EAGAIN) and go on where it stopped.
		want := bytes.Repeat([]byte("0123456789abcdef"), 1<<18)
		errc := make(chan error, 1)
		go func() {
			n, err := c.Write(want)
			if err == nil && n != len(want) {
				err = io.ErrShortWrite
			}
			errc <- err
		}()
		got := make([]byte, len(want))
		if _, err := io.ReadFull(s, got); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatal("the bytes written are not the bytes read")
		}
		if _, err := s.Write([]byte("answer")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 16)
		n, err := io.ReadAtLeast(c, buf, 6)
		if err != nil || string(buf[:n]) != "answer" {
			t.Fatalf("read %q, %v", buf[:n], err)
		}
		s.Close()
		if n, err := c.Read(buf); n != 0 || err != io.EOF {
			t.Fatalf("after the peer closed: %d, %v; want 0, EOF", n, err)
		}
	}
}

func TestDeadlineAndClose(t *testing.T) {
	c, _ := pair(t, Options{})
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, err := c.Read(make([]byte, 8))
	if !errors.Is(err, os.ErrDeadlineExceeded) || !os.IsTimeout(err) {
		t.Fatalf("read past its deadline: %v, want a timeout", err)
	}
	if !strings.HasPrefix(err.Error(), "read ") {
		t.Errorf("error %q does not name the read", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 8))
		done <- err
	}()
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read of a closed connection: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("closing did not end the read")
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write to a closed connection: %v, want net.ErrClosed", err)
	}
}

func TestNotTCP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if Wrap(a, Options{}) != a {
		t.Fatal("a connection that is not TCP must be returned as it is")
	}
}
