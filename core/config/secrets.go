package config

import (
	"cmp"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// A configuration holds secrets two ways: substituted from the environment
// (password = "${MQTT_PASSWORD}") and written into the file. Errors about
// either must not quote them: a plugin that reports `cannot read
// <value>` for a tls_key that is neither PEM nor a file, or the TOML
// parser that quotes what it choked on, would print the key to the
// terminal, the journal and, through the Reboot reply, the MQTT server.

// isSecretKey reports whether a configuration key holds a secret by its
// name (the SDK's package documentation asks plugin authors to follow it): password, passphrase, secret, token, key (and the same as a
// suffix: tls_key, api_token, proxy_password). Third-party plugins get the
// same protection when they follow the naming.
func isSecretKey(name string) bool {
	name = strings.ToLower(name)
	for _, s := range secretWords {
		if name == s || strings.HasSuffix(name, "_"+s) {
			return true
		}
	}
	return false
}

var secretWords = []string{"password", "passwd", "passphrase", "secret", "token", "key", "credentials"}

// secret is one value Redact hides, and what it shows instead.
type secret struct{ value, shown string }

// minSecretLen is the shortest value Redact hides: shorter ones ("1",
// "on") would mangle messages and cannot be a real secret.
const minSecretLen = 4

// collectSecrets lists what Redact hides: the values substituted from the
// environment (shown as their ${VAR}), every value of a secret key in the
// decoded file, and the passwords of URLs (http://user:pw@camera). Longest
// first, so a secret that contains another is hidden whole.
func collectSecrets(env map[string]string, doc map[string]any) []secret {
	seen := map[string]bool{}
	var out []secret
	add := func(v, shown string) {
		if len(v) >= minSecretLen && !seen[v] {
			seen[v] = true
			out = append(out, secret{v, shown})
		}
	}
	for name, v := range env {
		add(v, "${"+name+"}")
	}
	var walk func(key string, v any, inSecret bool)
	walk = func(key string, v any, inSecret bool) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				walk(k, e, inSecret || isSecretKey(k))
			}
		case []map[string]any:
			for _, e := range v {
				walk(key, e, inSecret)
			}
		case []any:
			for _, e := range v {
				walk(key, e, inSecret)
			}
		case string:
			if inSecret {
				add(v, "<"+key+" withheld>")
				return
			}
			if u, err := url.Parse(v); err == nil && u.User != nil {
				if pw, ok := u.User.Password(); ok {
					add(pw, "xxxxx") // as url.URL.Redacted shows it
				}
			}
		default:
			if inSecret && v != nil {
				// A wrong-typed password (password = 12345678) is still
				// the password.
				add(fmt.Sprint(v), "<"+key+" withheld>")
			}
		}
	}
	walk("", doc, false)
	slices.SortStableFunc(out, func(a, b secret) int { return cmp.Compare(len(b.value), len(a.value)) })
	return out
}

// Redact hides every secret of the configuration (see collectSecrets) in
// the messages of err: a plugin that quotes a bad value (`duration
// "hunter2": ...`) must not print a password that was put in the wrong
// key, nor a literal tls_key it could not read.
func (c *Config) Redact(err error) error {
	if err == nil || c == nil || len(c.secrets) == 0 {
		return err
	}
	ces := sdk.AsConfigErrors(err)
	out := make(sdk.ConfigErrors, len(ces))
	for i, e := range ces {
		e.Msg, e.Path = c.redactText(e.Msg), c.redactText(e.Path)
		out[i] = e
	}
	return out
}

func (c *Config) redactText(s string) string {
	for _, sec := range c.secrets {
		s = strings.ReplaceAll(s, sec.value, sec.shown)
	}
	return s
}

// assignRE finds the keys assigned on a line, also in inline tables and
// dotted keys (auth = { password = "x" }, camera.password = "x").
var assignRE = regexp.MustCompile(`([A-Za-z0-9_-]+|"[^"]*"|'[^']*')\s*=`)

// secretKeyAt tells whether a TOML syntax error reported at line n
// (1-based) of doc may quote a secret, and names the key: when the line or
// the one before (the parser reports some errors past the newline) assigns
// a secret key, or when the message shares four characters in a row with
// the value text of any secret key in the file (a multi-line string).
func secretKeyAt(doc []byte, n int, msg string) string {
	lines := strings.Split(string(doc), "\n")
	for l := n - 1; l >= n-2 && l >= 0; l-- {
		if l < len(lines) {
			if k, _ := secretAssignment(lines[l]); k != "" {
				return k
			}
		}
	}
	for _, line := range lines {
		k, value := secretAssignment(line)
		if k == "" {
			continue
		}
		r := []rune(value)
		for i := 0; i+4 <= len(r); i++ {
			if strings.Contains(msg, string(r[i:i+4])) {
				return k
			}
		}
	}
	return ""
}

// secretAssignment finds the first secret key assigned on a line and the
// text after its "=".
func secretAssignment(line string) (key, value string) {
	for _, m := range assignRE.FindAllStringSubmatchIndex(line, -1) {
		if k := strings.Trim(line[m[2]:m[3]], `"'`); isSecretKey(k) {
			return k, strings.TrimSpace(line[m[1]:])
		}
	}
	return "", ""
}

// withheldSyntaxError is the message for a TOML syntax error in the value
// of a secret key: the parser quotes the text it choked on ("expected
// value but found "hunter" instead" for password = hunter2), which is the
// secret itself.
func withheldSyntaxError(key string) string {
	return fmt.Sprintf("TOML syntax error in the value of %s (message withheld: it would show the value); a string goes inside quotes: %s = \"...\"", key, key)
}

// LiteralSecrets names the secret keys whose value is written into the
// text rather than referenced as ${VAR} (and the URLs with a literal
// password): a configuration pushed from the server may hold secrets
// only as references to the box's own environment, so that none travels
// over the broker or is stored with the versions.
func (c *Config) LiteralSecrets() []string {
	var out []string
	for _, s := range c.secrets {
		if !strings.HasPrefix(s.shown, "${") {
			name := strings.TrimSuffix(strings.TrimPrefix(s.shown, "<"), " withheld>")
			if s.shown == "xxxxx" {
				name = "the password of a URL"
			}
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// RedactText hides every secret of the configuration in s (a
// configuration text shown to the server or the console): substituted
// values become their ${VAR}, literal ones a placeholder.
func (c *Config) RedactText(s string) string {
	if c == nil {
		return s
	}
	return c.redactText(s)
}
