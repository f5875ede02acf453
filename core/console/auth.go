package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/edgepipe/edgepipe/core/config"
)

// Access control (SPEC 8). Who is asking:
//
//   - a bearer token (Authorization: Bearer TOKEN) matching the SHA-256 of
//     a configured [[agent.console.tokens]], with its read or write access;
//   - a person logged in with the form: a session cookie (HttpOnly,
//     SameSite=Strict) with write access, whose state-changing requests
//     carry the session's CSRF token (X-CSRF-Token or a csrf_token field);
//   - without a password_hash, anyone on loopback (the peer address is
//     checked, and so is the Host header, against DNS rebinding), with
//     write access; a browser's cross-site request is refused by its Origin.
//
// No credentials: 401; credentials without the right: 403.

// sessionCookie names the session cookie.
const sessionCookie = "edgepipe_session"

// sessionTTL is how long a session lasts without being used.
const sessionTTL = 12 * time.Hour

// maxSessions bounds the sessions kept; the oldest goes first.
const maxSessions = 256

// Login attempts are limited per client address: loginBurst failures,
// then one more attempt per loginEvery.
const (
	loginBurst = 5
	loginEvery = 20 * time.Second
)

type level int

const (
	accessNone level = iota
	accessRead
	accessWrite
)

// who is the authenticated caller of a request.
type who struct {
	name    string // "admin", "token grafana", "loopback"
	access  level
	session *session // set for a logged-in person
}

type session struct {
	id, csrf string
	user     string
	hash     string // the password_hash it was opened with: a new password ends it
	used     time.Time
}

// auth holds the sessions and the login limiter.
type auth struct {
	mu       sync.Mutex
	sessions map[string]*session
	attempts map[string]*limiter // by client IP
	now      func() time.Time
}

type limiter struct {
	tokens float64
	at     time.Time
}

func newAuth(now func() time.Time) *auth {
	return &auth{sessions: map[string]*session{}, attempts: map[string]*limiter{}, now: now}
}

// authError is a refused request: its status and message.
type authError struct {
	status int
	msg    string
}

// identify finds who is asking, or why the request is refused.
func (a *auth) identify(r *http.Request, c config.Console) (who, *authError) {
	if c.PasswordHash == "" {
		if !loopbackPeer(r) {
			return who{}, &authError{http.StatusForbidden, "the console answers on loopback only: no password_hash is configured"}
		}
		if !loopbackHost(r.Host) {
			return who{}, &authError{http.StatusForbidden, "without a password_hash the console answers to a loopback host name only (127.0.0.1, localhost)"}
		}
	}
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return who{}, &authError{http.StatusUnauthorized, "want Authorization: Bearer TOKEN"}
		}
		sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		got := hex.EncodeToString(sum[:])
		for _, t := range c.Tokens {
			if subtle.ConstantTimeCompare([]byte(got), []byte(t.SHA256)) == 1 {
				l := accessRead
				if t.Access == "write" {
					l = accessWrite
				}
				return who{name: "token " + t.Name, access: l}, nil
			}
		}
		return who{}, &authError{http.StatusUnauthorized, "unknown token"}
	}
	if ck, err := r.Cookie(sessionCookie); err == nil {
		if s := a.session(ck.Value, c.PasswordHash); s != nil {
			return who{name: s.user, access: accessWrite, session: s}, nil
		}
	}
	if c.PasswordHash == "" {
		return who{name: "loopback", access: accessWrite}, nil
	}
	return who{}, &authError{http.StatusUnauthorized, "log in, or send Authorization: Bearer TOKEN"}
}

// allowChange checks a state-changing request of w: a session must send
// its CSRF token, a token must be a write token, and an anonymous
// loopback caller must not be another site's page.
func allowChange(r *http.Request, w who) *authError {
	if w.access < accessWrite {
		return &authError{http.StatusForbidden, "this token is read-only"}
	}
	switch {
	case w.session != nil:
		got := r.Header.Get("X-CSRF-Token")
		if got == "" {
			got = r.PostFormValue("csrf_token")
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(w.session.csrf)) != 1 {
			return &authError{http.StatusForbidden, "missing or wrong CSRF token (X-CSRF-Token header or csrf_token field)"}
		}
	case w.name == "loopback":
		if crossSite(r) {
			return &authError{http.StatusForbidden, "cross-site request refused"}
		}
	}
	return nil
}

// crossSite tells whether a browser sent the request from another site's
// page (Sec-Fetch-Site, or an Origin that is not this host).
func crossSite(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		return true
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return false
	}
	_, host, ok := strings.Cut(o, "://")
	return !ok || !strings.EqualFold(host, r.Host)
}

func (a *auth) session(id, hash string) *session {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.sessions[id]
	if s == nil {
		return nil
	}
	now := a.now()
	if now.Sub(s.used) > sessionTTL || s.hash != hash {
		delete(a.sessions, id)
		return nil
	}
	s.used = now
	return s
}

// login checks a user name and password and opens a session. It returns
// 429 while the client's attempts are used up.
func (a *auth) login(r *http.Request, c config.Console, user, password string) (*session, *authError) {
	if c.PasswordHash == "" {
		return nil, &authError{http.StatusNotFound, "no password_hash is configured: the console is open on loopback without logging in"}
	}
	ip := peerIP(r)
	if !a.attempt(ip) {
		return nil, &authError{http.StatusTooManyRequests, "too many login attempts; wait and try again"}
	}
	// Always compare the password, so that a wrong user name takes as long.
	perr := bcrypt.CompareHashAndPassword([]byte(c.PasswordHash), []byte(password))
	if subtle.ConstantTimeCompare([]byte(user), []byte(c.Username)) != 1 || perr != nil {
		return nil, &authError{http.StatusUnauthorized, "wrong user name or password"}
	}
	a.forgive(ip)
	s := &session{id: randomToken(), csrf: randomToken(), user: c.Username, hash: c.PasswordHash, used: a.now()}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.sessions) >= maxSessions {
		var oldest *session
		for _, o := range a.sessions {
			if oldest == nil || o.used.Before(oldest.used) {
				oldest = o
			}
		}
		delete(a.sessions, oldest.id)
	}
	a.sessions[s.id] = s
	return s, nil
}

func (a *auth) logout(s *session) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.sessions, s.id)
}

// attempt takes one login attempt from ip's allowance (a token bucket of
// loginBurst refilled every loginEvery).
func (a *auth) attempt(ip string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	l := a.attempts[ip]
	if l == nil {
		if len(a.attempts) > 4096 { // forget everyone rather than grow without bound
			a.attempts = map[string]*limiter{}
		}
		l = &limiter{tokens: loginBurst, at: now}
		a.attempts[ip] = l
	}
	l.tokens = min(loginBurst, l.tokens+float64(now.Sub(l.at))/float64(loginEvery))
	l.at = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}

// forgive gives a client that logged in its allowance back.
func (a *auth) forgive(ip string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.attempts, ip)
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

func peerIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// loopbackPeer tells whether the request came from this host.
func loopbackPeer(r *http.Request) bool {
	ip := net.ParseIP(peerIP(r))
	return ip != nil && ip.IsLoopback()
}

// loopbackHost tells whether a Host header names this host.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
