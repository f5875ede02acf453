package config

import (
	"net/url"
	"regexp"
	"strings"
)

// Masked is what ShowText puts in place of a secret written into the file.
const Masked = "***"

// ShowText is the running configuration for a person to read (the local
// console's configuration page and GET /api/v1/config): the main file as
// written, with ${VAR} references left as they are (their values never
// enter the text) and every secret written literally replaced by "***":
// values of secret keys (password, token, tls_key, ...), the console's
// password_hash and token hashes, and passwords in URLs.
func (c *Config) ShowText() []byte {
	if c == nil {
		return nil
	}
	return MaskSecrets(c.Text)
}

// headerRE finds a table header and its name.
var headerRE = regexp.MustCompile(`^\s*\[\[?\s*([^\]]+?)\s*\]\]?`)

// urlUserRE finds the password of a URL (scheme://user:password@host).
var urlUserRE = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s/@"':]*:[^\s/@"']*@[^\s"']*`)

// MaskSecrets replaces every literal secret of TOML text by "***" (see
// ShowText); line numbers are kept.
func MaskSecrets(text []byte) []byte {
	lines := strings.Split(string(text), "\n")
	table := ""
	var closing string // inside a multi-line secret string: its delimiter
	for i, line := range lines {
		if closing != "" {
			end := strings.Index(line, closing)
			if end < 0 {
				lines[i] = ""
				continue
			}
			lines[i] = Masked + closing + line[end+len(closing):]
			closing = ""
			continue
		}
		if m := headerRE.FindStringSubmatch(line); m != nil && !strings.Contains(line[:strings.Index(line, "[")], "=") {
			table = strings.ReplaceAll(m[1], " ", "")
			continue
		}
		lines[i] = urlUserRE.ReplaceAllStringFunc(line, maskURL)
		for {
			masked, multi, changed := maskAssignment(lines[i], table)
			lines[i] = masked
			if multi != "" {
				closing = multi
			}
			if !changed || multi != "" {
				break
			}
		}
	}
	return []byte(strings.Join(lines, "\n"))
}

// shownSecretKey tells whether the value of key in table is hidden.
func shownSecretKey(key, table string) bool {
	return isSecretKey(key) || key == "password_hash" || key == "sha256" && strings.HasSuffix(table, "console.tokens")
}

// maskAssignment masks the value of the first secret key assigned on line
// that is not masked yet. multi is the closing delimiter of a multi-line
// string that continues on the next lines.
func maskAssignment(line, table string) (out, multi string, changed bool) {
	for _, m := range assignRE.FindAllStringSubmatchIndex(line, -1) {
		key := strings.Trim(line[m[2]:m[3]], `"'`)
		if !shownSecretKey(key, table) {
			continue
		}
		start := m[1]
		for start < len(line) && (line[start] == ' ' || line[start] == '\t') {
			start++
		}
		rest := line[start:]
		for _, d := range []string{`"""`, `'''`} {
			if strings.HasPrefix(rest, d) {
				if end := strings.Index(rest[3:], d); end >= 0 {
					return line[:start] + d + Masked + d + rest[3+end+3:], "", true
				}
				return line[:start] + d + Masked, d, true
			}
		}
		end := valueEnd(rest)
		val := rest[:end]
		if val == `"`+Masked+`"` || isEnvRef(val) {
			continue // masked already, or a ${VAR}: shown as written
		}
		return line[:start] + `"` + Masked + `"` + rest[end:], "", true
	}
	return line, "", false
}

// isEnvRef tells whether a value is exactly a quoted ${VAR}.
func isEnvRef(v string) bool {
	v = strings.Trim(v, `"'`)
	m := envRE.FindStringIndex(v)
	return m != nil && m[0] == 0 && m[1] == len(v)
}

// valueEnd is the length of the TOML value at the start of s: a quoted
// string with its quotes, or a bare word up to a comma, brace or comment.
func valueEnd(s string) int {
	if s == "" {
		return 0
	}
	switch s[0] {
	case '"':
		for i := 1; i < len(s); i++ {
			switch s[i] {
			case '\\':
				i++
			case '"':
				return i + 1
			}
		}
		return len(s)
	case '\'':
		if i := strings.IndexByte(s[1:], '\''); i >= 0 {
			return i + 2
		}
		return len(s)
	}
	if i := strings.IndexAny(s, ",}#]"); i >= 0 {
		return len(strings.TrimRight(s[:i], " \t"))
	}
	return len(strings.TrimRight(s, " \t"))
}

// maskURL hides the password of a URL, unless it is a ${VAR}.
func maskURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if pw, ok := u.User.Password(); ok && !isEnvRef(pw) {
		at := strings.Index(s, "@")
		scheme := strings.Index(s, "://") + 3
		colon := strings.Index(s[scheme:at], ":")
		if colon < 0 {
			return s
		}
		return s[:scheme+colon+1] + Masked + s[at:]
	}
	return s
}
