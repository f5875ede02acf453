package mqtt_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/internal/testbroker"
	"github.com/edgepipe/edgepipe/plugins/outputs/mqtt"
	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// childEnv makes the test binary act as a gateway that connects and then
// waits to be killed: the Last Will can only be shown by a process that
// dies without a word.
const childEnv = "EDGEPIPE_MQTT_TEST_CHILD_CONFIG"

func TestMain(m *testing.M) {
	if conf := os.Getenv(childEnv); conf != "" {
		runChild(conf)
		return
	}
	os.Exit(m.Run())
}

func runChild(conf string) {
	o := mqtt.New()
	if _, err := o.Init(context.Background(), sdktest.Request(conf)); err != nil {
		fmt.Println("init:", err)
		os.Exit(2)
	}
	for {
		if h, _ := o.Health(context.Background()); h.OK {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("ready")
	select {}
}

func TestPublishInOrderQoS1AndQoS0(t *testing.T) {
	brokers(t, testbroker.MochiOptions{}, testbroker.MosquittoOptions{}, nil, func(t *testing.T, b broker) {
		for _, qos := range []int{1, 0} {
			topic := fmt.Sprintf("%s/data/q%d", base, qos)
			sub := b.subscribe(topic)
			o := start(t, fmt.Sprintf("servers = [%q]\nqos = %d\nclient_id = \"GW-Q%d\"\n", b.url, qos, qos))
			waitHealth(t, o, 10*time.Second, "connected", connected)
			msgs := withLarge(messages(1000, topic))
			publish(t, o, msgs)
			checkInOrder(t, sub.WaitCount(t, len(msgs), 10*time.Second), msgs)
			if h, _ := o.Health(context.Background()); h.Counters["published"] != uint64(len(msgs)) {
				t.Errorf("qos %d: published counter %d, want %d", qos, h.Counters["published"], len(msgs))
			}
		}
	})
}

func TestWrongPasswordIsLoggedWithReasonAndRetried(t *testing.T) {
	const secret = "Sup3r-s3cret-pw"
	creds := testbroker.ClientOptions{Username: "gw", Password: "right-one"}
	brokers(t, testbroker.MochiOptions{Username: "gw", Password: "right-one"},
		testbroker.MosquittoOptions{Username: "gw", Password: "right-one"},
		func() *testbroker.ClientOptions { return &creds }, func(t *testing.T, b broker) {
			logs := captureLogs(t)
			o := start(t, fmt.Sprintf("servers = [%q]\nusername = \"gw\"\npassword = %q\nmax_reconnect_interval = \"50ms\"\n", b.url, secret))
			h := waitHealth(t, o, 10*time.Second, "several refused attempts", func(h sdk.Health) bool {
				return !h.OK && h.Counters["connect_failures"] >= 3
			})
			if !strings.Contains(h.Reason, "CONNACK code") ||
				!(strings.Contains(h.Reason, "bad user name or password") || strings.Contains(h.Reason, "not authorized")) {
				t.Errorf("reason does not name the CONNACK refusal: %q", h.Reason)
			}
			waitLog(t, logs, "CONNACK code", 5*time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			err := o.Publish(ctx, messages(1, base+"/data"))
			if err == nil || !strings.Contains(err.Error(), "CONNACK") {
				t.Errorf("Publish while refused: got %v, want an error naming the refusal", err)
			}
			for what, s := range map[string]string{"log": logs.String(), "health": h.Reason, "publish error": err.Error()} {
				if strings.Contains(s, secret) {
					t.Errorf("the password appears in the %s", what)
				}
			}
		})
}

func TestTLSWithTestCA(t *testing.T) {
	ca := testbroker.NewCA(t, "edgepipe-test-ca")
	srv := ca.Server(t, "broker")
	clientTLS := func() *testbroker.ClientOptions {
		return &testbroker.ClientOptions{TLS: &tls.Config{RootCAs: ca.Pool()}, Persistent: true}
	}
	brokers(t, testbroker.MochiOptions{TLS: testbroker.ServerTLS(t, srv, nil)}, testbroker.MosquittoOptions{Server: srv}, clientTLS,
		func(t *testing.T, b broker) {
			sub := b.subscribe(base + "/data")
			o := start(t, fmt.Sprintf("servers = [%q]\ntls_ca = %q\n", b.url, ca.CertFile))
			waitHealth(t, o, 10*time.Second, "connected over TLS", connected)
			msgs := withLarge(messages(20, base+"/data"))
			publish(t, o, msgs)
			checkInOrder(t, sub.WaitCount(t, len(msgs), 10*time.Second), msgs)

			// Without the CA the chain does not verify: refused.
			o2 := start(t, fmt.Sprintf("servers = [%q]\nclient_id = \"GW-NOCA\"\nmax_reconnect_interval = \"100ms\"\n", b.url))
			h := waitHealth(t, o2, 10*time.Second, "refusal", func(h sdk.Health) bool { return !h.OK && h.Counters["connect_failures"] > 0 })
			if !strings.Contains(h.Reason, "certificate") {
				t.Errorf("reason should name the certificate problem: %q", h.Reason)
			}
		})
}

func TestPinMismatchFailsOverToSecondServer(t *testing.T) {
	ca := testbroker.NewCA(t, "pin-ca")
	wrong := ca.Server(t, "wrong-key")
	right := ca.Server(t, "right-key")
	sum, _ := hex.DecodeString(right.SPKISHA256)
	pin := base64.StdEncoding.EncodeToString(sum)
	clientTLS := func() *testbroker.ClientOptions {
		return &testbroker.ClientOptions{TLS: &tls.Config{RootCAs: ca.Pool()}, Persistent: true}
	}
	brokers(t, testbroker.MochiOptions{TLS: testbroker.ServerTLS(t, right, nil)}, testbroker.MosquittoOptions{Server: right}, clientTLS,
		func(t *testing.T, b broker) {
			first := testbroker.StartMochi(t, testbroker.MochiOptions{TLS: testbroker.ServerTLS(t, wrong, nil)})
			firstSub := first.Subscribe(base + "/data")
			sub := b.subscribe(base + "/data")
			logs := captureLogs(t)
			// No tls_ca: the pin alone is the trust anchor.
			o := start(t, fmt.Sprintf("servers = [%q, %q]\ntls_pin_sha256 = [%q]\nmax_reconnect_interval = \"100ms\"\n", first.URL(), b.url, pin))
			h := waitHealth(t, o, 10*time.Second, "connected to the second server", connected)
			if h.Counters["connect_failures"] < 1 {
				t.Errorf("the first server should have been refused: %+v", h.Counters)
			}
			msgs := messages(10, base+"/data")
			publish(t, o, msgs)
			checkInOrder(t, sub.WaitCount(t, 10, 10*time.Second), msgs)
			if n := firstSub.Len(); n != 0 {
				t.Errorf("the server with the wrong key got %d messages", n)
			}
			b.stop()
			waitLog(t, logs, "matches no tls_pin_sha256", 10*time.Second)
			h = waitHealth(t, o, 10*time.Second, "down with the pin reason", func(h sdk.Health) bool {
				return !h.OK && strings.Contains(h.Reason, "matches no tls_pin_sha256 (server's is sha256 "+wrong.SPKISHA256)
			})
			t.Logf("reason: %s", h.Reason)
		})
}

func TestMutualTLS(t *testing.T) {
	ca := testbroker.NewCA(t, "mtls-ca")
	srv := ca.Server(t, "broker")
	cli := ca.Client(t, "gateway")
	rogue := testbroker.NewCA(t, "rogue-ca").Client(t, "rogue")
	clientTLS := func() *testbroker.ClientOptions {
		return &testbroker.ClientOptions{Persistent: true, TLS: &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{cli.TLSCertificate(t)}}}
	}
	brokers(t, testbroker.MochiOptions{TLS: testbroker.ServerTLS(t, srv, ca)}, testbroker.MosquittoOptions{Server: srv, ClientCA: ca}, clientTLS,
		func(t *testing.T, b broker) {
			sub := b.subscribe(base + "/data")
			logs := captureLogs(t)
			// The key as PEM text, as it would come from ${ENV}.
			o := start(t, fmt.Sprintf("servers = [%q]\ntls_ca = %q\ntls_cert = %q\ntls_key = '''\n%s'''\n", b.url, ca.CertFile, cli.CertFile, cli.KeyPEM))
			waitHealth(t, o, 10*time.Second, "accepted with a client certificate", connected)
			msgs := messages(5, base+"/data")
			publish(t, o, msgs)
			checkInOrder(t, sub.WaitCount(t, 5, 10*time.Second), msgs)

			for name, conf := range map[string]string{
				"no certificate": fmt.Sprintf("client_id = \"GW-NOCERT\"\nservers = [%q]\ntls_ca = %q\n", b.url, ca.CertFile),
				"certificate of a CA the broker does not trust": fmt.Sprintf("client_id = \"GW-ROGUE\"\nservers = [%q]\ntls_ca = %q\ntls_cert = %q\ntls_key = %q\n",
					b.url, ca.CertFile, rogue.CertFile, rogue.KeyFile),
			} {
				p := start(t, conf+"max_reconnect_interval = \"100ms\"\n")
				h := waitHealth(t, p, 10*time.Second, name+" refused", func(h sdk.Health) bool { return !h.OK && h.Counters["connect_failures"] >= 2 })
				if h.Reason == "" {
					t.Errorf("%s: no reason given", name)
				}
				t.Logf("%s: %s", name, h.Reason)
			}
			keyBody := strings.Split(string(cli.KeyPEM), "\n")[1]
			if strings.Contains(logs.String(), keyBody) {
				t.Error("private key material appears in the log")
			}
		})
}

func TestStatusRetainedAndLastWillAfterKill9(t *testing.T) {
	brokers(t, testbroker.MochiOptions{}, testbroker.MosquittoOptions{}, nil, func(t *testing.T, b broker) {
		sub := b.subscribe(statusTop)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+fmt.Sprintf("servers = [%q]\nkeepalive = \"60s\"\n", b.url))
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		ready := make(chan string, 1)
		go func() {
			line, _ := bufio.NewReader(stdout).ReadString('\n')
			ready <- line
		}()
		select {
		case line := <-ready:
			if line != "ready\n" {
				t.Fatalf("child said %q", line)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("child gateway did not connect")
		}
		sub.Wait(t, 10*time.Second, "online status", func(m []testbroker.Received) bool {
			return len(m) > 0 && strings.HasPrefix(string(m[len(m)-1].Payload), `{"status":"online","ts":`)
		})
		// A client arriving later gets the status as a retained message.
		late := testbroker.Subscribe(t, b.url, statusTop, testbroker.ClientOptions{})
		got := late.WaitCount(t, 1, 10*time.Second)
		if !got[0].Retain || !strings.Contains(string(got[0].Payload), `"online"`) {
			t.Errorf("retained status: %+v", got[0])
		}
		if err := cmd.Process.Kill(); err != nil { // SIGKILL: no DISCONNECT is sent
			t.Fatal(err)
		}
		sub.Wait(t, 10*time.Second, "Last Will", func(m []testbroker.Received) bool {
			return len(m) > 0 && string(m[len(m)-1].Payload) == `{"status":"offline"}`
		})
	})
}

func TestCloseAnnouncesOffline(t *testing.T) {
	m := testbroker.StartMochi(t, testbroker.MochiOptions{})
	sub := m.Subscribe(statusTop)
	o := mqtt.New()
	sdktest.Init(t, o, fmt.Sprintf("servers = [%q]\n", m.URL()))
	waitHealth(t, o, 10*time.Second, "connected", connected)
	if err := o.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := sub.WaitCount(t, 2, 5*time.Second)
	if string(got[1].Payload) != `{"status":"offline"}` || !got[1].Retain {
		t.Errorf("after Close: %+v", got[1])
	}
	if p, _ := m.Retained(statusTop); string(p) != `{"status":"offline"}` {
		t.Errorf("retained status after Close: %s", p)
	}
}

// untilCommand publishes probe writes until one comes through: the
// subscription is made in the background, and this is its signal.
func untilCommand(t *testing.T, url string, got <-chan sdk.Command) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		testbroker.PublishOnce(t, url, testbroker.ClientOptions{}, base+"/data/write", fmt.Appendf(nil, `{"id":"probe-%d"}`, i), false)
		select {
		case c := <-got:
			if c.Kind != sdk.CommandWrite || !strings.HasPrefix(c.ID, "probe-") || c.ReplyTopic != base+"/data/write/reply" {
				t.Fatalf("unexpected command %+v", c)
			}
			// drain further probes
			for {
				select {
				case <-got:
				case <-time.After(300 * time.Millisecond):
					return
				}
			}
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Fatal("no command came through")
}

func TestCommandsAndResubscribeAfterBrokerRestart(t *testing.T) {
	brokers(t, testbroker.MochiOptions{}, testbroker.MosquittoOptions{}, nil, func(t *testing.T, b broker) {
		o := start(t, fmt.Sprintf("servers = [%q]\nmax_reconnect_interval = \"100ms\"\n", b.url))
		got := make(chan sdk.Command, 100)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- o.Commands(ctx, func(c sdk.Command) { got <- c }) }()
		t.Cleanup(func() { cancel(); <-done })
		waitHealth(t, o, 10*time.Second, "connected", connected)
		untilCommand(t, b.url, got)

		server := testbroker.NewPublisher(t, b.url, testbroker.ClientOptions{})
		send := func(topic, payload string) { server.Publish(t, topic, []byte(payload), false) }
		send(base+"/data/write", `{"id":"req-1","points":{"plc1.setpoint":75.5}}`)
		send(base+"/system/reply", `{"ignored":true}`)
		send(base+"/alarm/ack", `{"id":"a-1","rule":"boiler_overheat"}`)
		send(base+"/data/write/reply", `{"ignored":true}`)
		send(base+"/system/Reboot", `{}`)
		send(base+"/system/Pause", `{"id":"s-2","output":"second"}`)
		want := []sdk.Command{
			{Kind: sdk.CommandWrite, ID: "req-1", ReplyTopic: base + "/data/write/reply",
				Points: []sdk.PointWrite{{Name: "plc1.setpoint", Value: []byte("75.5")}}},
			{Kind: sdk.CommandAck, ID: "a-1", ReplyTopic: base + "/alarm/ack/reply", Rule: "boiler_overheat"},
			{Kind: sdk.CommandSystem, ReplyTopic: base + "/system/reply", System: sdk.SystemReboot, Name: "Reboot"},
			{Kind: sdk.CommandSystem, ID: "s-2", ReplyTopic: base + "/system/reply", System: sdk.SystemPause, Name: "Pause", Output: "second"},
		}
		for i, w := range want {
			select {
			case c := <-got:
				if !reflect.DeepEqual(c, w) {
					t.Fatalf("command %d: got %+v, want %+v", i, c, w)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("command %d (%s) never arrived", i, w.Kind)
			}
		}
		select {
		case c := <-got:
			t.Fatalf("unexpected extra command %+v (replies must be ignored)", c)
		case <-time.After(300 * time.Millisecond):
		}

		b.stop()
		waitHealth(t, o, 10*time.Second, "disconnected", func(h sdk.Health) bool { return !h.OK })
		b.restart()
		waitHealth(t, o, 15*time.Second, "reconnected", func(h sdk.Health) bool { return h.OK && h.Counters["reconnects"] >= 1 })
		untilCommand(t, b.url, got)
	})
}

func TestBrokerRestartNothingLost(t *testing.T) {
	brokers(t, testbroker.MochiOptions{}, testbroker.MosquittoOptions{}, nil, func(t *testing.T, b broker) {
		sub := b.subscribe(base + "/data")
		o := start(t, fmt.Sprintf("servers = [%q]\nmax_reconnect_interval = \"100ms\"\n", b.url))
		waitHealth(t, o, 10*time.Second, "connected", connected)
		all := messages(300, base+"/data")
		publish(t, o, all[:100])
		sub.WaitCount(t, 100, 10*time.Second)
		b.stop()
		waitHealth(t, o, 10*time.Second, "disconnected", func(h sdk.Health) bool { return !h.OK })
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		err := o.Publish(ctx, all[100:200])
		cancel()
		if err == nil {
			t.Fatal("Publish with the broker down must fail so the core keeps the batch")
		}
		b.restart()
		// Publish waits for the reconnection rather than failing.
		publish(t, o, all[100:200])
		publish(t, o, all[200:])
		// The subscriber may see a message twice (QoS 1 to it across the
		// restart); every message must arrive, first arrivals in order.
		got := sub.Wait(t, 15*time.Second, "300 distinct messages", func(m []testbroker.Received) bool { return len(distinctInOrder(m)) >= 300 })
		checkInOrder(t, distinctInOrder(got), all)
	})
}

// TestThroughGRPC runs the output as an isolated plugin would: Init,
// Publish, Health and Commands over the real gRPC adapters.
func TestThroughGRPC(t *testing.T) {
	m := testbroker.StartMochi(t, testbroker.MochiOptions{})
	sdktest.Run(t, func() sdk.Plugin { return mqtt.New() }, func(t *testing.T, p sdk.Plugin) {
		sub := m.Subscribe(base + "/data")
		sdktest.Init(t, p, fmt.Sprintf("servers = [%q]\nmax_reconnect_interval = \"100ms\"\n", m.URL()))
		if caps := sdk.CapsOf(p); !caps.Commands || !caps.Health {
			t.Fatalf("caps: %+v", caps)
		}
		waitHealth(t, p, 10*time.Second, "connected", connected)
		msgs := messages(500, base+"/data")
		publish(t, p, msgs)
		checkInOrder(t, sub.WaitCount(t, 500, 10*time.Second), msgs)
		got := make(chan sdk.Command, 100)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = p.(sdk.CommandSource).Commands(ctx, func(c sdk.Command) { got <- c }); close(done) }()
		untilCommand(t, m.URL(), got)
		cancel()
		<-done
		_ = p.Close(context.Background())
	})
}

// A command that finds the intake full is answered busy by the output
// itself, and so is one that arrives while nobody receives commands.
func TestFullIntakeAnswersBusy(t *testing.T) {
	const intake = 1024 // the output's intakeSlots
	m := testbroker.StartMochi(t, testbroker.MochiOptions{})
	replies := m.Subscribe(base + "/data/write/reply")
	o := start(t, fmt.Sprintf("servers = [%q]\n", m.URL()))
	release := make(chan struct{})
	taken := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	// The core takes the first command and then hangs on it.
	go func() {
		done <- o.Commands(ctx, func(c sdk.Command) {
			select {
			case taken <- c.ID:
			default:
			}
			<-release
		})
	}()
	waitHealth(t, o, 10*time.Second, "connected", connected)
	waitFor(t, "the command subscription", func() bool {
		return len(m.Server().Topics.Subscribers(base+"/data/write").Subscriptions) > 0
	})
	pub := testbroker.NewPublisher(t, m.URL(), testbroker.ClientOptions{})
	pub.Publish(t, base+"/data/write", []byte(`{"id":"first","points":{"a.b":1}}`), false)
	if id := <-taken; id != "first" {
		t.Fatalf("first command taken: %q", id)
	}
	const extra = 40
	for i := 0; i < intake+extra; i++ {
		pub.Publish(t, base+"/data/write", fmt.Appendf(nil, `{"id":"w-%d","points":{"a.b":1}}`, i), false)
	}
	got := replies.Wait(t, 20*time.Second, "the busy replies", func(r []testbroker.Received) bool { return len(r) >= extra })
	for i, r := range got[:extra] {
		want := fmt.Sprintf(`{"id":"w-%d",`, intake+i)
		if !strings.HasPrefix(string(r.Payload), want) || !strings.Contains(string(r.Payload), `"ok":false,"error":"busy: `) {
			t.Fatalf("busy reply %d: %s, want it to start %s", i, r.Payload, want)
		}
	}
	// The receiver goes (a reload): what the intake held is answered.
	cancel()
	close(release)
	<-done
	// Nobody receives now: a command is answered busy at once.
	pub.Publish(t, base+"/data/write", []byte(`{"id":"late","points":{"a.b":1}}`), false)
	total := extra + intake + 1
	got = replies.Wait(t, 20*time.Second, "every busy reply", func(r []testbroker.Received) bool { return len(r) >= total })
	ids := map[string]bool{}
	for _, r := range got {
		var rep struct{ ID, Error string }
		if err := json.Unmarshal(r.Payload, &rep); err != nil || !strings.HasPrefix(rep.Error, "busy: ") || ids[rep.ID] {
			t.Fatalf("reply %s: %v", r.Payload, err)
		}
		ids[rep.ID] = true
	}
	if !ids["late"] || !ids["w-0"] || ids["first"] || len(ids) != total {
		t.Fatalf("%d busy replies; late %v, w-0 %v, first %v", len(ids), ids["late"], ids["w-0"], ids["first"])
	}
	if h, _ := o.Health(context.Background()); h.Counters["commands_busy"] != uint64(total) {
		t.Fatalf("commands_busy %d, want %d", h.Counters["commands_busy"], total)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReconnectKeepsCoreStatus: the core's fuller retained status (SPEC 9:
// configuration hash, health) is what a reconnect publishes again, not the
// bare online status.
func TestReconnectKeepsCoreStatus(t *testing.T) {
	m := testbroker.StartMochi(t, testbroker.MochiOptions{})
	sub := m.Subscribe(statusTop)
	o := start(t, fmt.Sprintf("servers = [%q]\nmax_reconnect_interval = \"200ms\"\n", m.URL()))
	waitHealth(t, o, 10*time.Second, "connected", connected)
	full := `{"status":"online","ts":1,"version":"v","config":"sha256:ab","uptime_s":1,"plugins":{"ok":1,"failed":0},"config_state":"confirmed"}`
	publish(t, o, []sdk.Message{{Topic: statusTop, Payload: []byte(full), QoS: 1, Retain: true}})
	m.Stop()
	waitHealth(t, o, 10*time.Second, "disconnected", func(h sdk.Health) bool { return !h.OK })
	m.Restart()
	waitHealth(t, o, 20*time.Second, "reconnected", connected)
	sub.Wait(t, 20*time.Second, "the core's status published again on reconnect", func(got []testbroker.Received) bool {
		n := 0
		for _, r := range got {
			if string(r.Payload) == full {
				n++
			}
		}
		return n >= 2
	})
}

// TestCustomStatusTopicCarriesCoreStatus: with status_topic set, the
// core's retained status (addressed to the default P ID/status) goes to
// the custom topic, is republished there on reconnect, and nothing is
// left on the default topic.
func TestCustomStatusTopicCarriesCoreStatus(t *testing.T) {
	m := testbroker.StartMochi(t, testbroker.MochiOptions{})
	const custom = "site7/gateways/gw1/state"
	sub := m.Subscribe(custom)
	dflt := m.Subscribe(statusTop)
	o := start(t, fmt.Sprintf("servers = [%q]\nstatus_topic = %q\nmax_reconnect_interval = \"200ms\"\n", m.URL(), custom))
	waitHealth(t, o, 10*time.Second, "connected", connected)
	full := `{"status":"online","ts":1,"version":"v","config":"sha256:ab","uptime_s":1,"plugins":{"ok":1,"failed":0},"config_state":"confirmed"}`
	publish(t, o, []sdk.Message{{Topic: statusTop, Payload: []byte(full), QoS: 1, Retain: true}})
	count := func(got []testbroker.Received) int {
		n := 0
		for _, r := range got {
			if string(r.Payload) == full {
				n++
			}
		}
		return n
	}
	sub.Wait(t, 20*time.Second, "the core's status on the custom status_topic", func(got []testbroker.Received) bool { return count(got) >= 1 })
	if p, ok := m.Retained(custom); !ok || string(p) != full {
		t.Fatalf("retained on %s: %q", custom, p)
	}
	m.Stop()
	waitHealth(t, o, 10*time.Second, "disconnected", func(h sdk.Health) bool { return !h.OK })
	m.Restart()
	waitHealth(t, o, 20*time.Second, "reconnected", connected)
	sub.Wait(t, 20*time.Second, "the core's status republished on the custom topic", func(got []testbroker.Received) bool { return count(got) >= 2 })
	if n := dflt.Len(); n != 0 {
		t.Fatalf("%d messages on the default status topic %s with a custom status_topic: %+v", n, statusTop, dflt.Messages())
	}
	if _, ok := m.Retained(statusTop); ok {
		t.Fatalf("a retained status left on the default topic %s", statusTop)
	}
}

// TestOnlineSaysTheGatewaysVersion: the output's own online message (at
// connect, before the core's status) carries the version the core gives
// it (sdk.AgentInfo.Version), also across the gRPC adapters, so that a
// released gateway does not announce itself as "dev" first.
func TestOnlineSaysTheGatewaysVersion(t *testing.T) {
	m := testbroker.StartMochi(t, testbroker.MochiOptions{})
	sdktest.Run(t, func() sdk.Plugin { return mqtt.New() }, func(t *testing.T, p sdk.Plugin) {
		sub := m.Subscribe(statusTop)
		req := sdktest.Request(fmt.Sprintf("servers = [%q]\n", m.URL()))
		req.Agent.Version = "9.9.9 (commit abc1234)"
		if _, err := p.Init(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		waitHealth(t, p, 20*time.Second, "connected", connected)
		sub.Wait(t, 20*time.Second, "the online status with the gateway's version", func(got []testbroker.Received) bool {
			for _, r := range got {
				if strings.Contains(string(r.Payload), `"status":"online"`) {
					if !strings.Contains(string(r.Payload), `"version":"9.9.9 (commit abc1234)"`) {
						t.Fatalf("online status: %s", r.Payload)
					}
					return true
				}
			}
			return false
		})
	})
}
