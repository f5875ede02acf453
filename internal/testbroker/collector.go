// Package testbroker starts real MQTT brokers for tests: mochi-mqtt in the
// test's own process, and Eclipse Mosquitto as a child process whenever its
// binary is installed. Both listen on a free loopback port that survives
// Stop/Restart, so a client under test can be shown to reconnect to the
// same address. TLS material comes from a CA generated in Go (certs.go).
package testbroker

import (
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Received is one message seen by a Collector.
type Received struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
}

// Collector records messages in arrival order; tests wait on it with a
// deadline instead of sleeping.
type Collector struct {
	mu     sync.Mutex
	msgs   []Received
	notify chan struct{}
}

func newCollector() *Collector { return &Collector{notify: make(chan struct{}, 1)} }

func (c *Collector) add(r Received) {
	c.mu.Lock()
	c.msgs = append(c.msgs, r)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// Messages returns a copy of everything received so far.
func (c *Collector) Messages() []Received {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Received(nil), c.msgs...)
}

// Len is the number of messages received so far.
func (c *Collector) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

// Wait polls cond on the messages received so far until it holds or
// timeout passes; it fails the test on timeout, naming what.
func (c *Collector) Wait(t testing.TB, timeout time.Duration, what string, cond func([]Received) bool) []Received {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		msgs := c.Messages()
		if cond(msgs) {
			return msgs
		}
		select {
		case <-c.notify:
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("testbroker: timed out after %v waiting for %s (%d messages received)", timeout, what, len(msgs))
			return nil
		}
	}
}

// WaitCount waits until at least n messages arrived.
func (c *Collector) WaitCount(t testing.TB, n int, timeout time.Duration) []Received {
	t.Helper()
	return c.Wait(t, timeout, strconv.Itoa(n)+" messages", func(m []Received) bool { return len(m) >= n })
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testbroker: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// PublishOnce connects an ordinary client to url, publishes one message at
// QoS 1 and disconnects: the server side of a command, in tests.
func PublishOnce(t testing.TB, url string, opts ClientOptions, topic string, payload []byte, retain bool) {
	t.Helper()
	if err := publishOnce(url, opts, topic, payload, retain); err != nil {
		t.Fatalf("testbroker: publish %s: %v", topic, err)
	}
}
