// Package mqtt is the outputs.mqtt plugin: it delivers rendered messages
// to an MQTT server following the FBox MQTT1.1 connection rules (SPEC
// sections 1, 3, 4 and 6) and hands the server's commands to the core.
//
// What the plugin owns and what the core owns: the plugin keeps one
// connection up (servers in order, TLS with pinning, keepalive, backoff,
// status and Last Will) and confirms each Publish batch only once the
// server has acknowledged every message. The core owns the store-and-
// forward queue in front of it (buffer, buffer_limit), pausing (enabled),
// retries, and checking and routing commands. Commands are parsed here,
// once, with package fbox, which owns the FBox topics and payloads.
package mqtt

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/edgepipe/edgepipe/internal/backoff"
	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/fbox"
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
	_ sdk.FrameReleaser  = (*Output)(nil)
)

// ReleaseFrame is never called on an output: implementing
// sdk.FrameReleaser is the output's promise that it keeps no reference
// into the messages of a Publish call that returned nil, so that in its
// own process the SDK decodes the next call's payloads (~64 KB a call in
// the bench, half of what the process allocated) into their memory.
//
// Why that holds: Publish returns nil only once every message was
// confirmed, each in order: a QoS 0 message once paho's writer wrote it
// (a large payload goes to paho by reference, which the connection drops
// as it writes the packet: payloadRefs), a QoS 1 or
// 2 one once the server acknowledged it, which it can only do after that
// write; the goroutine handing messages to paho has handed over the last
// one by then. paho keeps nothing after (noStore, a clean session, a new
// client per connection, so nothing is resent on reconnect), the fifos
// hold commands and the output's own busy replies, never a published
// message, and the WebSocket path writes through the same paho writer.
// The one message kept past Publish, the core's retained status that
// every reconnect republishes, is copied (lastStatus). A Publish that
// fails may still have messages in paho (handed to its writer, which
// reads them until the aborted connection is torn down, or blocked up to
// paho's 30 s in its Publish): the SDK then reuses nothing of that call.
func (*Output) ReleaseFrame(*sdk.Frame) {}

// offlinePayload is the Last Will, and what a graceful Close publishes.
var offlinePayload = fbox.Offline()

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
	// lastStatus is the last retained status the core published (its
	// fuller account of the gateway), republished on every connect: a
	// copy, since the message's memory is the caller's once Publish
	// returned (see ReleaseFrame).
	lastStatus atomic.Pointer[[]byte]

	topics     fbox.Topics
	maxCommand int // agent.max_command_size

	ctx       context.Context // lives from Init to Close
	cancel    context.CancelFunc
	done      chan struct{} // closed when the connection loop has exited
	startOnce sync.Once     // the connection loop starts at first use

	mu     sync.Mutex
	conn   *conn         // the established connection, nil while down
	up     chan struct{} // closed once conn is set; replaced when it goes
	reason string        // why not connected, for Health; never a secret
	cmdsOn bool          // a Commands call is receiving

	// cmds is the bounded intake between paho's router and the core; a
	// command that finds it full is answered busy through answers, which
	// answerLoop publishes (paho's router must not publish itself).
	cmds    *fifo[held[sdk.Command]]
	answers *fifo[held[sdk.Message]]
	wg      sync.WaitGroup // answerLoop
	// cmdBytes and answerBytes are what the two queues hold, bounded by
	// intakeBytes and answerBytes beside the slot counts.
	cmdBytes, answerBytesHeld atomic.Int64

	reconnects, published, connectFailures atomic.Uint64
	commandsReceived, commandsBusy         atomic.Uint64
	commandsDropped, invalidDropped        atomic.Uint64
}

// intakeSlots and intakeBytes bound the commands waiting for the core;
// answerSlots and answerBytes the busy replies waiting to be published. A
// busy reply is small (its id and a short text), so many more fit: a flood
// is answered, not dropped, until it outruns both.
const (
	intakeSlots = 1024
	intakeBytes = 16 << 20
	answerSlots = 16384
	answerBytes = 8 << 20
)

// held is a queued item and the bytes it holds.
type held[T any] struct {
	v    T
	size int64
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

	netMu sync.Mutex
	net   net.Conn // the socket under paho, for abort

	refs *payloadRefs // payloads handed to paho by reference
}

func (c *conn) markLost(err error) {
	c.lostOnce.Do(func() {
		c.lostErr = err
		close(c.lost)
	})
}

func (c *conn) setNet(nc net.Conn) {
	c.netMu.Lock()
	c.net = nc
	c.netMu.Unlock()
}

// abort ends a connection whose unconfirmed messages Publish gave up on:
// paho would otherwise go on sending them while the core offers them
// again, and the server would get each twice on the same connection. The
// socket is reset under paho (no linger: what the kernel still holds for
// it is discarded, not delivered late), paho sees a lost connection (so
// the server publishes the Last Will) and the connection loop reconnects.
func (c *conn) abort(err error) {
	c.markLost(err)
	c.netMu.Lock()
	nc := c.net
	c.netMu.Unlock()
	if nc == nil {
		return
	}
	if l, ok := nc.(interface{ SetLinger(int) error }); ok {
		_ = l.SetLinger(0)
	}
	nc.Close()
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
	o.version = req.Agent.Version
	if o.version == "" {
		o.version = "dev" // a core that does not tell (tests); the version's owner is cmd/edgepipe
	}
	o.topics = fbox.NewTopics(req.Agent.TopicPrefix, topicID(req.Agent, set.clientID))
	o.maxCommand = fbox.DefaultMaxCommandSize
	if req.Agent.MaxCommandSize > 0 {
		o.maxCommand = int(min(req.Agent.MaxCommandSize, 1<<30))
	}
	o.ctx, o.cancel = context.WithCancel(context.Background())
	o.up = make(chan struct{})
	o.done = make(chan struct{})
	o.cmds = newFIFO[held[sdk.Command]](intakeSlots)
	o.answers = newFIFO[held[sdk.Message]](answerSlots)
	o.reason = "not started"
	return &sdk.InitResponse{}, nil
}

// start begins connecting, once; after Close it does nothing.
func (o *Output) start() {
	o.startOnce.Do(func() {
		o.mu.Lock()
		o.reason = "connecting"
		o.mu.Unlock()
		o.wg.Add(1)
		go o.answerLoop()
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
	case <-ctx.Done():
		return ctx.Err()
	}
	// answerLoop ends with o.ctx, but a reply it is handing to paho can
	// sit behind a busy writer on a slow link: the wait is bounded by ctx
	// like the goodbye, so a stop keeps to its deadline. (Replies are
	// answers, not data: the core's queue holds no state for them here.)
	answered := make(chan struct{})
	go func() {
		o.wg.Wait()
		close(answered)
	}()
	select {
	case <-answered:
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
	c := &conn{server: u.String(), lost: make(chan struct{}), refs: newPayloadRefs()}
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
		// Nor does paho keep one: with a clean session its store is only
		// written (each message put until its PUBACK) and reset on
		// connect, never read back, so it is a store that keeps nothing.
		SetStore(noStore{}).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetKeepAlive(s.keepalive).
		SetPingTimeout(s.pingTimeout).
		SetConnectTimeout(s.connectTimeout).
		// No write timeout in paho: it would be a deadline for each whole
		// packet, cutting short slow writes that make progress. The
		// socket fails a write only when the link stalls (stallConn).
		SetWriteTimeout(0).
		SetOrderMatters(true).
		SetCustomOpenConnectionFn(openConn(s.connectTimeout, o.maxCommand, c.setNet, c.refs)).
		SetBinaryWill(s.statusTopic, offlinePayload, 1, true).
		SetConnectionLostHandler(func(_ paho.Client, err error) { c.markLost(err) }).
		SetDefaultPublishHandler(o.onMessage)
	if secure(u.Scheme) {
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

// noStore is a paho.Store that keeps nothing (see dial).
type noStore struct{}

func (noStore) Open()                             {}
func (noStore) Put(string, packets.ControlPacket) {}
func (noStore) Get(string) packets.ControlPacket  { return nil }
func (noStore) All() []string                     { return nil }
func (noStore) Del(string)                        {}
func (noStore) Close()                            {}
func (noStore) Reset()                            {}

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
	payload := fbox.Online(time.Now(), o.version)
	if p := o.lastStatus.Load(); p != nil {
		// The core's fuller status (configuration hash, health; SPEC 9)
		// stays the retained one across reconnects.
		payload = *p
	}
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
	// paho's Publish itself blocks while its writer is busy (up to 30 s
	// without a write timeout, behind a slow link), hence the goroutine:
	// the offline status gets two seconds in all.
	tok := make(chan paho.Token, 1)
	go func() { tok <- c.cl.Publish(o.set.statusTopic, 1, true, offlinePayload) }()
	timeout := time.After(2 * time.Second)
	select {
	case t := <-tok:
		select {
		case <-t.Done():
		case <-c.lost:
		case <-timeout:
		}
	case <-c.lost:
	case <-timeout:
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
// the connection at QoS 0. Messages are handed to paho by a goroutine of
// their own while this one waits for the confirmations in order, so many
// are in flight at once and ctx is noticed even while paho is still busy
// writing an earlier message to a slow link.
//
// When the connection is lost or ctx ends (the batch's time budget) before
// every message is confirmed, the error wraps sdk.PartialError with the
// number of messages confirmed in order so far: the core forgets those and
// offers the rest again. Giving up on messages still in flight aborts the
// connection, so paho does not deliver them behind the core's back while
// it resends them: the server sees at most the messages in flight at that
// moment twice, once per reconnect.
//
// Each message goes out at its own QoS (sdk.Message.QoS, the template's
// qos), lowered to the output's qos when that is smaller. A message whose
// topic a broker would refuse (empty, wildcards) is dropped, counted and
// logged, since resending it could only fail again and would block the
// queue; it counts as confirmed.
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
	// sent carries one token per message, in order; nil for a message
	// dropped for its topic. window bounds how many are unconfirmed.
	sent := make(chan paho.Token, len(msgs))
	window := make(chan struct{}, inflightWindow)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for i := range msgs {
			m := &msgs[i]
			if err := checkTopic(m.Topic); err != nil {
				o.invalidDropped.Add(1)
				o.log.Warn("dropping a message the server would refuse", "err", err)
				sent <- nil
				continue
			}
			select {
			case window <- struct{}{}:
			case <-stop:
				return
			}
			select {
			case <-stop:
				return
			default:
			}
			topic := m.Topic
			if m.Retain && (topic == o.set.statusTopic || topic == o.set.coreStatus) {
				topic = o.set.statusTopic
				p := bytes.Clone(m.Payload)
				o.lastStatus.Store(&p)
			}
			sent <- c.cl.Publish(topic, min(m.QoS, o.set.qos), m.Retain, c.refs.stub(m.Payload))
		}
	}()
	confirmed, published := 0, 0
	fail := func(err error) error {
		o.published.Add(uint64(published))
		return sdk.PartialError{Confirmed: confirmed, Err: err}
	}
	giveUp := func(err error) error {
		// Messages handed to paho and not confirmed would still go out.
		if confirmed < len(msgs) {
			why := fmt.Errorf("gave up on a batch: %w", err)
			c.abort(why)
			// Not usable from now on, before the connection loop notices.
			o.setDown(c, c.server+": "+why.Error())
		}
		return fail(fmt.Errorf("publish to %s: %w (%d of %d messages confirmed)", c.server, err, confirmed, len(msgs)))
	}
	for range msgs {
		var tok paho.Token
		select {
		case tok = <-sent:
		case <-c.lost:
			return fail(fmt.Errorf("connection to %s lost before the server confirmed every message (%d of %d confirmed)", c.server, confirmed, len(msgs)))
		case <-ctx.Done():
			return giveUp(ctx.Err())
		case <-o.ctx.Done():
			return fail(errors.New("output closed"))
		}
		if tok != nil {
			select {
			case <-tok.Done():
				<-window
				if err := tok.Error(); err != nil {
					return giveUp(err)
				}
				published++
			case <-c.lost:
				return fail(fmt.Errorf("connection to %s lost before the server confirmed every message (%d of %d confirmed)", c.server, confirmed, len(msgs)))
			case <-ctx.Done():
				return giveUp(ctx.Err())
			case <-o.ctx.Done():
				return fail(errors.New("output closed"))
			}
		}
		confirmed++
	}
	o.published.Add(uint64(published))
	return nil
}

// Commands receives writes, alarm acknowledgements and system commands
// until ctx ends, parsed into typed commands (package fbox). Subscriptions
// are made now if connected and again after every reconnect. handle may
// block (the core is busy): commands then wait in a bounded intake, and
// those that find it full are answered busy by the output itself.
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
		// What the intake still holds would be served stale by the next
		// receiver, if any: answer it now.
		for {
			h, ok := o.cmds.take()
			if !ok {
				return
			}
			o.cmdBytes.Add(-h.size)
			o.answer(h.v, fbox.Busy("the gateway stopped taking commands before this one (reloading or stopping); send it again"))
		}
	}()
	if c != nil {
		o.subscribe(c)
	}
	for {
		if ctx.Err() != nil {
			return nil // the deferred drain answers what is left
		}
		if h, ok := o.cmds.take(); ok {
			o.cmdBytes.Add(-h.size)
			handle(h.v)
			continue
		}
		select {
		case <-o.cmds.wait():
		case <-ctx.Done():
			return nil
		case <-o.ctx.Done():
			return errors.New("output closed")
		}
	}
}

func (o *Output) subscribe(c *conn) {
	filters := map[string]byte{}
	for _, f := range o.topics.Subscriptions() {
		filters[f] = 1
	}
	tok := c.cl.SubscribeMultiple(filters, o.onMessage)
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
// acknowledgements of our publishes: it must never block. It parses the
// command once and hands it to the core through the bounded intake; a
// command that finds the intake full, or nobody receiving, is answered
// busy.
func (o *Output) onMessage(_ paho.Client, m paho.Message) {
	var cmd sdk.Command
	var ok bool
	if head, size, cut := cutPayload(m.Payload()); cut {
		cmd, ok = o.topics.ParseTruncated(m.Topic(), head, size, o.maxCommand)
	} else {
		cmd, ok = o.topics.Parse(m.Topic(), m.Payload(), o.maxCommand)
	}
	if !ok {
		return // not a command (our own reply seen through system/#)
	}
	// The send happens under mu so that a Commands call ending (which
	// answers what the intake holds) cannot miss a command put in after.
	why := "the gateway is not taking commands now (starting or reloading); send it again"
	size := int64(len(m.Payload()))
	o.mu.Lock()
	if o.cmdsOn {
		if o.cmdBytes.Load()+size <= intakeBytes {
			if o.cmds.put(held[sdk.Command]{cmd, size}) {
				o.cmdBytes.Add(size)
				o.mu.Unlock()
				o.commandsReceived.Add(1)
				return
			}
		}
		why = fmt.Sprintf("%d commands are waiting; send it again later", o.cmds.len())
	}
	o.mu.Unlock()
	o.answer(cmd, fbox.Busy(why))
}

// answer queues a reply the output gives itself (busy). When even that
// queue is full the command is dropped and counted: only a flood far
// beyond what a device can be written at gets there.
func (o *Output) answer(cmd sdk.Command, r sdk.Result) {
	m := fbox.Reply(cmd, r)
	size := int64(len(m.Payload))
	if o.answerBytesHeld.Load()+size > answerBytes {
		o.commandsDropped.Add(1)
		o.log.Warn("command dropped: too many commands waiting to be answered", "kind", cmd.Kind, "id", fbox.Clip(cmd.ID))
		return
	}
	if o.answers.put(held[sdk.Message]{m, size}) {
		o.answerBytesHeld.Add(size)
		o.commandsBusy.Add(1)
		o.log.Info("command refused", "kind", cmd.Kind, "id", fbox.Clip(cmd.ID), "err", r.Error)
	} else {
		o.commandsDropped.Add(1)
		o.log.Warn("command dropped: too many commands waiting to be answered", "kind", cmd.Kind, "id", fbox.Clip(cmd.ID))
	}
}

// answerLoop publishes the output's own replies, in order, whenever
// connected. They do not go through the core's queue: a busy reply is
// worth nothing after a reconnect.
func (o *Output) answerLoop() {
	defer o.wg.Done()
	for {
		h, ok := o.answers.take()
		if !ok {
			select {
			case <-o.answers.wait():
			case <-o.ctx.Done():
				return
			}
			continue
		}
		o.answerBytesHeld.Add(-h.size)
		m := h.v
		c, err := o.waitConnected(o.ctx)
		if err != nil {
			return
		}
		if err := o.wait(c, c.cl.Publish(m.Topic, 1, false, m.Payload)); err != nil {
			o.log.Debug("publishing a busy reply failed", "topic", m.Topic, "err", err)
		}
	}
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
		"commands_busy":     o.commandsBusy.Load(),
		"commands_dropped":  o.commandsDropped.Load(),
		"invalid_dropped":   o.invalidDropped.Load(),
	}}, nil
}
