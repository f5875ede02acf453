// Package broker runs an embedded MQTT broker (mochi-mqtt) for `edgepipe
// demo`: a real broker in the gateway's own process, so the demo needs
// nothing installed.
package broker

import (
	"fmt"
	"io"
	"log/slog"
	"net"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Broker is a running embedded broker.
type Broker struct {
	srv  *mqtt.Server
	addr string
}

// Start serves MQTT on addr ("127.0.0.1:0" picks a free port), allowing
// every client.
func Start(addr string) (*Broker, error) {
	// mochi listens itself and does not report the port it got, so a free
	// port is found first.
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	addr = l.Addr().String()
	l.Close()
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := srv.AddHook(new(allowAll), nil); err != nil {
		return nil, err
	}
	if err := srv.AddListener(NewListener("demo", addr, nil)); err != nil {
		return nil, fmt.Errorf("embedded broker on %s: %w", addr, err)
	}
	if err := srv.Serve(); err != nil {
		return nil, err
	}
	return &Broker{srv: srv, addr: addr}, nil
}

// URL is the broker's address as an MQTT server URL.
func (b *Broker) URL() string { return "tcp://" + b.addr }

// Subscribe calls fn for every message published on filter.
func (b *Broker) Subscribe(filter string, fn func(topic string, payload []byte, retained bool)) error {
	return b.srv.Subscribe(filter, 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		fn(pk.TopicName, pk.Payload, pk.FixedHeader.Retain)
	})
}

// Publish sends a message from inside the broker, as a server application
// would (the demo uses it to show a write).
func (b *Broker) Publish(topic string, payload []byte) error {
	return b.srv.Publish(topic, payload, false, 1)
}

// Close stops the broker.
func (b *Broker) Close() error { return b.srv.Close() }

// allowAll lets every client connect and use every topic: the demo broker
// listens on loopback only.
type allowAll struct{ mqtt.HookBase }

func (*allowAll) ID() string { return "allow-all" }
func (*allowAll) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}
func (*allowAll) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }
func (*allowAll) OnACLCheck(*mqtt.Client, string, bool) bool              { return true }
