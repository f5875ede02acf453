package mqtt

import (
	"context"
	"crypto/tls"
	"net"
	"net/url"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// openConn replaces paho's dialer so that the socket can be tuned (see
// quickAckConn and stallConn), so that every incoming message is bounded to
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
func openConn(timeout time.Duration, maxPayload int, onOpen func(net.Conn)) paho.OpenConnectionFunc {
	return func(u *url.URL, opts paho.ClientOptions) (net.Conn, error) {
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
			return withLimit(c, maxPayload), nil
		}
		d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
		raw, err := d.Dial("tcp", u.Host)
		if err != nil {
			return nil, err
		}
		tc, _ := raw.(*net.TCPConn)
		c := withStallTimeout(withQuickAck(raw), tc, timeout)
		if !tlsSchemes[u.Scheme] {
			onOpen(raw)
			return withLimit(c, maxPayload), nil
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
		return withLimit(tlsc, maxPayload), nil
	}
}
