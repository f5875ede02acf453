package camera

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
)

// HTTP digest authentication, client side (RFC 7616, compatible with RFC
// 2617 servers): most IP cameras refuse basic authentication over plain
// HTTP and ask for digest. Only what cameras use is implemented: qop
// "auth" (or no qop, RFC 2069 style), algorithms MD5, SHA-256 and their
// "-sess" variants. auth-int (a hash of the body) makes no sense for a GET.

// digestChallenge is a parsed `WWW-Authenticate: Digest ...` challenge.
type digestChallenge struct {
	realm     string
	nonce     string
	opaque    string
	algorithm string // as the server wrote it, echoed back; "" means MD5
	qop       string // "auth" or "" (server offered no qop)
	newHash   func() hash.Hash
	sess      bool
	userhash  bool
}

// splitChallenge splits `Digest realm="x", ...` into the scheme and the
// parameter text. A header with several challenges in one line is rare
// with cameras; each header line is taken as one challenge.
func splitChallenge(s string) (scheme, params string) {
	s = strings.TrimSpace(s)
	scheme, params, _ = strings.Cut(s, " ")
	return scheme, strings.TrimSpace(params)
}

// parseAuthParams reads `k=v, k="quoted, \"v\""` pairs; keys lower-cased.
// Malformed text ends the list rather than failing: what was read is kept.
func parseAuthParams(s string) map[string]string {
	out := map[string]string{}
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return out
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return out
		}
		key := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val string
		if strings.HasPrefix(s, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				b.WriteByte(s[i])
			}
			val = b.String()
			s = s[min(i+1, len(s)):]
		} else {
			end := strings.IndexAny(s, ", \t")
			if end < 0 {
				end = len(s)
			}
			val, s = s[:end], s[end:]
		}
		out[key] = val
	}
}

// parseDigestChallenge reads the parameters of a Digest challenge.
func parseDigestChallenge(params string) (*digestChallenge, error) {
	p := parseAuthParams(params)
	c := &digestChallenge{realm: p["realm"], nonce: p["nonce"], opaque: p["opaque"], algorithm: p["algorithm"],
		userhash: strings.EqualFold(p["userhash"], "true")}
	if c.nonce == "" {
		return nil, errors.New("digest challenge without nonce")
	}
	alg := strings.ToUpper(c.algorithm)
	if base, ok := strings.CutSuffix(alg, "-SESS"); ok {
		c.sess, alg = true, base
	}
	switch alg {
	case "", "MD5":
		c.newHash = md5.New
	case "SHA-256":
		c.newHash = sha256.New
	default:
		return nil, fmt.Errorf("digest algorithm %q", c.algorithm)
	}
	if q, ok := p["qop"]; ok {
		for _, o := range strings.Split(q, ",") {
			if strings.EqualFold(strings.TrimSpace(o), "auth") {
				c.qop = "auth"
			}
		}
		if c.qop == "" {
			return nil, fmt.Errorf("digest qop %q (only auth is supported)", q)
		}
	}
	return c, nil
}

func (c *digestChallenge) h(parts ...string) string {
	hh := c.newHash()
	hh.Write([]byte(strings.Join(parts, ":")))
	return hex.EncodeToString(hh.Sum(nil))
}

// authorize computes the Authorization header value for one request.
// nc counts the requests made with this nonce; cnonce is fresh per request.
func (c *digestChallenge) authorize(method, uri, user, pass string, nc uint32, cnonce string) string {
	ha1 := c.h(user, c.realm, pass)
	if c.sess {
		ha1 = c.h(ha1, c.nonce, cnonce)
	}
	ha2 := c.h(method, uri)
	ncs := fmt.Sprintf("%08x", nc)
	var resp string
	if c.qop == "" {
		resp = c.h(ha1, c.nonce, ha2)
	} else {
		resp = c.h(ha1, c.nonce, ncs, cnonce, c.qop, ha2)
	}
	name := user
	if c.userhash {
		name = c.h(user, c.realm)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `Digest username=%s, realm=%s, nonce=%s, uri=%s`, quote(name), quote(c.realm), quote(c.nonce), quote(uri))
	if c.algorithm != "" {
		fmt.Fprintf(&b, `, algorithm=%s`, c.algorithm)
	}
	fmt.Fprintf(&b, `, response="%s"`, resp)
	if c.opaque != "" {
		fmt.Fprintf(&b, `, opaque=%s`, quote(c.opaque))
	}
	if c.qop != "" {
		fmt.Fprintf(&b, `, qop=%s, nc=%s, cnonce=%s`, c.qop, ncs, quote(cnonce))
	}
	if c.userhash {
		b.WriteString(`, userhash=true`)
	}
	return b.String()
}

// quote makes an RFC 7230 quoted-string.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
