package opcua

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// Config is one [[inputs.opcua]] table: one server.
type Config struct {
	Device          string        `toml:"device"`
	Endpoint        string        `toml:"endpoint"`
	SecurityPolicy  string        `toml:"security_policy"`
	SecurityMode    string        `toml:"security_mode"`
	Auth            string        `toml:"auth"`
	Username        string        `toml:"username"`
	Password        string        `toml:"password"`
	Certificate     string        `toml:"certificate"`
	PrivateKey      string        `toml:"private_key"`
	ServerCA        string        `toml:"server_ca"`
	ServerPinSHA256 []string      `toml:"server_pin_sha256"`
	Mode            string        `toml:"mode"`
	Interval        sdk.Duration  `toml:"interval"`
	Timeout         sdk.Duration  `toml:"timeout"`
	MaxBackoff      sdk.Duration  `toml:"max_backoff"`
	Points          []PointConfig `toml:"points"`
}

// PointConfig is one [[inputs.opcua.points]].
type PointConfig struct {
	Name     string     `toml:"name"`
	Node     string     `toml:"node"`
	Type     string     `toml:"type"`
	Deadband float64    `toml:"deadband"`
	Access   sdk.Access `toml:"access"`
	Unit     string     `toml:"unit"`
	Min      *float64   `toml:"min"`
	Max      *float64   `toml:"max"`
}

const (
	defaultInterval   = time.Second
	defaultTimeout    = 5 * time.Second
	defaultMaxBackoff = 30 * time.Second
)

// settings is the checked configuration of the connection.
type settings struct {
	device, endpoint  string
	policy            string // full security policy URI
	policyName        string // as configured ("None", "Basic256Sha256")
	mode              ua.MessageSecurityMode
	auth              string // anonymous | username | certificate
	username          string
	password          string
	certFile, keyFile string
	caFile            string
	roots             *x509.CertPool
	pins              [][]byte
	subscribe         bool
	interval          time.Duration
	timeout           time.Duration
	maxBackoff        time.Duration
}

// needsCert tells whether the client must present a certificate: a
// signed or encrypted channel, or certificate authentication.
func (s *settings) needsCert() bool {
	return s.mode != ua.MessageSecurityModeNone || s.auth == "certificate"
}

// point is a checked point configuration.
type point struct {
	name     string
	node     nodeRef
	typ      string // forced type ("" = the node's own built-in type)
	kind     sdk.Kind
	wtype    string // without typ, a writable point's type as learnt from its node (learnTypes)
	deadband float64
	access   sdk.Access
	unit     string
	min, max *float64
}

var policies = map[string]string{
	"none":                  ua.SecurityPolicyURINone,
	"basic256sha256":        ua.SecurityPolicyURIBasic256Sha256,
	"aes128_sha256_rsaoaep": ua.SecurityPolicyURIAes128Sha256RsaOaep,
	"aes256_sha256_rsapss":  ua.SecurityPolicyURIAes256Sha256RsaPss,
}

// forcedKinds are the Modbus type names a point may force, and the value
// kind each reports.
var forcedKinds = map[string]sdk.Kind{
	"bool": sdk.KindBool, "int16": sdk.KindInt, "uint16": sdk.KindUint, "int32": sdk.KindInt,
	"uint32": sdk.KindUint, "int64": sdk.KindInt, "uint64": sdk.KindUint, "float32": sdk.KindFloat,
	"float64": sdk.KindFloat, "string": sdk.KindString,
}

type badFunc func(path, format string, args ...any)

// check validates the whole table; every problem is reported at its key.
func (cfg *Config) check(src *sdk.ConfigSource, agent sdk.AgentInfo) (*settings, []*point, sdk.ConfigErrors) {
	var errs sdk.ConfigErrors
	bad := func(path, format string, args ...any) { errs = append(errs, src.Errorf(path, format, args...)) }
	s := cfg.checkConnection(agent, bad)
	pts := cfg.checkPoints(s, bad)
	return s, pts, errs
}

func (cfg *Config) checkConnection(agent sdk.AgentInfo, bad badFunc) *settings {
	s := &settings{device: cfg.Device, endpoint: cfg.Endpoint, interval: cfg.Interval.D(), timeout: cfg.Timeout.D(),
		maxBackoff: cfg.MaxBackoff.D(), username: cfg.Username, password: cfg.Password,
		certFile: cfg.Certificate, keyFile: cfg.PrivateKey, caFile: cfg.ServerCA}
	switch {
	case cfg.Device == "":
		bad("device", "is required: its points are named \"<device>.<point>\"")
	case strings.ContainsAny(cfg.Device, ". \t/#+"):
		bad("device", "%q: a device name cannot hold dots, spaces, '/', '#' or '+' (it is part of point names and topics)", cfg.Device)
	}
	switch {
	case cfg.Endpoint == "":
		bad("endpoint", "is required: opc.tcp://HOST:PORT[/PATH]")
	case !strings.HasPrefix(strings.ToLower(cfg.Endpoint), "opc.tcp://") || len(cfg.Endpoint) == len("opc.tcp://"):
		bad("endpoint", "%q: want opc.tcp://HOST:PORT[/PATH]", cfg.Endpoint)
	}
	s.policyName = cfg.SecurityPolicy
	if s.policyName == "" {
		s.policyName = "None"
	}
	if uri, ok := policies[strings.ToLower(s.policyName)]; ok {
		s.policy = uri
	} else {
		bad("security_policy", "%q: want None, Basic256Sha256, Aes128_Sha256_RsaOaep or Aes256_Sha256_RsaPss", cfg.SecurityPolicy)
	}
	switch strings.ToLower(cfg.SecurityMode) {
	case "", "none":
		s.mode = ua.MessageSecurityModeNone
	case "sign":
		s.mode = ua.MessageSecurityModeSign
	case "signandencrypt":
		s.mode = ua.MessageSecurityModeSignAndEncrypt
	default:
		bad("security_mode", "%q: want None, Sign or SignAndEncrypt", cfg.SecurityMode)
	}
	if (s.policy == ua.SecurityPolicyURINone) != (s.mode == ua.MessageSecurityModeNone) && s.policy != "" {
		bad("security_mode", "security_policy %q and security_mode %q do not go together: both None, or a policy with Sign or SignAndEncrypt",
			s.policyName, cfg.SecurityMode)
	}
	s.auth = strings.ToLower(cfg.Auth)
	switch s.auth {
	case "":
		s.auth = "anonymous"
		if cfg.Username != "" {
			s.auth = "username"
		}
	case "anonymous", "username", "certificate":
	default:
		bad("auth", "%q: want anonymous, username or certificate", cfg.Auth)
	}
	if s.auth == "username" && cfg.Username == "" {
		bad("username", "auth = \"username\" needs a username")
	}
	if s.auth != "username" && (cfg.Username != "" || cfg.Password != "") {
		bad("username", "username and password are only used with auth = \"username\"")
	}
	if (cfg.Certificate == "") != (cfg.PrivateKey == "") {
		bad("certificate", "certificate and private_key go together (or leave both empty to have them generated under data_dir)")
	} else if cfg.Certificate != "" {
		if _, _, err := loadKeyPair(cfg.Certificate, cfg.PrivateKey); err != nil {
			bad("certificate", "%v", err)
		}
	} else if s.needsCert() && agent.DataDir == "" {
		bad("certificate", "a client certificate is needed (security_mode %s, auth %s): give certificate and private_key, or set agent.data_dir to have one generated", cfg.SecurityMode, s.auth)
	}
	for i, p := range cfg.ServerPinSHA256 {
		pin, err := parsePin(p)
		if err != nil {
			bad(fmt.Sprintf("server_pin_sha256[%d]", i), "%v", err)
			continue
		}
		s.pins = append(s.pins, pin)
	}
	if cfg.ServerCA != "" {
		pem, err := os.ReadFile(cfg.ServerCA)
		if err != nil {
			bad("server_ca", "%v", err)
		} else {
			s.roots = x509.NewCertPool()
			if !s.roots.AppendCertsFromPEM(pem) {
				bad("server_ca", "%s holds no PEM certificate", cfg.ServerCA)
			}
		}
	}
	if s.mode != ua.MessageSecurityModeNone && s.policy != "" && cfg.ServerCA == "" && len(cfg.ServerPinSHA256) == 0 {
		bad("server_pin_sha256", "security_mode %s needs the server trusted: server_pin_sha256 (the SHA-256 of its public key; a refused server's is logged) or server_ca", cfg.SecurityMode)
	}
	switch strings.ToLower(cfg.Mode) {
	case "", "poll":
	case "subscribe":
		s.subscribe = true
	default:
		bad("mode", "%q: want poll or subscribe", cfg.Mode)
	}
	if s.interval == 0 {
		s.interval = defaultInterval
	} else if s.interval < 10*time.Millisecond {
		bad("interval", "%s: want at least 10ms", s.interval)
	}
	if s.timeout == 0 {
		s.timeout = defaultTimeout
	}
	if s.maxBackoff == 0 {
		s.maxBackoff = defaultMaxBackoff
	}
	return s
}

func (cfg *Config) checkPoints(s *settings, bad badFunc) []*point {
	if len(cfg.Points) == 0 {
		bad("points", "no [[inputs.opcua.points]]: a server needs at least one point")
	}
	names := map[string]int{}
	var pts []*point
	for i, pc := range cfg.Points {
		pp := fmt.Sprintf("points[%d]", i)
		ok := true
		fail := func(key, format string, args ...any) { bad(pp+"."+key, format, args...); ok = false }
		p := &point{name: pc.Name, typ: strings.ToLower(pc.Type), deadband: pc.Deadband, access: pc.Access,
			unit: pc.Unit, min: pc.Min, max: pc.Max}
		switch {
		case pc.Name == "":
			fail("name", "is required")
		case strings.ContainsAny(pc.Name, " \t/#+"):
			fail("name", "%q: a point name cannot hold spaces, '/', '#' or '+'", pc.Name)
		default:
			if prev, dup := names[pc.Name]; dup {
				fail("name", "point %q is already defined as points[%d]", pc.Name, prev)
			}
			names[pc.Name] = i
		}
		if pc.Node == "" {
			fail("node", "is required: a NodeId such as ns=2;s=Line1.Speed, ns=2;i=1001, ns=1;g=GUID, ns=1;b=BASE64 or nsu=URI;s=...")
		} else if ref, err := parseNode(pc.Node); err != nil {
			fail("node", "%v", err)
		} else {
			p.node = ref
		}
		if p.typ != "" {
			k, known := forcedKinds[p.typ]
			if !known {
				fail("type", "unknown type %q: want bool, int16, uint16, int32, uint32, int64, uint64, float32, float64 or string (or leave it empty for the node's own type)", pc.Type)
			}
			p.kind = k
		}
		if pc.Deadband < 0 {
			fail("deadband", "%v: want 0 or more", pc.Deadband)
		} else if pc.Deadband > 0 && !s.subscribe {
			fail("deadband", "deadband is handed to the server in subscribe mode; in poll mode use [[processors.deadband]]")
		}
		if (pc.Min != nil || pc.Max != nil) && !p.access.Subscribes() {
			fail("min", "min and max bound writes: only for points with access sub or pubsub")
		}
		if pc.Min != nil && pc.Max != nil && *pc.Min > *pc.Max {
			fail("min", "min %v is above max %v", *pc.Min, *pc.Max)
		}
		if ok {
			pts = append(pts, p)
		}
	}
	return pts
}

// nodeRef is a parsed NodeId. A NodeId given with its namespace URI
// (nsu=) is resolved against the server's namespace array on connecting.
type nodeRef struct {
	text string
	id   *ua.NodeID // nil until resolved when nsu != ""
	nsu  string
	rest string // the identifier part after "nsu=...;"
}

// parseNode reads a NodeId in any of its string forms: i=, s=, g= and b=
// identifiers, with ns=INDEX, nsu=URI or no namespace (0).
func parseNode(s string) (nodeRef, error) {
	r := nodeRef{text: s}
	if strings.TrimSpace(s) != s {
		return r, fmt.Errorf("%q: a NodeId has no surrounding spaces", s)
	}
	if rest, ok := strings.CutPrefix(s, "nsu="); ok {
		uri, id, ok := strings.Cut(rest, ";")
		if !ok || uri == "" {
			return r, fmt.Errorf("%q: want nsu=URI;i=NUMBER (or s=, g=, b=)", s)
		}
		if _, err := ua.ParseExpandedNodeID("nsu="+uri+";"+id, []string{uri}); err != nil {
			return r, fmt.Errorf("%q: %v", s, err)
		}
		r.nsu, r.rest = uri, id
		return r, nil
	}
	ns, id, hasNS := strings.Cut(s, ";")
	if !hasNS {
		id = ns
	} else if !strings.HasPrefix(ns, "ns=") {
		return r, fmt.Errorf("%q: want ns=INDEX;ID or nsu=URI;ID", s)
	}
	if len(id) < 2 || id[1] != '=' || !strings.ContainsRune("isgb", rune(id[0])) {
		return r, fmt.Errorf("%q: the identifier must be i=NUMBER, s=STRING, g=GUID or b=BASE64", s)
	}
	n, err := ua.ParseNodeID(s)
	if err != nil {
		return r, fmt.Errorf("%q: %v", s, err)
	}
	r.id = n
	return r, nil
}

// resolve returns the NodeId, looking a namespace URI up in the server's
// namespace array.
func (r nodeRef) resolve(namespaces []string) (*ua.NodeID, error) {
	if r.nsu == "" {
		return r.id, nil
	}
	e, err := ua.ParseExpandedNodeID("nsu="+r.nsu+";"+r.rest, namespaces)
	if err != nil {
		return nil, err
	}
	return ua.NewNodeIDFromExpandedNodeID(e), nil
}

// parsePin accepts a SHA-256 digest as hex (colons allowed) or base64, as
// outputs.mqtt's tls_pin_sha256 does.
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
