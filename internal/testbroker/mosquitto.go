package testbroker

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// MosquittoOptions configures a mosquitto child process.
type MosquittoOptions struct {
	// Username and Password, when Username is set, are the only
	// credentials accepted (a password file made with mosquitto_passwd).
	Username, Password string
	// Server, when set, makes the listener speak TLS with this certificate.
	Server *KeyPair
	// ClientCA, with Server, requires clients to present a certificate
	// signed by this CA (mutual TLS).
	ClientCA *CA
	// TCPNoDelay turns Nagle's algorithm off for the broker's sockets
	// (mosquitto's set_tcp_nodelay, off by default): it holds back small
	// PUBACKs and so caps QoS 1 throughput of a client that waits for them.
	TCPNoDelay bool
	// WebSockets adds a second listener speaking MQTT over WebSocket
	// (protocol websockets; Debian's mosquitto is built with
	// libwebsockets), with the same TLS settings: see WebSocketURL.
	WebSockets bool
}

// Mosquitto is an Eclipse Mosquitto broker run by the test, with
// persistence on so that sessions survive Stop/Restart like on a real
// server.
type Mosquitto struct {
	t    testing.TB
	opts MosquittoOptions
	dir  string
	port int
	ws   int // the websockets listener's port, 0 for none
	conf string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// MosquittoPath is the broker binary, or "" when it is not installed.
func MosquittoPath() string {
	for _, p := range []string{"mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	return ""
}

// StartMosquitto starts mosquitto on a free loopback port, or skips the
// test when the binary is absent. It is killed at test end.
func StartMosquitto(t testing.TB, opts MosquittoOptions) *Mosquitto {
	t.Helper()
	bin := MosquittoPath()
	if bin == "" {
		t.Skip("mosquitto is not installed")
	}
	m := &Mosquitto{t: t, opts: opts, dir: t.TempDir(), port: FreePort(t)}
	var conf strings.Builder
	// TLS settings belong to the listener line before them.
	listener := func(port int, protocol string) {
		fmt.Fprintf(&conf, "listener %d 127.0.0.1\nprotocol %s\n", port, protocol)
		if opts.Server != nil {
			conf.WriteString("certfile " + opts.Server.CertFile + "\nkeyfile " + opts.Server.KeyFile + "\ntls_version tlsv1.2\n")
			if opts.ClientCA != nil {
				conf.WriteString("cafile " + opts.ClientCA.CertFile + "\nrequire_certificate true\n")
			}
		}
	}
	listener(m.port, "mqtt")
	if opts.WebSockets {
		m.ws = FreePort(t)
		listener(m.ws, "websockets")
	}
	if os.Geteuid() == 0 {
		// mosquitto drops root for user "mosquitto", who cannot read the
		// test's private temporary directory.
		conf.WriteString("user root\n")
	}
	conf.WriteString("persistence true\npersistence_location " + m.dir + "/\n")
	conf.WriteString("max_queued_messages 0\nmax_inflight_messages 0\n")
	if opts.TCPNoDelay {
		conf.WriteString("set_tcp_nodelay true\n")
	}
	conf.WriteString("log_dest file " + filepath.Join(m.dir, "mosquitto.log") + "\nlog_type all\n")
	if opts.Username != "" {
		pw := filepath.Join(m.dir, "passwd")
		out, err := exec.Command(passwdTool(bin), "-b", "-c", pw, opts.Username, opts.Password).CombinedOutput()
		if err != nil {
			t.Fatalf("testbroker: mosquitto_passwd: %v: %s", err, out)
		}
		conf.WriteString("allow_anonymous false\npassword_file " + pw + "\n")
	} else {
		conf.WriteString("allow_anonymous true\n")
	}
	m.conf = filepath.Join(m.dir, "mosquitto.conf")
	if err := os.WriteFile(m.conf, []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	m.Restart()
	t.Cleanup(func() { m.signal(syscall.SIGKILL) })
	return m
}

func passwdTool(bin string) string {
	if p, err := exec.LookPath("mosquitto_passwd"); err == nil {
		return p
	}
	return filepath.Join(filepath.Dir(bin), "..", "bin", "mosquitto_passwd")
}

// Addr is host:port.
func (m *Mosquitto) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(m.port)) }

// URL is the server URL for a client: tcp:// or ssl://.
func (m *Mosquitto) URL() string {
	if m.opts.Server != nil {
		return "ssl://" + m.Addr()
	}
	return "tcp://" + m.Addr()
}

// WebSocketURL is the websockets listener's URL, ws:// or wss://; the
// broker must have been started with WebSockets.
func (m *Mosquitto) WebSocketURL() string {
	if m.ws == 0 {
		m.t.Fatal("testbroker: mosquitto was started without WebSockets")
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(m.ws))
	if m.opts.Server != nil {
		return "wss://" + addr
	}
	return "ws://" + addr
}

// Log returns the broker's log so far, for failure messages.
func (m *Mosquitto) Log() string {
	b, _ := os.ReadFile(filepath.Join(m.dir, "mosquitto.log"))
	return string(b)
}

// Restart starts the broker (again) on the same port and waits until it
// accepts connections.
func (m *Mosquitto) Restart() {
	m.t.Helper()
	m.mu.Lock()
	if m.cmd != nil {
		m.mu.Unlock()
		return
	}
	var stderr bytes.Buffer
	cmd := exec.Command(MosquittoPath(), "-c", m.conf)
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		m.mu.Unlock()
		m.t.Fatalf("testbroker: start mosquitto: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	m.cmd, m.done = cmd, done
	m.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			m.mu.Lock()
			m.cmd = nil
			m.mu.Unlock()
			m.t.Fatalf("testbroker: mosquitto exited: %s\n%s", stderr.String(), m.Log())
		default:
		}
		if m.listening(m.port) && (m.ws == 0 || m.listening(m.ws)) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	m.t.Fatalf("testbroker: mosquitto did not listen on %s\n%s", m.Addr(), m.Log())
}

func (m *Mosquitto) listening(port int) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 200*time.Millisecond)
	if err == nil {
		c.Close()
	}
	return err == nil
}

// Stop terminates the broker gracefully (it saves its persistent
// sessions) and waits for it to exit.
func (m *Mosquitto) Stop() { m.signal(syscall.SIGTERM) }

// Kill ends the broker with SIGKILL.
func (m *Mosquitto) Kill() { m.signal(syscall.SIGKILL) }

func (m *Mosquitto) signal(sig syscall.Signal) {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// ClientOptions configures Subscribe's client.
type ClientOptions struct {
	ClientID           string // default: a unique one
	Username, Password string
	TLS                *tls.Config
	// Persistent keeps the session (clean session off) so that a broker
	// with persistence queues messages for it while it is away.
	Persistent bool
}

var subSeq struct {
	sync.Mutex
	n int
}

// Subscribe connects an ordinary MQTT client to url and records what
// arrives on filter at QoS 1. It reconnects on its own and is
// disconnected at test end.
func Subscribe(t testing.TB, url, filter string, opts ClientOptions) *Collector {
	t.Helper()
	if opts.ClientID == "" {
		subSeq.Lock()
		subSeq.n++
		opts.ClientID = fmt.Sprintf("testsub-%d-%d", os.Getpid(), subSeq.n)
		subSeq.Unlock()
	}
	c := newCollector()
	subscribed := make(chan error, 1)
	o := paho.NewClientOptions().AddBroker(url).SetClientID(opts.ClientID).
		SetUsername(opts.Username).SetPassword(opts.Password).SetTLSConfig(opts.TLS).
		SetCleanSession(!opts.Persistent).SetAutoReconnect(true).SetMaxReconnectInterval(200 * time.Millisecond).
		SetConnectRetry(true).SetConnectRetryInterval(100 * time.Millisecond).SetProtocolVersion(4).
		SetKeepAlive(5 * time.Second).SetOrderMatters(true)
	handler := func(_ paho.Client, msg paho.Message) {
		c.add(Received{Topic: msg.Topic(), Payload: append([]byte(nil), msg.Payload()...), QoS: msg.Qos(), Retain: msg.Retained()})
	}
	o.SetDefaultPublishHandler(handler)
	o.SetOnConnectHandler(func(cl paho.Client) {
		tok := cl.Subscribe(filter, 1, handler)
		tok.Wait()
		select {
		case subscribed <- tok.Error():
		default:
		}
	})
	cl := paho.NewClient(o)
	cl.Connect()
	select {
	case err := <-subscribed:
		if err != nil {
			t.Fatalf("testbroker: subscribe %s on %s: %v", filter, url, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("testbroker: subscriber could not connect to %s", url)
	}
	t.Cleanup(func() { cl.Disconnect(100) })
	return c
}

// Publisher is an ordinary MQTT client that publishes at QoS 1: the
// server side of commands in tests. Messages from one Publisher reach a
// subscriber in the order published (MQTT 4.6); from several, not.
type Publisher struct{ cl paho.Client }

// NewPublisher connects to url; it disconnects at test end.
func NewPublisher(t testing.TB, url string, opts ClientOptions) *Publisher {
	t.Helper()
	p, err := newPublisher(url, opts)
	if err != nil {
		t.Fatalf("testbroker: publisher: %v", err)
	}
	t.Cleanup(func() { p.cl.Disconnect(100) })
	return p
}

// Publish sends one message and waits for its PUBACK.
func (p *Publisher) Publish(t testing.TB, topic string, payload []byte, retain bool) {
	t.Helper()
	tok := p.cl.Publish(topic, 1, retain, payload)
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatalf("testbroker: publish %s: no PUBACK", topic)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("testbroker: publish %s: %v", topic, err)
	}
}

func newPublisher(url string, opts ClientOptions) (*Publisher, error) {
	if opts.ClientID == "" {
		subSeq.Lock()
		subSeq.n++
		opts.ClientID = fmt.Sprintf("testpub-%d-%d", os.Getpid(), subSeq.n)
		subSeq.Unlock()
	}
	o := paho.NewClientOptions().AddBroker(url).SetClientID(opts.ClientID).
		SetUsername(opts.Username).SetPassword(opts.Password).SetTLSConfig(opts.TLS).
		SetProtocolVersion(4).SetConnectTimeout(5 * time.Second)
	cl := paho.NewClient(o)
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("connect: %v", tok.Error())
	}
	return &Publisher{cl: cl}, nil
}

func publishOnce(url string, opts ClientOptions, topic string, payload []byte, retain bool) error {
	p, err := newPublisher(url, opts)
	if err != nil {
		return err
	}
	defer p.cl.Disconnect(100)
	tok := p.cl.Publish(topic, 1, retain, payload)
	if !tok.WaitTimeout(10 * time.Second) {
		return errors.New("no PUBACK")
	}
	return tok.Error()
}
