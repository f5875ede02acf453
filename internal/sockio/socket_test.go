package sockio

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// socketPair is a connected pair of sockets of network (unix, tcp), the
// client end wrapped.
func socketPair(t *testing.T, network string) (wrapped, plain net.Conn) {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "s")
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			t.Error(err)
		}
		acc <- c
	}()
	c, err := net.Dial(network, l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-acc
	w := Wrap(c, Options{QuickAck: true})
	if runtime.GOOS == "linux" {
		if _, ok := w.(*conn); !ok {
			t.Fatalf("a %s socket was not wrapped", network)
		}
	}
	t.Cleanup(func() { w.Close(); s.Close() })
	return w, s
}

// Bytes cross both ways intact, also many megabytes at once (the socket
// buffer fills: partial writes and waits in the poller), and EOF and
// deadlines keep their meaning.
func TestWrappedSocketCarriesEverything(t *testing.T) {
	for _, network := range []string{"unix", "tcp"} {
		t.Run(network, func(t *testing.T) {
			w, p := socketPair(t, network)
			big := make([]byte, 8<<20)
			r := rand.New(rand.NewPCG(1, 2))
			for i := range big {
				big[i] = byte(r.Uint32())
			}
			for _, tc := range []struct {
				name     string
				src, dst net.Conn
			}{{"wrapped writes", w, p}, {"wrapped reads", p, w}} {
				errc := make(chan error, 1)
				go func() {
					n, err := tc.src.Write(big)
					if err == nil && n != len(big) {
						err = io.ErrShortWrite
					}
					errc <- err
				}()
				got := make([]byte, len(big))
				if _, err := io.ReadFull(tc.dst, got); err != nil {
					t.Fatalf("%s: read: %v", tc.name, err)
				}
				if err := <-errc; err != nil {
					t.Fatalf("%s: write: %v", tc.name, err)
				}
				if !bytes.Equal(got, big) {
					t.Fatalf("%s: bytes changed on the way", tc.name)
				}
			}
			if n, err := w.Write(nil); n != 0 || err != nil {
				t.Fatalf("empty write: %d, %v", n, err)
			}
			if n, err := w.Read(nil); n != 0 || err != nil {
				t.Fatalf("empty read: %d, %v", n, err)
			}
			// A deadline still ends a read that waits.
			if err := w.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("read past the deadline: %v", err)
			}
			if err := w.SetReadDeadline(time.Time{}); err != nil {
				t.Fatal(err)
			}
			// The peer closing is EOF.
			p.Close()
			if _, err := w.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("read after the peer closed: %v, want EOF", err)
			}
			// Writing to a closed peer fails rather than hanging.
			var err error
			for range 100 {
				if _, err = w.Write(make([]byte, 1<<16)); err != nil {
					break
				}
			}
			if err == nil {
				t.Fatal("writes to a closed peer kept succeeding")
			}
			// Our own close ends a read that waits.
			w2, _ := socketPair(t, network)
			done := make(chan error, 1)
			go func() { _, err := w2.Read(make([]byte, 1)); done <- err }()
			w2.Close()
			select {
			case err := <-done:
				if !errors.Is(err, net.ErrClosed) {
					t.Fatalf("read after close: %v, want net.ErrClosed", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("close did not end the read")
			}
		})
	}
}
