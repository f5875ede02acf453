package broker

import (
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// connectPacket is an MQTT 3.1.1 CONNECT with client id "c", clean session.
var connectPacket = []byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 1, 'c'}

// stopWhileConnecting starts a mochi server on l, has clients connect
// over and over, and closes the server meanwhile; it returns how many
// connections the clients made.
func stopWhileConnecting(t *testing.T, l listeners.Listener) int64 {
	t.Helper()
	srv := mqtt.New(&mqtt.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := srv.AddHook(new(allowAll), nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddListener(l); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	addr := l.Address()
	var made atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.Dial("tcp", addr)
				if err != nil {
					continue
				}
				made.Add(1)
				_, _ = c.Write(connectPacket)
				c.Close()
			}
		}()
	}
	for made.Load() < 20 { // until clients are connecting
		runtime.Gosched()
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	return made.Load()
}

// A server stopped while clients connect closes cleanly: under -race,
// mochi's own TCP listener let a connection attach (its WaitGroup's Add)
// while the server's Close waited on that WaitGroup. After Close nothing
// listens any more.
func TestStopWhileClientsConnect(t *testing.T) {
	for range 30 {
		l := NewListener("t", "127.0.0.1:0", nil)
		stopWhileConnecting(t, l)
		if c, err := net.Dial("tcp", l.Address()); err == nil {
			c.Close()
			t.Fatal("the listener still accepts after the server closed")
		}
	}
}
