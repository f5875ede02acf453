package main

import (
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/core/reload"
	"github.com/edgepipe/edgepipe/plugins/sdk/fbox"
)

// fleetPasswordEnv holds the broker password of `edgepipe fleet`: never
// on the command line, where ps shows it.
const fleetPasswordEnv = "EDGEPIPE_FLEET_PASSWORD"

func init() {
	register(command{name: "fleet", summary: "push a configuration to many gateways over MQTT and report who applied it",
		usage: `Usage: edgepipe fleet --broker URL [--devices ID,ID... | --discover 5s] [options] CONFIG.toml

The server's side of remote configuration (SPEC 9) for a fleet: sends
CONFIG.toml as a set to P ID/system/config/set of every gateway (listed by
--devices, or discovered from the retained P +/status of those online), waits
for each reply on P ID/system/config/reply and prints, per gateway:

  applied      the gateway runs it (with --confirm: answered from the new
               configuration and confirmed by its hash)
  rejected     refused with every error (check errors, signature, disabled)
  rolled_back  applied on trial, then rolled back by the gateway itself
  degraded     applied, but some of its plugins did not open
  no_answer    nothing within --timeout (offline, or lost with the new
               configuration and not yet rolled back)

The same text goes to every gateway (one hash for the whole fleet): what
differs per box (device_id, data_dir) belongs in its environment as ${VAR}.
With --confirm the gateways keep it on trial and roll back by themselves
unless confirmed in time; fleet confirms each one whose reply reaches it
(also a trial of the gateway's own confirm_default), which proves that
gateway still reaches the broker. With --sign-key the set
is signed (ed25519, PKCS#8 PEM as from 'openssl genpkey -algorithm ed25519',
or the base64 of the 32-byte seed) for gateways with [agent.remote]
public_keys. The broker password is read from $` + fleetPasswordEnv + `.

Exit status: 0 when every gateway applied it, 1 otherwise, 2 on a usage error.`,
		flags: func() *flag.FlagSet { return fleetFlags(new(fleetOptions)) }, run: runFleet})
}

type fleetOptions struct {
	broker, username, prefix, devices string
	statusTopic                       string
	ca, clientCert, clientKey         string
	signKey                           string
	discover, confirm, timeout        time.Duration
	json                              bool
}

func fleetFlags(o *fleetOptions) *flag.FlagSet {
	fs := newFlags("fleet")
	fs.StringVar(&o.broker, "broker", "", "the broker, tcp://host:1883, ssl://host:8883 or ws(s)://host/mqtt (required)")
	fs.StringVar(&o.username, "username", "", "broker user name (the password from $"+fleetPasswordEnv+")")
	fs.StringVar(&o.ca, "ca", "", "PEM file of the CA that signed the broker's certificate (default: the system's)")
	fs.StringVar(&o.clientCert, "client-cert", "", "PEM client certificate, for a broker that asks for one")
	fs.StringVar(&o.clientKey, "client-key", "", "PEM key of --client-cert")
	fs.StringVar(&o.prefix, "prefix", config.DefaultTopicPrefix, "the gateways' agent.topic_prefix")
	fs.StringVar(&o.devices, "devices", "", "gateway IDs, comma separated (default: those online, from the retained status)")
	fs.DurationVar(&o.discover, "discover", 5*time.Second, "how long to collect retained statuses when --devices is not given")
	fs.StringVar(&o.statusTopic, "status-topic", "", "topic filter of the retained statuses to discover from (default: PREFIX+/status; for gateways with a custom status_topic, e.g. site/+/state)")
	fs.StringVar(&o.signKey, "sign-key", "", "ed25519 private key file: sign the configuration")
	fs.DurationVar(&o.confirm, "confirm", 0, "keep it on trial this long on each gateway, confirmed once its reply arrives (0: final at once)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "how long to wait for the replies (with --confirm, for a rollback: this plus --confirm)")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON")
	return fs
}

// fleetResult is one gateway's line of the report.
type fleetResult struct {
	Device string   `json:"device"`
	Result string   `json:"result"` // applied | rejected | rolled_back | degraded | no_answer
	State  string   `json:"config_state,omitempty"`
	Hash   string   `json:"hash,omitempty"`
	Error  string   `json:"error,omitempty"`
	Errors []string `json:"errors,omitempty"`
	// Warnings are what check warns about in the text, from the set's reply.
	Warnings []string `json:"warnings,omitempty"`
	// Seconds from sending the set to the final answer.
	Seconds float64 `json:"seconds,omitempty"`

	setID, confirmID string
	done             bool
}

func runFleet(argv []string, stdout, stderr io.Writer) int {
	var o fleetOptions
	fs := fleetFlags(&o)
	if !parseFlags(fs, argv, 1, stderr) {
		return exitUsage
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "edgepipe fleet: "+format+"\n", a...)
		return code
	}
	switch {
	case o.broker == "":
		return fail(exitUsage, "--broker is required (tcp://host:1883)")
	case fs.Arg(0) == "":
		return fail(exitUsage, "name the configuration file to push")
	case o.confirm < 0 || o.timeout <= 0 || o.discover <= 0:
		return fail(exitUsage, "--confirm, --timeout and --discover must be positive")
	case !strings.HasSuffix(o.prefix, "/"):
		return fail(exitUsage, "--prefix must end with \"/\"")
	}
	path := fs.Arg(0)
	text, err := os.ReadFile(path)
	if err != nil {
		return fail(exitError, "%v", err)
	}
	var key ed25519.PrivateKey
	if o.signKey != "" {
		if key, err = readSignKey(o.signKey); err != nil {
			return fail(exitError, "--sign-key %s: %v", o.signKey, err)
		}
	}
	opts := paho.NewClientOptions().AddBroker(o.broker).
		SetClientID(fmt.Sprintf("edgepipe-fleet-%d-%d", os.Getpid(), time.Now().UnixNano())).
		SetUsername(o.username).SetPassword(os.Getenv(fleetPasswordEnv)).
		SetCleanSession(true).SetAutoReconnect(true).SetProtocolVersion(4).
		SetConnectTimeout(10 * time.Second).SetOrderMatters(false)
	if o.ca != "" || o.clientCert != "" {
		tc, err := fleetTLS(o)
		if err != nil {
			return fail(exitError, "%v", err)
		}
		opts.SetTLSConfig(tc)
	}
	type msg struct{ topic, payload string }
	in := make(chan msg, 4096)
	handler := func(_ paho.Client, m paho.Message) {
		in <- msg{m.Topic(), string(m.Payload())}
	}
	// The replies' subscription is made on every connect (the session is
	// clean: a reconnect after a broker restart would have none), and
	// before anything is sent.
	subscribed := make(chan error, 1)
	opts.SetOnConnectHandler(func(c paho.Client) {
		tok := c.Subscribe(fbox.ConfigReplyFilter(o.prefix), 1, handler)
		if !tok.WaitTimeout(15 * time.Second) {
			return
		}
		select {
		case subscribed <- tok.Error():
		default:
		}
	})
	cl := paho.NewClient(opts)
	if tok := cl.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		return fail(exitError, "connecting to %s: %v", o.broker, tokenErr(tok))
	}
	defer cl.Disconnect(250)
	select {
	case err := <-subscribed:
		if err != nil {
			return fail(exitError, "subscribing to the replies: %v", err)
		}
	case <-time.After(20 * time.Second):
		return fail(exitError, "subscribing to the replies: timed out")
	}

	ids := splitList(o.devices)
	if len(ids) == 0 {
		statuses := make(chan msg, 65536)
		filter := o.statusTopic
		if filter == "" {
			filter = fbox.StatusFilter(o.prefix)
		}
		if tok := cl.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
			if m.Retained() {
				statuses <- msg{m.Topic(), string(m.Payload())}
			}
		}); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
			return fail(exitError, "subscribing to %s: %v", filter, tokenErr(tok))
		}
		online := map[string]bool{}
		unnamed := 0 // offline wills on a custom status topic
		end := time.After(o.discover)
	collect:
		for {
			select {
			case m := <-statuses:
				// The gateway names itself in its status; an older one,
				// or its offline will, only through the default topic.
				s, err := fbox.ParseStatus([]byte(m.payload))
				id, ok := s.DeviceID, s.DeviceID != ""
				if !ok {
					id, ok = fbox.DeviceOf(o.prefix, m.topic, "/status")
				}
				switch {
				case err != nil:
				case ok:
					online[id] = s.Online
				case !s.Online:
					unnamed++
				}
			case <-end:
				break collect
			}
		}
		cl.Unsubscribe(filter).WaitTimeout(5 * time.Second)
		off := unnamed
		for id, up := range online {
			if up {
				ids = append(ids, id)
			} else {
				off++
			}
		}
		sort.Strings(ids)
		fmt.Fprintf(stderr, "edgepipe fleet: %d gateways online on %s (%d offline, left out)\n", len(ids), filter, off)
		if len(ids) == 0 {
			return fail(exitError, "no gateway online on %s; name them with --devices (or give their custom status_topic as --status-topic)", filter)
		}
	}

	hash := reload.Hash(text)
	req := fbox.ConfigRequest{Op: fbox.ConfigSet, Config: string(text), Confirm: o.confirm, HasConfirm: o.confirm > 0}
	if key != nil {
		req.Signature = ed25519.Sign(key, text)
	}
	results := make([]*fleetResult, 0, len(ids))
	byDevice := map[string]*fleetResult{}
	run := fmt.Sprintf("fleet-%d", time.Now().UnixNano())
	start := time.Now()
	for i, id := range ids {
		if id == "" || strings.ContainsAny(id, "/+#") {
			return fail(exitUsage, "%q is not a gateway ID (a topic level without / + #)", id)
		}
		if byDevice[id] != nil {
			continue
		}
		res := &fleetResult{Device: id, Result: "no_answer", setID: fmt.Sprintf("%s-%d", run, i)}
		results, byDevice[id] = append(results, res), res
		req.ID = res.setID
		m := fbox.NewTopics(o.prefix, id).ConfigCommand(req)
		if tok := cl.Publish(m.Topic, m.QoS, false, m.Payload); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
			return fail(exitError, "publishing to %s: %v", m.Topic, tokenErr(tok))
		}
	}
	pending := len(results)
	deadline := time.NewTimer(o.timeout + o.confirm)
	defer deadline.Stop()
	finish := func(r *fleetResult, result string) {
		if !r.done {
			r.done, r.Result, r.Seconds = true, result, time.Since(start).Seconds()
			pending--
		}
	}
wait:
	for pending > 0 {
		var m msg
		select {
		case m = <-in:
		case <-deadline.C:
			break wait
		}
		id, ok := fbox.DeviceOf(o.prefix, m.topic, "/system/config/reply")
		r := byDevice[id]
		if !ok || r == nil || r.done {
			continue
		}
		rid, a, err := fbox.ParseConfigAnswer([]byte(m.payload))
		if err != nil || (rid != r.setID && rid != r.confirmID) {
			continue
		}
		r.Error, r.Errors = a.Error, a.Errors
		if len(a.Warnings) > 0 {
			r.Warnings = a.Warnings
		}
		if a.Hash != "" {
			r.Hash = a.Hash
		}
		if a.State != "" {
			r.State = a.State
		}
		switch {
		case a.RolledBack:
			finish(r, "rolled_back")
		case rid == r.confirmID && a.Error == "":
			finish(r, "applied")
		case rid == r.confirmID:
			// Not on trial any more: rolled back meanwhile, its
			// announcement is on the way.
		case a.Error != "" && a.Hash != "" && a.State != "":
			finish(r, "degraded")
		case a.Error != "":
			finish(r, "rejected")
		case a.State == "trial":
			// The reply came from the new configuration: the gateway
			// reaches the broker with it. Confirm by its hash (also a
			// trial the gateway's confirm_default asked for).
			r.confirmID = r.setID + "-confirm"
			c := fbox.NewTopics(o.prefix, id).ConfigCommand(fbox.ConfigRequest{Op: fbox.ConfigConfirm, ID: r.confirmID, Hash: a.Hash})
			if tok := cl.Publish(c.Topic, c.QoS, false, c.Payload); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
				r.Error = "confirm not sent: " + tokenErr(tok).Error()
			}
		default:
			finish(r, "applied")
		}
	}
	for _, r := range results {
		if !r.done && r.Result == "no_answer" && r.Error == "" {
			r.Error = fmt.Sprintf("no answer within %v", o.timeout+o.confirm)
		}
	}
	counts := map[string]int{}
	for _, r := range results {
		counts[r.Result]++
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(struct {
			Config   string         `json:"config"`
			Counts   map[string]int `json:"counts"`
			Gateways []*fleetResult `json:"gateways"`
		}{hash, counts, results})
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "GATEWAY\tRESULT\tSTATE\tSECONDS\tDETAIL")
		for _, r := range results {
			detail := r.Error
			if len(r.Errors) > 0 {
				detail += ": " + strings.Join(r.Errors, "; ")
			}
			if len(r.Warnings) > 0 {
				detail = strings.TrimPrefix(detail+"; "+strings.Join(r.Warnings, "; "), "; ")
			}
			secs := "-"
			if r.done {
				secs = fmt.Sprintf("%.1f", r.Seconds)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Device, r.Result, orDash(r.State), secs, orDash(detail))
		}
		_ = tw.Flush()
		fmt.Fprintf(stdout, "\n%s to %d gateways: %d applied, %d rejected, %d rolled back, %d degraded, %d no answer\n",
			hash, len(results), counts["applied"], counts["rejected"], counts["rolled_back"], counts["degraded"], counts["no_answer"])
	}
	if counts["applied"] != len(results) {
		return exitError
	}
	return exitOK
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func tokenErr(tok paho.Token) error {
	if err := tok.Error(); err != nil {
		return err
	}
	return fmt.Errorf("timed out")
}

// readSignKey reads an ed25519 private key: PKCS#8 PEM (openssl genpkey
// -algorithm ed25519), or the base64 of the 32-byte seed or the 64-byte
// private key.
func readSignKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if blk, _ := pem.Decode(b); blk != nil {
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, err
		}
		if ek, ok := k.(ed25519.PrivateKey); ok {
			return ek, nil
		}
		return nil, fmt.Errorf("not an ed25519 key (%T)", k)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	switch {
	case err != nil:
		return nil, fmt.Errorf("neither PEM nor base64")
	case len(raw) == ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(raw), nil
	case len(raw) == ed25519.PrivateKeySize:
		return ed25519.PrivateKey(raw), nil
	}
	return nil, fmt.Errorf("base64 of %d bytes; want a 32-byte seed or a 64-byte key", len(raw))
}

func fleetTLS(o fleetOptions) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.ca != "" {
		pemBytes, err := os.ReadFile(o.ca)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("--ca %s: no PEM certificate", o.ca)
		}
	}
	if o.clientCert != "" {
		c, err := tls.LoadX509KeyPair(o.clientCert, o.clientKey)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return tc, nil
}
