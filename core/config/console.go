package config

import (
	"encoding/hex"
	"fmt"
	"net"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/tomlscan"
)

// Console is [agent.console]: who may use the local console and API
// served on agent.http_listen (SPEC 8). It sits beside Agent rather than
// in it so that Agent stays comparable (a reload compares it).
type Console struct {
	Enabled  *bool  `toml:"enabled"` // default true
	Username string `toml:"username"`
	// PasswordHash is a bcrypt hash (`edgepipe passwd` prints one).
	// Without it the console answers on loopback only.
	PasswordHash string         `toml:"password_hash"`
	TLSCert      string         `toml:"tls_cert"`
	TLSKey       string         `toml:"tls_key"`
	Tokens       []ConsoleToken `toml:"tokens"`
}

// ConsoleToken is one [[agent.console.tokens]]: a bearer token for
// scripts, stored as the SHA-256 of the token, never the token itself.
type ConsoleToken struct {
	Name   string `toml:"name"`
	SHA256 string `toml:"sha256"`
	Access string `toml:"access"` // read | write
}

// On reports whether the console and API are served.
func (c Console) On() bool { return c.Enabled == nil || *c.Enabled }

// agentTable is what the [agent] table decodes into: its own keys and the
// console's sub-table.
type agentTable struct {
	Agent
	Console Console `toml:"console"`
}

// validate checks the console's keys and refuses a console reachable from
// the network without a password.
func (c *Console) validate(file string, ix *tomlscan.Index, listen string) sdk.ConfigErrors {
	var errs sdk.ConfigErrors
	at := func(key string, line int, format string, args ...any) {
		if line == 0 {
			line = ix.Line("agent." + key)
		}
		errs = append(errs, sdk.ConfigError{File: file, Line: line, Path: "agent." + key, Msg: fmt.Sprintf(format, args...)})
	}
	if c.Username == "" {
		c.Username = "admin"
	}
	if c.PasswordHash != "" {
		if _, err := bcrypt.Cost([]byte(c.PasswordHash)); err != nil {
			// The hash is not quoted: it is as good as a password to a cracker.
			at("console.password_hash", 0, "is not a bcrypt hash (run `edgepipe passwd` to make one)")
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		at("console.tls_cert", 0, "tls_cert and tls_key go together")
	}
	seen := map[string]bool{}
	tokLines := ix.BareLines("agent.console.tokens.sha256")
	for i := range c.Tokens {
		t := &c.Tokens[i]
		line := 0
		if i < len(tokLines) {
			line = tokLines[i]
		}
		key := fmt.Sprintf("console.tokens[%d]", i)
		if t.Name == "" {
			at(key+".name", line, "every token needs a name (for the log)")
		} else if seen[t.Name] {
			at(key+".name", line, "token name %q is used twice", t.Name)
		}
		seen[t.Name] = true
		t.SHA256 = strings.ToLower(t.SHA256)
		if b, err := hex.DecodeString(t.SHA256); err != nil || len(b) != 32 {
			at(key+".sha256", line, "want the SHA-256 of the token as 64 hex digits (printf %%s TOKEN | sha256sum)")
		}
		switch t.Access {
		case "":
			t.Access = "read"
		case "read", "write":
		default:
			at(key+".access", line, "want read or write, got %q", t.Access)
		}
	}
	if c.On() && c.PasswordHash == "" && listen != "" && !LoopbackListen(listen) {
		at("http_listen", 0, "%q is reachable from the network, but [agent.console] has no password_hash: set one (`edgepipe passwd` prints it), listen on 127.0.0.1, or set [agent.console] enabled = false to serve /metrics and /healthz alone", listen)
	}
	return errs
}

// LoopbackListen reports whether a listen address takes connections from
// this host only: an explicit loopback address or "localhost". An empty
// host (":9273") or a wildcard listens on every interface.
func LoopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
