package mqtt

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/fbox"
)

// Config is the [[outputs.mqtt]] table (SPEC section 3). buffer,
// buffer_limit and enabled are validated here so that a plugin running on
// its own rejects nonsense too, but the core acts on them: it owns the
// queue in front of every output and pauses the output worker.
type Config struct {
	Servers              []string     `toml:"servers"`
	ClientID             string       `toml:"client_id"`
	Username             string       `toml:"username"`
	Password             string       `toml:"password"`
	Keepalive            sdk.Duration `toml:"keepalive"`
	PingTimeout          sdk.Duration `toml:"ping_timeout"`
	ConnectTimeout       sdk.Duration `toml:"connect_timeout"`
	MaxReconnectInterval sdk.Duration `toml:"max_reconnect_interval"`
	QoS                  *int         `toml:"qos"`
	StatusTopic          string       `toml:"status_topic"`
	TLSCA                string       `toml:"tls_ca"`
	TLSCert              string       `toml:"tls_cert"`
	TLSKey               string       `toml:"tls_key"`
	TLSPinSHA256         []string     `toml:"tls_pin_sha256"`
	InsecureSkipVerify   bool         `toml:"insecure_skip_verify"`
	Buffer               string       `toml:"buffer"`
	BufferLimit          sdk.Size     `toml:"buffer_limit"`
	Enabled              *bool        `toml:"enabled"`
	// Alias and Isolated belong to the core; accepted so a table handed
	// over whole still decodes.
	Alias    string `toml:"alias"`
	Isolated bool   `toml:"isolated"`
}

// Defaults for keys left out.
const (
	DefaultKeepalive            = 60 * time.Second
	DefaultPingTimeout          = 10 * time.Second
	DefaultConnectTimeout       = 10 * time.Second
	DefaultMaxReconnectInterval = 30 * time.Second
	// firstBackoff is the wait after the first failed round over the
	// servers; it doubles up to max_reconnect_interval.
	firstBackoff = time.Second
)

// settings is the validated configuration the connection loop uses.
type settings struct {
	servers        []*url.URL
	clientID       string
	username       string
	password       string
	keepalive      time.Duration
	pingTimeout    time.Duration
	connectTimeout time.Duration
	maxBackoff     time.Duration
	qos            byte // the highest QoS published; a message asking for more gets this
	statusTopic    string
	// coreStatus is where the core addresses the retained status it
	// publishes (fbox's default, P ID/status); such a message goes to
	// statusTopic, so that a custom status_topic carries the core's
	// status (config hash, uptime, plugins) and not the online/offline
	// alone.
	coreStatus string
	tls        *tls.Config // base for ssl:// servers; ServerName is set per server
	pins       [][]byte
}

// tlsSchemes are the URL schemes of MQTT over TLS.
var tlsSchemes = map[string]bool{"ssl": true, "tls": true, "mqtts": true, "mqtt+ssl": true, "tcps": true}

// wsSchemes are MQTT over WebSocket (ws) and over WebSocket in TLS (wss),
// for servers reached through HTTP(S) ports and proxies.
var wsSchemes = map[string]bool{"ws": true, "wss": true}

// secure tells whether a server URL's scheme uses TLS.
func secure(scheme string) bool { return tlsSchemes[scheme] || scheme == "wss" }

var defaultPorts = map[string]string{"tcp": "1883", "mqtt": "1883", "ws": "80", "wss": "443"}

func parseSettings(src *sdk.ConfigSource, c *Config, agent sdk.AgentInfo) (*settings, error) {
	var errs sdk.ConfigErrors
	bad := func(path, format string, args ...any) { errs = append(errs, src.Errorf(path, format, args...)) }
	s := &settings{
		username: c.Username, password: c.Password,
		keepalive: orDefault(c.Keepalive, DefaultKeepalive), pingTimeout: orDefault(c.PingTimeout, DefaultPingTimeout),
		connectTimeout: orDefault(c.ConnectTimeout, DefaultConnectTimeout), maxBackoff: orDefault(c.MaxReconnectInterval, DefaultMaxReconnectInterval),
	}
	if len(c.Servers) == 0 {
		bad("servers", "at least one server is required, e.g. [\"tcp://127.0.0.1:1883\"]")
	}
	anyTLS := false
	for i, raw := range c.Servers {
		u, err := parseServer(raw)
		if err != nil {
			bad(fmt.Sprintf("servers[%d]", i), "%v", err)
			continue
		}
		anyTLS = anyTLS || secure(u.Scheme)
		s.servers = append(s.servers, u)
	}
	s.clientID = c.ClientID
	idKey := "client_id"
	if s.clientID == "" {
		s.clientID, idKey = agent.DeviceID, "agent.device_id"
	}
	if err := checkClientID(s.clientID); err != nil {
		bad("client_id", "%s %v", idKey, err)
	}
	if c.Password != "" && c.Username == "" {
		// MQTT 3.1.1 forbids a password without a user name (3.1.2-22).
		bad("password", "a password needs a username")
	}
	if s.keepalive > 0 && s.keepalive < time.Second {
		bad("keepalive", "must be at least 1s (MQTT counts it in seconds), got %v", s.keepalive)
	}
	if s.keepalive > 65535*time.Second {
		bad("keepalive", "must be at most 18h12m15s, got %v", s.keepalive)
	}
	if s.maxBackoff < 10*time.Millisecond {
		bad("max_reconnect_interval", "must be at least 10ms, got %v", s.maxBackoff)
	}
	// qos is a ceiling, not the level of every message: each message
	// carries its own (the template's qos). Unset, nothing is lowered.
	qos := 2
	if c.QoS != nil {
		qos = *c.QoS
	}
	if qos < 0 || qos > 2 {
		bad("qos", "want 0, 1 or 2, got %d", qos)
	}
	s.qos = byte(qos)
	s.coreStatus = fbox.NewTopics(agent.TopicPrefix, topicID(agent, s.clientID)).Status()
	s.statusTopic = c.StatusTopic
	if s.statusTopic == "" {
		s.statusTopic = s.coreStatus
	}
	if err := checkTopic(s.statusTopic); err != nil {
		bad("status_topic", "%v", err)
	}
	switch strings.ToLower(c.Buffer) {
	case "", "disk", "memory", "none":
	default:
		bad("buffer", "want disk, memory or none, got %q", c.Buffer)
	}
	if c.BufferLimit < 0 {
		bad("buffer_limit", "must not be negative")
	}

	// TLS: only built when some server uses it, but every key is checked.
	base := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLSCA != "" {
		pem, err := readPEM(c.TLSCA)
		if err != nil {
			bad("tls_ca", "%v", err)
		} else {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				bad("tls_ca", "no PEM certificate found")
			}
			base.RootCAs = pool
		}
	}
	switch {
	case c.TLSCert != "" && c.TLSKey != "":
		certPEM, err1 := readPEM(c.TLSCert)
		keyPEM, err2 := readPEM(c.TLSKey)
		if err1 != nil {
			bad("tls_cert", "%v", err1)
		}
		if err2 != nil {
			bad("tls_key", "%v", err2)
		}
		if err1 == nil && err2 == nil {
			pair, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				// The tls package's messages name the problem, never the
				// key material.
				bad("tls_key", "client certificate and key do not load: %v", err)
			} else {
				base.Certificates = []tls.Certificate{pair}
			}
		}
	case c.TLSCert != "":
		bad("tls_key", "tls_cert needs tls_key")
	case c.TLSKey != "":
		bad("tls_cert", "tls_key needs tls_cert")
	}
	for i, p := range c.TLSPinSHA256 {
		pin, err := parsePin(p)
		if err != nil {
			bad(fmt.Sprintf("tls_pin_sha256[%d]", i), "%v", err)
			continue
		}
		s.pins = append(s.pins, pin)
	}
	if !anyTLS && len(s.servers) > 0 && (c.TLSCA != "" || c.TLSCert != "" || len(c.TLSPinSHA256) > 0 || c.InsecureSkipVerify) {
		bad("servers", "TLS settings are given but no server uses ssl://, tls:// or wss://")
	}
	// With pins and no CA the pin is the trust anchor: a self-signed
	// server certificate, as an FBox server often has, is accepted when its
	// key matches. insecure_skip_verify drops chain and name checks but
	// never the pins.
	base.InsecureSkipVerify = c.InsecureSkipVerify || (len(s.pins) > 0 && c.TLSCA == "")
	if len(s.pins) > 0 {
		pins := s.pins
		base.VerifyConnection = func(cs tls.ConnectionState) error { return checkPins(cs, pins) }
	}
	s.tls = base
	return s, errs.Err()
}

// topicID is the ID in "P ID/..." topics: the device ID, or the client ID
// when the plugin runs without an agent table.
func topicID(agent sdk.AgentInfo, clientID string) string {
	if agent.DeviceID != "" {
		return agent.DeviceID
	}
	return clientID
}

func orDefault(d sdk.Duration, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d.D()
}

func parseServer(raw string) (*url.URL, error) {
	if !strings.Contains(raw, "://") {
		return nil, fmt.Errorf("%q: want scheme://host:port, e.g. tcp://127.0.0.1:1883 or ssl://mqtt.example.com:8883", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL", raw)
	}
	if u.User != nil {
		// Credentials in a URL would end up in logs; they belong in
		// username/password.
		return nil, errors.New("put credentials in username/password, not in the server URL")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	port, ok := defaultPorts[u.Scheme]
	if tlsSchemes[u.Scheme] {
		port, ok = "8883", true
	}
	if !ok {
		return nil, fmt.Errorf("%q: unknown scheme %q, want tcp, mqtt, ssl, tls, mqtts, ws or wss", raw, u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("%q: no host", raw)
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	return u, nil
}

// checkClientID applies the FBox rule: 1-64 characters of valid UTF-8.
func checkClientID(id string) error {
	if !utf8.ValidString(id) {
		return errors.New("is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(id); n < 1 || n > 64 {
		return fmt.Errorf("must be 1-64 characters, got %d", n)
	}
	return nil
}

// checkTopic rejects what a broker would answer by closing the connection:
// an empty topic, wildcards, NUL, invalid UTF-8 or more than 65535 bytes.
func checkTopic(t string) error {
	switch {
	case t == "":
		return errors.New("topic is empty")
	case len(t) > 65535:
		return errors.New("topic is longer than 65535 bytes")
	case !utf8.ValidString(t):
		return errors.New("topic is not valid UTF-8")
	case strings.ContainsAny(t, "+#\x00"):
		return fmt.Errorf("topic %q contains a wildcard or NUL", t)
	}
	return nil
}

// readPEM takes either PEM text (so a key can come from ${ENV}) or a file
// path. Errors never quote the value: it may be a private key.
func readPEM(v string) ([]byte, error) {
	if strings.Contains(v, "-----BEGIN") {
		return []byte(v), nil
	}
	b, err := os.ReadFile(v)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("cannot read %s: %v", v, pe.Err)
		}
		return nil, fmt.Errorf("cannot read %s", v)
	}
	return b, nil
}

// parsePin accepts a SHA-256 digest as hex (colons allowed, any case) or
// base64 (standard or URL alphabet, curl's "sha256//" prefix allowed).
func parsePin(p string) ([]byte, error) {
	s := strings.TrimSpace(p)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "sha256//"), "sha256/")
	if h := strings.ReplaceAll(s, ":", ""); len(h) == 64 {
		if b, err := hex.DecodeString(h); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == sha256.Size {
			return b, nil
		}
	}
	return nil, fmt.Errorf("%q is not a SHA-256 digest in hex (64 digits) or base64 (44 characters)", p)
}

// PinError is the refusal of a server whose public key matches no pin.
type PinError struct{ Got string }

func (e *PinError) Error() string {
	return "server public key matches no tls_pin_sha256 (server's is sha256 " + e.Got + ")"
}

func checkPins(cs tls.ConnectionState, pins [][]byte) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("server sent no certificate")
	}
	sum := sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
	for _, p := range pins {
		if string(p) == string(sum[:]) {
			return nil
		}
	}
	return &PinError{Got: hex.EncodeToString(sum[:])}
}
