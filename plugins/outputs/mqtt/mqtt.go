// Package mqtt is the outputs.mqtt plugin: it delivers rendered messages
// to an MQTT server following the FBox MQTT1.1 connection rules (SPEC
// sections 1, 3, 4 and 6) and hands the server's commands to the core.
//
// What the plugin owns and what the core owns: the plugin keeps one
// connection up (servers in order, TLS with pinning, keepalive, backoff,
// status and Last Will) and confirms each Publish batch only once the
// server has acknowledged every message. The core owns the store-and-
// forward queue in front of it (buffer, buffer_limit), pausing (enabled),
// retries, and parsing of commands.
package mqtt

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgepipe/edgepipe/internal/backoff"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

//go:embed sample.conf
var sampleConfig string

func init() {
	sdk.Register(sdk.Registration{
		Kind:         sdk.KindOutput,
		Name:         "mqtt",
		Description:  "publishes to MQTT servers with failover, TLS pinning and status/Last Will; takes writes and commands back (FBox MQTT1.1)",
		SampleConfig: sampleConfig,
		Factory:      func() sdk.Plugin { return New() },
	})
}

var (
	_ sdk.Output         = (*Output)(nil)
	_ sdk.CommandSource  = (*Output)(nil)
	_ sdk.HealthReporter = (*Output)(nil)
)

// offlinePayload is the Last Will, and what a graceful Close publishes.
var offlinePayload = []byte(`{"status":"offline"}`)

// inflightWindow bounds the QoS>0 messages one Publish keeps unacknowledged
// at once: MQTT packet identifiers are 16 bits, so a larger batch must
// wait for the oldest PUBACKs before sending more.
const inflightWindow = 8192

// Output is the MQTT output. The zero value is ready for Init.
type Output struct {
	cfg     Config
	set     *settings
	log     *slog.Logger
	version string

	writeTopic, ackTopic, systemPrefix, systemReply string

	ctx       context.Context // lives from Init to Close
	cancel    context.CancelFunc
	done      chan struct{} // closed when the connection loop has exited
	startOnce sync.Once     // the connection loop starts at first use

	mu     sync.Mutex
	conn   *conn         // the established connection, nil while down
	up     chan struct{} // closed once conn is set; replaced when it goes
	reason string        // why not connected, for Health; never a secret
	cmdsOn bool          // a Commands call is receiving

	cmds chan sdk.Command

	reconnects, published, connectFailures atomic.Uint64
	commandsReceived, commandsDropped      atomic.Uint64
	invalidDropped                         atomic.Uint64
}

// New returns an output ready for Init.
func New() *Output { return &Output{} }

// conn is one established connection to one server. A paho client is made
// per attempt and dropped with its connection, so no client is ever
// reused after a disconnect (paho warns against that) and the loop below
// alone decides when and where to reconnect.
type conn struct {
	cl       paho.Client
	server   string
	lost     chan struct{}
	lostOnce sync.Once
	lostErr  error
	at       time.Time
}

func (c *conn) markLost(err error) {
	c.lostOnce.Do(func() {
		c.lostErr = err
		close(c.lost)
	})
}

// Init decodes and validates the configuration. It does not connect:
// `edgepipe check` and the validation before a reload initialise outputs
// too, and a second connection with the gateway's ClientID would knock the
// running one off the broker. The connection loop starts at the first
// Publish, Commands or Health call — calls the core makes only on an
// output it runs, as soon as it runs it; a server that is down never holds up the gateway's start, the
// queue in front of the output keeps what arrives meanwhile.
func (o *Output) Init(_ context.Context, req *sdk.InitRequest) (*sdk.InitResponse, error) {
	src, err := sdk.DecodeConfig(req, &o.cfg)
	if err != nil {
		return nil, err
	}
	set, err := parseSettings(src, &o.cfg, req.Agent)
	if err != nil {
		return nil, err
	}
	o.set = set
	name := req.Alias
	if name == "" {
		name = "outputs.mqtt"
	}
	o.log = slog.Default().With("plugin", name)
	o.version = buildVersion()
	base := req.Agent.TopicPrefix + topicID(req.Agent, set.clientID)
	o.writeTopic, o.ackTopic = base+"/data/write", base+"/alarm/ack"
	o.systemPrefix, o.systemReply = base+"/system/", base+"/system/reply"
	o.ctx, o.cancel = context.WithCancel(context.Background())
	o.up = make(chan struct{})
	o.done = make(chan struct{})
	o.cmds = make(chan sdk.Command, 256)
	o.reason = "not started"
	return &sdk.InitResponse{}, nil
}

// start begins connecting, once; after Close it does nothing.
func (o *Output) start() {
	o.startOnce.Do(func() {
		o.mu.Lock()
		o.reason = "connecting"
		o.mu.Unlock()
		go o.run()
	})
}

// Close publishes the offline status (a clean DISCONNECT suppresses the
// Last Will), disconnects and stops reconnecting.
func (o *Output) Close(ctx context.Context) error {
	if o.cancel == nil {
		return nil
	}
	o.cancel()
	o.startOnce.Do(func() { close(o.done) }) // never started: nothing to wait for
	select {
	case <-o.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run is the connection loop: one round tries every server in order; a
// failed round waits with the shared backoff policy (internal/backoff: a
// random wait up to a ceiling of 1 s doubling up to max_reconnect_interval)
// before the next. A lost connection also waits a random part of the
// current ceiling before the first attempt: every gateway of a fleet loses
// a restarting broker at the same instant, and the jitter spreads their
// reconnects. A connection that drops soon after it was made (a duplicate
// ClientID being kicked, a broker closing on a bad subscription) keeps the
// grown ceiling, so two gateways sharing an ID cannot knock each other off
// in a tight loop.
func (o *Output) run() {
	defer close(o.done)
	retry := backoff.New(backoff.Policy{Initial: min(firstBackoff, o.set.maxBackoff), Max: o.set.maxBackoff})
	everUp := false
	var lastLog string
	var lastLogAt time.Time
	for {
		c, reason := o.connectRound()
		if c == nil {
			if o.ctx.Err() != nil {
				return
			}
			o.setDown(nil, reason)
			wait := retry.Next()
			if reason != lastLog || time.Since(lastLogAt) > time.Minute {
				o.log.Warn("cannot connect to any MQTT server; retrying", "reason", reason, "retry_in", wait)
				lastLog, lastLogAt = reason, time.Now()
			} else {
				o.log.Debug("still cannot connect", "reason", reason, "retry_in", wait)
			}
			if !backoff.Sleep(o.ctx, wait) {
				return
			}
			continue
		}
		if everUp {
			o.reconnects.Add(1)
		}
		everUp = true
		lastLog = ""
		o.established(c)
		select {
		case <-c.lost:
			why := "connection lost"
			if c.lostErr != nil {
				why += ": " + c.lostErr.Error()
			}
			o.setDown(c, c.server+": "+why)
			if time.Since(c.at) >= 10*time.Second {
				retry.Reset()
			}
			wait := retry.Next()
			o.log.Warn("MQTT connection lost; reconnecting", "server", c.server, "err", c.lostErr, "in", wait)
			if !backoff.Sleep(o.ctx, wait) {
				return
			}
		case <-o.ctx.Done():
			o.goodbye(c)
			return
		}
	}
}

// connectRound tries the servers in order and returns the first
// connection made, or why every one failed.
func (o *Output) connectRound() (*conn, string) {
	var reasons []string
	for _, u := range o.set.servers {
		if o.ctx.Err() != nil {
			return nil, "closed"
		}
		c, err := o.dial(u)
		if err == nil {
			return c, ""
		}
		o.connectFailures.Add(1)
		reasons = append(reasons, u.String()+": "+err.Error())
		o.log.Debug("connect failed", "server", u.String(), "err", err)
	}
	return nil, strings.Join(reasons, "; ")
}

// dial makes one connection attempt to one server.
func (o *Output) dial(u *url.URL) (*conn, error) {
	s := o.set
	c := &conn{server: u.String(), lost: make(chan struct{})}
	opts := paho.NewClientOptions().
		AddBroker(u.String()).
		SetClientID(s.clientID).
		SetUsername(s.username).
		SetPassword(s.password).
		// Version 4 (3.1.1) explicitly: otherwise paho retries a refused
		// CONNACK with 3.1 and reports that second answer instead.
		SetProtocolVersion(4).
		// The core's queue is the session: a clean session plus a
		// resubscribe on every connect is simpler to reason about than
		// broker-side state after a failover to another server.
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetKeepAlive(s.keepalive).
		SetPingTimeout(s.pingTimeout).
		SetConnectTimeout(s.connectTimeout).
		SetWriteTimeout(s.connectTimeout).
		SetOrderMatters(true).
		SetCustomOpenConnectionFn(openConn(s.connectTimeout)).
		SetBinaryWill(s.statusTopic, offlinePayload, 1, true).
		SetConnectionLostHandler(func(_ paho.Client, err error) { c.markLost(err) }).
		SetDefaultPublishHandler(o.onMessage)
	if tlsSchemes[u.Scheme] {
		t := s.tls.Clone()
		t.ServerName = u.Hostname()
		opts.SetTLSConfig(t)
	}
	cl := paho.NewClient(opts)
	tok := cl.Connect()
	select {
	case <-tok.Done():
	case <-o.ctx.Done():
		go func() {
			<-tok.Done()
			if tok.Error() == nil {
				cl.Disconnect(0)
			}
		}()
		return nil, o.ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return nil, describeConnectError(tok.(*paho.ConnectToken).ReturnCode(), err)
	}
	c.cl, c.at = cl, time.Now()
	return c, nil
}

// connackReasons are MQTT 3.1.1's CONNACK refusal codes (section 3.2.2.3).
var connackReasons = map[byte]string{
	1: "unacceptable protocol version",
	2: "identifier rejected",
	3: "server unavailable",
	4: "bad user name or password",
	5: "not authorized",
}

// describeConnectError turns paho's error into a reason fit for logs and
// /healthz: the CONNACK code and its meaning, the pin mismatch, or the
// network/TLS error without paho's generic prefix.
func describeConnectError(rc byte, err error) error {
	if r, ok := connackReasons[rc]; ok {
		return fmt.Errorf("connection refused by server: CONNACK code %d, %s", rc, r)
	}
	var pe *PinError
	if errors.As(err, &pe) {
		return fmt.Errorf("TLS: %w", pe)
	}
	if m, ok := err.(interface{ Unwrap() []error }); ok {
		if errs := m.Unwrap(); len(errs) > 1 && errs[len(errs)-1] != nil {
			return errs[len(errs)-1]
		}
	}
	return err
}

// established runs once per connection: it publishes the retained online
// status, resubscribes the command topics and only then lets Publish use
// the connection.
func (o *Output) established(c *conn) {
	payload := fmt.Appendf(nil, `{"status":"online","ts":%d,"version":`, time.Now().UnixMilli())
	payload = append(sdk.AppendJSONString(payload, o.version), '}')
	if err := o.wait(c, c.cl.Publish(o.set.statusTopic, 1, true, payload)); err != nil {
		o.log.Warn("publishing online status failed", "topic", o.set.statusTopic, "err", err)
	}
	o.mu.Lock()
	o.conn = c
	o.reason = ""
	close(o.up)
	cmdsOn := o.cmdsOn
	o.mu.Unlock()
	if cmdsOn {
		o.subscribe(c)
	}
	o.log.Info("connected to MQTT server", "server", c.server, "client_id", o.set.clientID)
}

// setDown records that c (or no connection at all) is not usable, and why.
func (o *Output) setDown(c *conn, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.conn != nil && (c == nil || o.conn == c) {
		o.conn = nil
		o.up = make(chan struct{})
	}
	o.reason = reason
}

// goodbye ends a connection on Close: the offline status is published
// by us because a clean disconnect discards the Last Will.
func (o *Output) goodbye(c *conn) {
	o.setDown(c, "closed")
	tok := c.cl.Publish(o.set.statusTopic, 1, true, offlinePayload)
	select {
	case <-tok.Done():
	case <-c.lost:
	case <-time.After(2 * time.Second):
	}
	c.cl.Disconnect(250)
}

// wait waits for a token, the connection's loss, or the connect timeout.
func (o *Output) wait(c *conn, tok paho.Token) error {
	t := time.NewTimer(o.set.connectTimeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-c.lost:
		return errors.New("connection lost")
	case <-t.C:
		return errors.New("no answer from server")
	case <-o.ctx.Done():
		return o.ctx.Err()
	}
}

// waitConnected blocks until a connection is up, ctx ends or the output
// closes. Blocking rather than failing at once lets the core's replay
// start the moment the server is back, instead of after its retry backoff.
func (o *Output) waitConnected(ctx context.Context) (*conn, error) {
	for {
		o.mu.Lock()
		c, up, reason := o.conn, o.up, o.reason
		o.mu.Unlock()
		if c != nil {
			return c, nil
		}
		select {
		case <-up:
		case <-ctx.Done():
			return nil, fmt.Errorf("not connected: %s", reason)
		case <-o.ctx.Done():
			return nil, errors.New("output closed")
		}
	}
}

// Publish sends the batch in order and returns nil only when every
// message is confirmed: PUBACK (QoS 1) or PUBCOMP (QoS 2), or written to
// the connection at QoS 0. All messages are sent before any is waited
// for, so many are in flight at once. On any error the core keeps the
// whole batch and offers it again: delivery is at least once, and a
// message may arrive twice after a connection loss.
//
// Every message goes out at the output's qos; a message whose topic a
// broker would refuse (empty, wildcards) is dropped, counted and logged,
// since resending it could only fail again and would block the queue.
func (o *Output) Publish(ctx context.Context, msgs []sdk.Message) error {
	if o.set == nil {
		return errors.New("mqtt output used before Init")
	}
	if len(msgs) == 0 {
		return nil
	}
	o.start()
	c, err := o.waitConnected(ctx)
	if err != nil {
		return err
	}
	toks := make([]paho.Token, 0, min(len(msgs), inflightWindow))
	sent := 0
	waitOne := func(tok paho.Token) error {
		select {
		case <-tok.Done():
			if err := tok.Error(); err != nil {
				return fmt.Errorf("publish to %s: %w", c.server, err)
			}
			return nil
		case <-c.lost:
			return fmt.Errorf("connection to %s lost before the server confirmed every message", c.server)
		case <-ctx.Done():
			return fmt.Errorf("publish to %s: %w", c.server, ctx.Err())
		case <-o.ctx.Done():
			return errors.New("output closed")
		}
	}
	for i := range msgs {
		m := &msgs[i]
		if err := checkTopic(m.Topic); err != nil {
			o.invalidDropped.Add(1)
			o.log.Warn("dropping a message the server would refuse", "err", err)
			continue
		}
		if len(toks) == inflightWindow {
			if err := waitOne(toks[0]); err != nil {
				return err
			}
			toks = toks[1:]
		}
		toks = append(toks, c.cl.Publish(m.Topic, o.set.qos, m.Retain, m.Payload))
		sent++
	}
	for _, tok := range toks {
		if err := waitOne(tok); err != nil {
			return err
		}
	}
	o.published.Add(uint64(sent))
	return nil
}

// Commands receives writes, alarm acknowledgements and system commands
// until ctx ends. Subscriptions are made now if connected and again after
// every reconnect; payloads are handed over raw for the core to parse.
func (o *Output) Commands(ctx context.Context, handle func(sdk.Command)) error {
	if o.set == nil {
		return errors.New("mqtt output used before Init")
	}
	o.start()
	o.mu.Lock()
	if o.cmdsOn {
		o.mu.Unlock()
		return errors.New("commands are already being received")
	}
	o.cmdsOn = true
	c := o.conn
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		o.cmdsOn = false
		o.mu.Unlock()
	}()
	if c != nil {
		o.subscribe(c)
	}
	for {
		select {
		case cmd := <-o.cmds:
			handle(cmd)
		case <-ctx.Done():
			return nil
		case <-o.ctx.Done():
			return errors.New("output closed")
		}
	}
}

// commandFilters are the subscriptions of SPEC section 4.
func (o *Output) commandFilters() map[string]byte {
	return map[string]byte{o.writeTopic: 1, o.ackTopic: 1, o.systemPrefix + "#": 1}
}

func (o *Output) subscribe(c *conn) {
	tok := c.cl.SubscribeMultiple(o.commandFilters(), o.onMessage)
	if err := o.wait(c, tok); err != nil {
		o.log.Warn("subscribing to command topics failed", "server", c.server, "err", err)
		return
	}
	for topic, code := range tok.(*paho.SubscribeToken).Result() {
		if code >= 0x80 {
			o.log.Warn("server refused a command subscription", "server", c.server, "topic", topic, "code", code)
		}
	}
}

// onMessage runs on paho's router goroutine, which also carries the
// acknowledgements of our publishes: it must never block, so a command
// that finds the buffer full is dropped and counted.
func (o *Output) onMessage(_ paho.Client, m paho.Message) {
	topic := m.Topic()
	var kind string
	switch {
	case topic == o.writeTopic:
		kind = "write"
	case topic == o.ackTopic:
		kind = "ack"
	case topic == o.systemReply:
		return // our own reply, seen through the system/# subscription
	case strings.HasPrefix(topic, o.systemPrefix):
		kind = "system"
	default:
		return
	}
	o.mu.Lock()
	on := o.cmdsOn
	o.mu.Unlock()
	cmd := sdk.Command{Kind: kind, Topic: topic, Payload: append([]byte(nil), m.Payload()...)}
	if on {
		select {
		case o.cmds <- cmd:
			o.commandsReceived.Add(1)
			return
		default:
		}
	}
	o.commandsDropped.Add(1)
	o.log.Warn("command dropped: nobody is receiving commands or too many are waiting", "topic", topic)
}

// Health says whether the output is connected and, if not, why: the
// CONNACK refusal, the TLS pin mismatch, the network error. Counters are
// monotonic since Init.
func (o *Output) Health(context.Context) (sdk.Health, error) {
	if o.set != nil {
		o.start()
	}
	o.mu.Lock()
	ok, reason := o.conn != nil, o.reason
	o.mu.Unlock()
	if ok {
		reason = ""
	} else if reason == "" {
		reason = "not initialised"
	}
	return sdk.Health{OK: ok, Reason: reason, Counters: map[string]uint64{
		"reconnects":        o.reconnects.Load(),
		"published":         o.published.Load(),
		"connect_failures":  o.connectFailures.Load(),
		"commands_received": o.commandsReceived.Load(),
		"commands_dropped":  o.commandsDropped.Load(),
		"invalid_dropped":   o.invalidDropped.Load(),
	}}, nil
}

// buildVersion is what the online status announces: the module version
// the binary was built from, or "dev".
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
