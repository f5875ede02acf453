package mqtt

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"net/url"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgepipe/edgepipe/internal/sockio"
)

// openConn replaces paho's dialer so that the socket can be tuned (see
// socket and stallConn), so that every incoming message is bounded to
// maxPayload bytes (see limitConn), and so that the output holds the
// connection it can cut (onOpen) when it gives up on a batch. The TLS
// handshake, with its pin check, runs here under the connect timeout.
//
// WebSocket servers (ws://, wss://) are dialled by paho's own websocket
// code (gorilla/websocket), which takes no dialer: there a stalled link is
// noticed by the keepalive and by the batch's time budget instead of by
// stallConn. Incoming messages are bounded all the same: paho's websocket
// connection reads the MQTT stream from the frames as they arrive (it does
// not hold a whole message), so limitConn cuts a huge PUBLISH there too.
//
// Outermost, refConn puts back the payloads Publish handed paho by
// reference (see payloadRefs).
func openConn(timeout time.Duration, maxPayload int, onOpen func(net.Conn), refs *payloadRefs) paho.OpenConnectionFunc {
	return func(u *url.URL, opts paho.ClientOptions) (net.Conn, error) {
		c, err := dialServer(u, opts, timeout, onOpen)
		if err != nil {
			return nil, err
		}
		return withRefs(withLimit(c, maxPayload), refs), nil
	}
}

// dialServer opens the stream to u that paho's packets travel on, under
// openConn's layers: the WebSocket connection, or the tuned socket read
// through a buffer, in TLS for a secure scheme.
func dialServer(u *url.URL, opts paho.ClientOptions, timeout time.Duration, onOpen func(net.Conn)) (net.Conn, error) {
	if wsSchemes[u.Scheme] {
		var cfg *tls.Config
		if u.Scheme == "wss" {
			cfg = opts.TLSConfig
		}
		c, err := paho.NewWebsocket(u.String(), cfg, timeout, nil, nil)
		if err != nil {
			return nil, err
		}
		onOpen(c)
		return c, nil
	}
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	raw, err := d.Dial("tcp", u.Host)
	if err != nil {
		return nil, err
	}
	tc, _ := raw.(*net.TCPConn)
	c := withStallTimeout(socket(raw), tc, timeout)
	if !tlsSchemes[u.Scheme] {
		onOpen(raw)
		return buffered(c), nil
	}
	cfg := opts.TLSConfig
	if cfg == nil {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Hostname()}
	}
	tlsc := tls.Client(c, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := tlsc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	onOpen(raw)
	return buffered(tlsc), nil
}

// socket tunes the broker's socket. TCP_QUICKACK is re-armed after every
// read: a broker with Nagle's algorithm on (mosquitto's default) holds
// back each small PUBACK until our ACK of the previous one, and Linux's
// delayed ACK postpones that by up to 40 ms, so at QoS 1 every Publish
// batch would end with that wait (measured: 5,000 against 23,000
// messages/s). Reads and writes are raw system calls (see sockio: no
// scheduler wake-ups per publish and acknowledgement).
func socket(c net.Conn) net.Conn { return sockio.Wrap(c, sockio.Options{QuickAck: true}) }

// bufConn reads through a buffer: paho (and limitConn) read each packet's
// fixed header a byte at a time, so a PUBACK cost three system calls; now
// it costs one, and a burst of them one in all.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func buffered(c net.Conn) net.Conn { return &bufConn{Conn: c, r: bufio.NewReaderSize(c, 4<<10)} }

func (b *bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }
