// Package config loads an edgepipe TOML file: it substitutes environment
// variables, checks the file's syntax, decodes [agent], and cuts every
// plugin's table out as text with the line it starts on. Plugins decode
// their own tables (in the core's process or in their own), so this
// package knows only the keys common to all plugins.
//
// Every mistake found is reported, each as FILE:LINE: message, rather than
// stopping at the first.
package config

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/BurntSushi/toml"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/tomlscan"
)

// DefaultTopicPrefix is FBox's default topic prefix.
const DefaultTopicPrefix = "Topic/flexem/fbox/"

// Agent is the [agent] table.
type Agent struct {
	DeviceID    string `toml:"device_id"`
	TopicPrefix string `toml:"topic_prefix"`
	DataDir     string `toml:"data_dir"`
	LogLevel    string `toml:"log_level"`
	LogFormat   string `toml:"log_format"` // text | json
	HTTPListen  string `toml:"http_listen"`
	// MaxCommandSize bounds a command from the server (SPEC 5); larger
	// ones are refused unparsed.
	MaxCommandSize sdk.Size `toml:"max_command_size"`
	// Remote is [agent.remote]: configuration from the server (SPEC 9).
	Remote Remote `toml:"remote"`
}

// Remote is [agent.remote]: whether the server may read and set this
// gateway's configuration over MQTT, which keys must sign it, and how
// long an unconfirmed set stays on trial by default.
type Remote struct {
	Enabled bool `toml:"enabled"`
	// PublicKeys are base64 raw 32-byte ed25519 keys; when set, a pushed
	// configuration must carry a signature one of them verifies.
	PublicKeys []string `toml:"public_keys"`
	// ConfirmDefault is the trial of a set that names no confirm; 0 makes
	// such a set final at once.
	ConfirmDefault sdk.Duration `toml:"confirm_default"`
}

// Plugin is one plugin table of the file.
type Plugin struct {
	Kind     sdk.PluginKind
	Name     string // "modbus", or "external"
	Alias    string // as configured
	ID       string // unique: the alias, or "inputs.modbus#2"
	Isolated bool   // run in its own process
	// Outputs only: the store-and-forward queue the core keeps for it.
	Buffer      string // disk | memory | none
	BufferLimit int64  // bytes
	Enabled     bool
	// External plugins only.
	Command string
	Args    []string
	SHA256  string
	// text is the plugin's own table (see Text), kept deflated.
	text packed
	File string
	Line int
}

// Text is the plugin's own table (header blanked, common keys blanked,
// sub-table headers made relative); its line 1 is Line of the file. Each
// call returns a new copy.
func (p *Plugin) Text() []byte { return p.text.bytes() }

// SetText replaces the plugin's table (tests that alter a loaded
// configuration).
func (p *Plugin) SetText(b []byte) { p.text = pack(b) }

// FullName is "inputs.modbus".
func (p *Plugin) FullName() string { return string(p.Kind) + "." + p.Name }

// External reports whether the plugin is a third-party executable.
func (p *Plugin) External() bool { return p.Name == "external" }

// Config is a loaded file.
type Config struct {
	File       string
	Agent      Agent
	Inputs     []*Plugin
	Processors []*Plugin
	Outputs    []*Plugin
	// Console is [agent.console] (see Console).
	Console Console
	// Text is the main file as written (before ${VAR} substitution): the
	// running configuration the console shows (see ShowText).
	Text []byte
	// secrets are the values errors must not quote: substituted from the
	// environment or given literally to a secret key (see Redact).
	secrets []secret
	// unset holds the lines naming an unset ${VAR}: other errors there
	// are consequences (an empty value) and are dropped by Collate.
	unset map[int]bool
}

// Collate makes one report of the errors found in the file: those of
// loading and those the plugins found, redacted (see Redact), without the
// errors that follow from an unset ${VAR} on the same line (the variable
// is the mistake), sorted by line.
func (c *Config) Collate(errs ...error) error {
	var all sdk.ConfigErrors
	for _, err := range errs {
		all = append(all, sdk.AsConfigErrors(err)...)
	}
	if c != nil && len(c.unset) > 0 {
		all = slices.DeleteFunc(all, func(e sdk.ConfigError) bool {
			return e.File == c.File && c.unset[e.Line] && !strings.HasPrefix(e.Msg, unsetPrefix)
		})
	}
	all.Sort()
	return c.Redact(all.Err())
}

// unsetPrefix starts the message about an unset ${VAR}.
const unsetPrefix = "environment variable "

// Plugins returns every plugin in pipeline order: inputs, processors,
// outputs.
func (c *Config) Plugins() []*Plugin {
	out := append([]*Plugin{}, c.Inputs...)
	out = append(out, c.Processors...)
	return append(out, c.Outputs...)
}

// Load reads and parses a configuration file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, os.LookupEnv)
}

// envRE matches ${NAME} with an upper-case environment variable name.
// Lower-case ${...} are template placeholders and are left alone; $${X}
// writes a literal ${X}.
var envRE = regexp.MustCompile(`\$?\$\{([A-Z_][A-Z0-9_]*)\}`)

// substituteEnv replaces ${VAR} line by line, so line numbers hold. It
// also returns, by 1-based line, the variables substituted there. An unset
// variable is reported and left as it is written, so that the rest of the
// file can still be checked.
func substituteEnv(file string, data []byte, lookup func(string) (string, bool)) ([]byte, map[int][]string, map[string]string, sdk.ConfigErrors) {
	var errs sdk.ConfigErrors
	substituted := map[int][]string{}
	values := map[string]string{}
	lines := bytes.Split(data, []byte("\n"))
	multi := ""
	for i, line := range lines {
		cut := commentStart(line, &multi)
		if !bytes.Contains(line[:cut], []byte("${")) {
			continue
		}
		code := envRE.ReplaceAllFunc(line[:cut], func(m []byte) []byte {
			if m[0] == '$' && m[1] == '$' {
				return m[1:]
			}
			name := string(m[2 : len(m)-1])
			v, ok := lookup(name)
			if !ok {
				errs = append(errs, sdk.ConfigError{File: file, Line: i + 1, Msg: unsetPrefix + name + " is not set"})
				return m
			}
			substituted[i+1] = append(substituted[i+1], name)
			values[name] = v
			return []byte(escapeTOML(v))
		})
		lines[i] = append(code, line[cut:]...)
	}
	return bytes.Join(lines, []byte("\n")), substituted, values, errs
}

// commentStart returns where a line's comment begins (len(line) if none),
// skipping '#' inside strings; multi carries an open multi-line string
// delimiter from line to line. Comments are not substituted: a commented
// out ${PASSWORD} must not demand the variable.
func commentStart(line []byte, multi *string) int {
	for i := 0; i < len(line); i++ {
		if *multi != "" {
			if bytes.HasPrefix(line[i:], []byte(*multi)) {
				i += len(*multi) - 1
				*multi = ""
			} else if line[i] == '\\' && *multi == `"""` {
				i++
			}
			continue
		}
		switch c := line[i]; c {
		case '#':
			return i
		case '"', '\'':
			if d := strings.Repeat(string(c), 3); bytes.HasPrefix(line[i:], []byte(d)) {
				*multi = d
				i += 2
				continue
			}
			for i++; i < len(line) && line[i] != c; i++ {
				if c == '"' && line[i] == '\\' {
					i++
				}
			}
		}
	}
	return len(line)
}

// escapeTOML keeps a substituted value inside its string: a password with
// a quote or backslash must not end the string or start an escape.
func escapeTOML(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	return r.Replace(v)
}

// Parse parses configuration text; file names it in errors.
func Parse(file string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	return parse(file, data, lookupEnv, parseOptions{whole: true, counts: map[string]int{}})
}

// parseOptions says what part of a configuration a file is (see
// LoadDirectory): the whole of it, the main file of several, or one of
// the files merged after it.
type parseOptions struct {
	whole    bool           // check what only the whole configuration can have (inputs)
	fragment bool           // a --config-directory file: no [agent] there
	counts   map[string]int // plugins seen so far by full name, for unique IDs
}

func parse(file string, data []byte, lookupEnv func(string) (string, bool), o parseOptions) (*Config, error) {
	original := data
	data, substituted, secrets, errs := substituteEnv(file, data, lookupEnv)
	unset := map[int]bool{}
	unsetNames := map[int][]string{}
	for _, e := range errs {
		unset[e.Line] = true
		unsetNames[e.Line] = append(unsetNames[e.Line], strings.TrimSuffix(strings.TrimPrefix(e.Msg, unsetPrefix), " is not set"))
	}
	var syntax map[string]any
	_, err := toml.Decode(string(data), &syntax)
	for blanked := map[int]bool{}; err != nil; {
		// `retries = ${RETRIES}` unset: an empty string in its place keeps
		// the syntax, and the errors it causes on that line are dropped.
		var pe toml.ParseError
		if !errors.As(err, &pe) || !unset[pe.Position.Line] || blanked[pe.Position.Line] {
			break
		}
		blanked[pe.Position.Line] = true
		data = blankUnset(data, pe.Position.Line, unsetNames[pe.Position.Line])
		syntax = nil
		_, err = toml.Decode(string(data), &syntax)
	}
	if err != nil {
		ce := sdk.ConfigError{File: file, Msg: err.Error()}
		var pe toml.ParseError
		if errors.As(err, &pe) {
			ce.Line, ce.Msg = pe.Position.Line, pe.Message
		}
		if names := substituted[ce.Line]; len(names) > 0 {
			// The parser quotes the text it choked on, which here may be
			// (part of) a substituted value: a password.
			ce.Msg = "TOML syntax error in a line with ${" + strings.Join(names, "}, ${") +
				"} substituted (message withheld: it would show the value); a substituted value belongs inside quotes: \"${VAR}\""
		} else if key := secretKeyAt(data, ce.Line, ce.Msg); key != "" {
			ce.Msg = withheldSyntaxError(key)
		}
		if unset[ce.Line] {
			return nil, errs
		}
		errs = append(errs, ce)
		errs.Sort()
		return nil, errs
	}
	cfg := &Config{File: file, Text: original, secrets: collectSecrets(secrets, syntax), unset: unset}
	lines := bytes.Split(data, []byte("\n"))
	ix := tomlscan.Scan(data)

	// Keys before the first header belong to no table.
	for _, l := range ix.BareLinesUnder("") {
		errs = append(errs, sdk.ConfigError{File: file, Line: l.Line, Path: l.Key,
			Msg: "unknown key outside any table; settings go under [agent] or a plugin table"})
	}

	counts := o.counts
	aliases := map[string]int{}
	sawAgent, agentLine := false, 0
	hs := ix.Headers
	for i := 0; i < len(hs); i++ {
		h := hs[i]
		end := len(lines) + 1 // first line after the section
		j := i + 1
		for ; j < len(hs); j++ {
			if !belongsTo(hs[j], h) {
				break
			}
		}
		if j < len(hs) {
			end = hs[j].Line
		}
		switch {
		case h.Parts[0] == "agent" && len(h.Parts) == 1 && !h.Array:
			sawAgent, agentLine = true, h.Line
			text := section(lines, h.Line, end, hs[i+1:j], 1)
			var t agentTable
			if _, err := sdk.DecodeConfig(&sdk.InitRequest{Config: text, File: file, Line: h.Line}, &t); err != nil {
				errs = append(errs, prefixed(sdk.AsConfigErrors(err), "agent")...)
			}
			cfg.Agent, cfg.Console = t.Agent, t.Console
		case len(h.Parts) == 2 && isKind(h.Parts[0]):
			if !h.Array {
				errs = append(errs, sdk.ConfigError{File: file, Line: h.Line,
					Msg: fmt.Sprintf("write [[%s]] (double brackets): a plugin table may appear several times", strings.Join(h.Parts, "."))})
				i = j - 1
				continue
			}
			p, perrs := plugin(file, lines, h, hs[i+1:j], end, counts)
			errs = append(errs, perrs...)
			if p != nil {
				if p.Alias != "" {
					if prev, dup := aliases[p.Alias]; dup {
						errs = append(errs, sdk.ConfigError{File: file, Line: h.Line,
							Msg: fmt.Sprintf("alias %q is already used at line %d", p.Alias, prev)})
					}
					aliases[p.Alias] = h.Line
				}
				switch p.Kind {
				case sdk.KindInput:
					cfg.Inputs = append(cfg.Inputs, p)
				case sdk.KindProcessor:
					cfg.Processors = append(cfg.Processors, p)
				case sdk.KindOutput:
					cfg.Outputs = append(cfg.Outputs, p)
				}
			}
		default:
			errs = append(errs, sdk.ConfigError{File: file, Line: h.Line,
				Msg: fmt.Sprintf("unknown table %q; want [agent], [[inputs.NAME]], [[processors.NAME]] or [[outputs.NAME]]", strings.Join(h.Parts, "."))})
		}
		i = j - 1
	}
	switch {
	case sawAgent && o.fragment:
		errs = append(errs, sdk.ConfigError{File: file, Line: agentLine, Msg: "[agent] belongs in the --config file, not in a --config-directory file"})
	case sawAgent:
		errs = append(errs, cfg.Agent.validate(file, ix)...)
		errs = append(errs, cfg.Console.validate(file, ix, cfg.Agent.HTTPListen)...)
	case !o.fragment:
		errs = append(errs, sdk.ConfigError{File: file, Line: 1, Msg: "missing [agent] table with device_id"})
	}
	if len(cfg.Inputs) == 0 && o.whole {
		errs = append(errs, sdk.ConfigError{File: file, Msg: noInputs})
	}
	return cfg, cfg.Collate(errs)
}

// blankUnset replaces the unset ${VAR}s left on line l with "" (used when
// the line does not parse as written: the variable was not quoted).
func blankUnset(data []byte, l int, names []string) []byte {
	lines := bytes.Split(data, []byte("\n"))
	if l < 1 || l > len(lines) {
		return data
	}
	for _, n := range names {
		lines[l-1] = bytes.ReplaceAll(lines[l-1], []byte("${"+n+"}"), []byte(`""`))
	}
	return bytes.Join(lines, []byte("\n"))
}

func isKind(s string) bool {
	switch sdk.PluginKind(s) {
	case sdk.KindInput, sdk.KindProcessor, sdk.KindOutput:
		return true
	}
	return false
}

// belongsTo reports whether header h is a sub-table of section header s.
func belongsTo(h, s tomlscan.Header) bool {
	if len(h.Parts) <= len(s.Parts) {
		return false
	}
	for k := range s.Parts {
		if h.Parts[k] != s.Parts[k] {
			return false
		}
	}
	return true
}

func prefixed(errs sdk.ConfigErrors, prefix string) sdk.ConfigErrors {
	for i := range errs {
		if errs[i].Path != "" {
			errs[i].Path = prefix + "." + errs[i].Path
		} else {
			errs[i].Path = prefix
		}
	}
	return errs
}

// section returns lines [start, end) of the file as the plugin's text: the
// header blanked and sub-table headers stripped of their first `strip`
// parts, so that line 1 of the text is line start of the file.
func section(lines [][]byte, start, end int, subs []tomlscan.Header, strip int) []byte {
	out := make([][]byte, 0, end-start)
	for l := start; l < end && l-1 < len(lines); l++ {
		out = append(out, lines[l-1])
	}
	out[0] = nil
	for _, s := range subs {
		parts := make([]string, 0, len(s.Parts)-strip)
		for _, p := range s.Parts[strip:] {
			parts = append(parts, tomlscan.QuoteKey(p))
		}
		hdr := "[" + strings.Join(parts, ".") + "]"
		if s.Array {
			hdr = "[" + hdr + "]"
		}
		out[s.Line-start] = []byte(hdr)
	}
	return bytes.Join(out, []byte("\n"))
}

// common holds the keys every plugin table accepts; the core reads them and
// blanks them before the plugin sees its table.
type common struct {
	Alias    string `toml:"alias"`
	Isolated *bool  `toml:"isolated"`
	// external plugins
	Command string   `toml:"command"`
	Args    []string `toml:"args"`
	SHA256  string   `toml:"sha256"`
	// outputs
	Buffer      string   `toml:"buffer"`
	BufferLimit sdk.Size `toml:"buffer_limit"`
	Enabled     *bool    `toml:"enabled"`
}

// DefaultMaxCommandSize is agent.max_command_size's default, 64 KB.
const DefaultMaxCommandSize = 64 << 10

// DefaultBufferLimit bounds an output's queue unless buffer_limit says
// otherwise.
const DefaultBufferLimit = 256 << 20

var commonKeys = []string{"alias", "isolated"}
var outputKeys = []string{"alias", "isolated", "buffer", "buffer_limit", "enabled"}

func plugin(file string, lines [][]byte, h tomlscan.Header, subs []tomlscan.Header, end int, counts map[string]int) (*Plugin, sdk.ConfigErrors) {
	p := &Plugin{Kind: sdk.PluginKind(h.Parts[0]), Name: h.Parts[1], File: file, Line: h.Line}
	counts[p.FullName()]++
	p.ID = fmt.Sprintf("%s#%d", p.FullName(), counts[p.FullName()])
	text := section(lines, h.Line, end, subs, 2)
	var errs sdk.ConfigErrors
	if !p.External() {
		if _, ok := sdk.Lookup(p.FullName()); !ok {
			msg := fmt.Sprintf("unknown plugin %s (see `edgepipe plugins`)", p.FullName())
			var names []string
			for _, r := range sdk.Registered(p.Kind) {
				names = append(names, r.FullName())
			}
			if s := sdk.Suggest(p.FullName(), names); s != "" {
				msg += fmt.Sprintf("; did you mean %s?", s)
			}
			return nil, sdk.ConfigErrors{{File: file, Line: h.Line, Msg: msg}}
		}
	}
	// Decode the common keys leniently: the rest is the plugin's business.
	var c common
	if _, err := toml.Decode(string(text), &c); err != nil {
		errs = append(errs, sdk.ConfigError{File: file, Line: h.Line, Msg: err.Error()})
	}
	p.Alias = c.Alias
	if p.Alias != "" {
		p.ID = p.Alias
	}
	if c.Isolated != nil {
		p.Isolated = *c.Isolated
	}
	ix := tomlscan.Scan(text)
	keys := commonKeys
	if p.Kind == sdk.KindOutput {
		keys = outputKeys
		p.Buffer, p.BufferLimit, p.Enabled = strings.ToLower(c.Buffer), int64(c.BufferLimit), c.Enabled == nil || *c.Enabled
		if p.Buffer == "" {
			p.Buffer = "disk"
		}
		if p.BufferLimit == 0 {
			p.BufferLimit = DefaultBufferLimit
		}
		switch p.Buffer {
		case "disk", "memory", "none":
		default:
			errs = append(errs, sdk.ConfigError{File: file, Line: h.Line + ix.Line("buffer") - 1, Path: p.FullName() + ".buffer",
				Msg: fmt.Sprintf("want disk, memory or none, got %q", c.Buffer)})
		}
	}
	if p.External() {
		keys = slices.Concat(keys, []string{"command", "args", "sha256"})
		p.Isolated = true
		p.Command, p.Args, p.SHA256 = c.Command, c.Args, strings.ToLower(strings.TrimSpace(c.SHA256))
		if p.Command == "" {
			errs = append(errs, sdk.ConfigError{File: file, Line: h.Line, Path: p.FullName(), Msg: "command is required: the path of the plugin executable"})
		}
		if p.SHA256 != "" && !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(p.SHA256) {
			errs = append(errs, sdk.ConfigError{File: file, Line: h.Line + ix.Line("sha256") - 1, Path: p.FullName() + ".sha256", Msg: "want 64 hexadecimal digits"})
		}
		if c.Isolated != nil && !*c.Isolated {
			errs = append(errs, sdk.ConfigError{File: file, Line: h.Line + ix.Line("isolated") - 1, Path: p.FullName() + ".isolated", Msg: "external plugins always run isolated"})
		}
	}
	tl := bytes.Split(text, []byte("\n"))
	for _, k := range keys {
		for _, l := range ix.BareLines(k) {
			tl[l-1] = nil
		}
	}
	if p.External() {
		// The plugin's configuration is the [config] sub-table; anything
		// else in the table is a mistake.
		p.text = pack(externalConfig(tl, ix))
		for _, l := range ix.BareLinesUnder("") {
			if tl[l.Line-1] != nil {
				errs = append(errs, sdk.ConfigError{File: file, Line: h.Line + l.Line - 1, Path: p.FullName() + "." + l.Key,
					Msg: "unknown key; the plugin's own settings go under [" + p.FullName() + ".config]"})
			}
		}
	} else {
		p.text = pack(bytes.Join(tl, []byte("\n")))
	}
	return p, errs
}

// externalConfig keeps only the [config] sub-table (and its sub-tables,
// made relative) of an external plugin's text, blanking everything else.
func externalConfig(tl [][]byte, ix *tomlscan.Index) []byte {
	out := make([][]byte, len(tl))
	in := false
	hi := 0
	for l := 1; l <= len(tl); l++ {
		if hi < len(ix.Headers) && ix.Headers[hi].Line == l {
			h := ix.Headers[hi]
			hi++
			in = h.Parts[0] == "config"
			if in && len(h.Parts) > 1 {
				parts := make([]string, 0, len(h.Parts)-1)
				for _, p := range h.Parts[1:] {
					parts = append(parts, tomlscan.QuoteKey(p))
				}
				hdr := "[" + strings.Join(parts, ".") + "]"
				if h.Array {
					hdr = "[" + hdr + "]"
				}
				out[l-1] = []byte(hdr)
			}
			continue
		}
		if in {
			out[l-1] = tl[l-1]
		}
	}
	return bytes.Join(out, []byte("\n"))
}

func (a *Agent) validate(file string, ix *tomlscan.Index) sdk.ConfigErrors {
	var errs sdk.ConfigErrors
	at := func(key, format string, args ...any) {
		errs = append(errs, sdk.ConfigError{File: file, Line: ix.Line("agent." + key), Path: "agent." + key, Msg: fmt.Sprintf(format, args...)})
	}
	if err := ValidateClientID(a.DeviceID); err != nil {
		at("device_id", "%v", err)
	}
	if a.TopicPrefix == "" && !ixHas(ix, "agent.topic_prefix") {
		a.TopicPrefix = DefaultTopicPrefix
	}
	if !strings.HasSuffix(a.TopicPrefix, "/") {
		at("topic_prefix", "must end with \"/\", got %q", a.TopicPrefix)
	}
	if strings.ContainsAny(a.TopicPrefix, "+#\x00") {
		at("topic_prefix", "must not contain MQTT wildcards + or #")
	}
	if strings.ContainsAny(a.DeviceID, "+#/") {
		at("device_id", "must not contain + # or / since it is part of every topic")
	}
	if a.DataDir == "" {
		a.DataDir = "./data"
	}
	switch strings.ToLower(a.LogLevel) {
	case "":
		a.LogLevel = "info"
	case "debug", "info", "warn", "error":
		a.LogLevel = strings.ToLower(a.LogLevel)
	default:
		at("log_level", "want debug, info, warn or error, got %q", a.LogLevel)
	}
	switch strings.ToLower(a.LogFormat) {
	case "", "text":
		a.LogFormat = "text"
	case "json":
		a.LogFormat = "json"
	default:
		at("log_format", "want text or json, got %q", a.LogFormat)
	}
	if !ixHas(ix, "agent.http_listen") {
		a.HTTPListen = "127.0.0.1:9273"
	}
	switch {
	case a.MaxCommandSize == 0:
		a.MaxCommandSize = DefaultMaxCommandSize
	case a.MaxCommandSize < 1<<10 || a.MaxCommandSize > 64<<20:
		at("max_command_size", "want between 1KB and 64MB, got %d bytes", int64(a.MaxCommandSize))
	}
	for i, k := range a.Remote.PublicKeys {
		if b, err := base64.StdEncoding.DecodeString(k); err != nil || len(b) != ed25519.PublicKeySize {
			at("remote.public_keys", "key %d is not the base64 of a raw 32-byte ed25519 public key", i+1)
		}
	}
	if a.Remote.ConfirmDefault < 0 {
		at("remote.confirm_default", "must not be negative")
	}
	return errs
}

func ixHas(ix *tomlscan.Index, path string) bool { return len(ix.BareLines(path)) > 0 }

// ValidateClientID applies FBox's device ID rule, which is also the MQTT
// ClientID rule edgepipe uses: 1 to 64 characters of valid UTF-8, no NUL.
func ValidateClientID(id string) error {
	n := utf8.RuneCountInString(id)
	switch {
	case id == "":
		return errors.New("is required: 1-64 UTF-8 characters")
	case !utf8.ValidString(id):
		return errors.New("is not valid UTF-8")
	case n > 64:
		return fmt.Errorf("is %d characters long; at most 64 are allowed", n)
	case strings.ContainsRune(id, 0):
		return errors.New("must not contain NUL")
	}
	return nil
}
