package mqtt

import (
	"context"
	"crypto/tls"
	"net"
	"net/url"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// openConn replaces paho's dialer for tcp and TLS servers so that the
// socket can be tuned (see quickAckConn); the TLS handshake, with its
// pin check, runs here under the connect timeout. Every incoming message
// is bounded to maxPayload bytes (see limitConn).
func openConn(timeout time.Duration, maxPayload int) paho.OpenConnectionFunc {
	return func(u *url.URL, opts paho.ClientOptions) (net.Conn, error) {
		d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
		c, err := d.Dial("tcp", u.Host)
		if err != nil {
			return nil, err
		}
		c = withQuickAck(c)
		if !tlsSchemes[u.Scheme] {
			return withLimit(c, maxPayload), nil
		}
		cfg := opts.TLSConfig
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Hostname()}
		}
		tc := tls.Client(c, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		return withLimit(tc, maxPayload), nil
	}
}
