package testbroker

import (
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/edgepipe/edgepipe/internal/broker"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// MochiOptions configures an in-process broker.
type MochiOptions struct {
	// Username and Password, when Username is set, are the only
	// credentials accepted; otherwise anyone may connect.
	Username, Password string
	// TLS, when set, makes the listener speak TLS only (see ServerTLS).
	TLS *tls.Config
}

// Mochi is an in-process mochi-mqtt broker on a fixed loopback port.
type Mochi struct {
	t    testing.TB
	opts MochiOptions
	addr string

	mu   sync.Mutex
	srv  *mqtt.Server
	subs []inlineSub
}

type inlineSub struct {
	filter string
	c      *Collector
}

// StartMochi starts a broker on a free loopback port; it stops at test end.
func StartMochi(t testing.TB, opts MochiOptions) *Mochi {
	t.Helper()
	m := &Mochi{t: t, opts: opts, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))}
	m.Restart()
	t.Cleanup(m.Stop)
	return m
}

// Addr is host:port.
func (m *Mochi) Addr() string { return m.addr }

// URL is the server URL a client is configured with: tcp:// or ssl://.
func (m *Mochi) URL() string {
	if m.opts.TLS != nil {
		return "ssl://" + m.addr
	}
	return "tcp://" + m.addr
}

// Running reports whether the broker is up.
func (m *Mochi) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.srv != nil
}

// Server is the running mochi server (nil while stopped).
func (m *Mochi) Server() *mqtt.Server {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.srv
}

// Stop closes the broker and every client connection; retained messages
// and sessions are lost, as with a broker without persistence.
func (m *Mochi) Stop() {
	m.mu.Lock()
	srv := m.srv
	m.srv = nil
	m.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Restart starts the broker again on the same port, with the inline
// subscriptions made so far in place before the first client connects.
func (m *Mochi) Restart() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.srv != nil {
		return
	}
	srv := mqtt.New(&mqtt.Options{
		InlineClient: true,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err := srv.AddHook(&authHook{user: m.opts.Username, pass: m.opts.Password}, nil); err != nil {
		m.t.Fatalf("testbroker: mochi hook: %v", err)
	}
	if err := srv.AddListener(broker.NewListener("t", m.addr, m.opts.TLS)); err != nil {
		m.t.Fatalf("testbroker: mochi listen on %s: %v", m.addr, err)
	}
	for i, s := range m.subs {
		m.subscribe(srv, i, s)
	}
	if err := srv.Serve(); err != nil {
		m.t.Fatalf("testbroker: mochi serve: %v", err)
	}
	m.srv = srv
}

func (m *Mochi) subscribe(srv *mqtt.Server, i int, s inlineSub) {
	err := srv.Subscribe(s.filter, i+1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		s.c.add(Received{Topic: pk.TopicName, Payload: append([]byte(nil), pk.Payload...), QoS: pk.FixedHeader.Qos, Retain: pk.FixedHeader.Retain})
	})
	if err != nil {
		m.t.Fatalf("testbroker: mochi subscribe %s: %v", s.filter, err)
	}
}

// Subscribe records every message published on filter. The subscription
// lives inside the broker and is renewed before clients can connect after
// a Restart, so nothing published after a restart can slip past it.
// Retained messages present when subscribing are not delivered to it.
func (m *Mochi) Subscribe(filter string) *Collector {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := inlineSub{filter: filter, c: newCollector()}
	m.subs = append(m.subs, s)
	if m.srv != nil {
		m.subscribe(m.srv, len(m.subs)-1, s)
	}
	return s.c
}

// Retained returns the retained message on topic, if any.
func (m *Mochi) Retained(topic string) ([]byte, bool) {
	srv := m.Server()
	if srv == nil {
		return nil, false
	}
	for _, pk := range srv.Topics.Messages(topic) {
		if pk.TopicName == topic {
			return append([]byte(nil), pk.Payload...), true
		}
	}
	return nil, false
}

// ClientConnected reports whether a client with id is connected now.
func (m *Mochi) ClientConnected(id string) bool {
	srv := m.Server()
	if srv == nil {
		return false
	}
	cl, ok := srv.Clients.Get(id)
	return ok && !cl.Closed()
}

// authHook accepts only the configured credentials (or anyone when none
// are configured) and allows every topic.
type authHook struct {
	mqtt.HookBase
	user, pass string
}

func (h *authHook) ID() string { return "testbroker-auth" }

func (h *authHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (h *authHook) OnConnectAuthenticate(_ *mqtt.Client, pk packets.Packet) bool {
	if h.user == "" {
		return true
	}
	return string(pk.Connect.Username) == h.user && bytes.Equal(pk.Connect.Password, []byte(h.pass))
}

func (h *authHook) OnACLCheck(*mqtt.Client, string, bool) bool { return true }
