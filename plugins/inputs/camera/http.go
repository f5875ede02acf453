package camera

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// httpSource fetches a snapshot URL, as IP cameras offer one
// (/ISAPI/Streaming/channels/101/picture, /cgi-bin/snapshot.cgi, ...).
type httpSource struct {
	client  *http.Client
	url     string // without user info
	where   string // scheme://host/path for errors: no query, which may hold a key
	user    string
	pass    string
	timeout time.Duration
	maxSize int64

	// The authentication scheme is learnt from the camera's first 401 and
	// then sent up front, so each later picture costs one request, not two.
	// Nothing is sent before the camera asked: basic credentials must not
	// go to a camera that wanted digest (which never exposes the password).
	mu     sync.Mutex
	scheme string // "", "basic" or "digest"
	chal   *digestChallenge
	nc     uint32 // digest nonce count for chal's nonce
}

func newHTTPSource(u *url.URL, user, pass string, roots *x509.CertPool, timeout time.Duration, maxSize int64) *httpSource {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// System roots unless a CA is configured (cameras often have
	// self-signed certificates).
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	tr.MaxIdleConnsPerHost = 1
	w := *u
	w.RawQuery, w.Fragment = "", ""
	return &httpSource{
		client: &http.Client{Transport: tr, Timeout: timeout,
			// A redirect re-sends our Authorization header nowhere: the
			// client drops it across hosts, and digest must be answered
			// for the new URI anyway, which do() does on the 401.
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= 5 {
					return errors.New("too many redirects")
				}
				return nil
			}},
		url: u.String(), where: w.String(), user: user, pass: pass, timeout: timeout, maxSize: maxSize,
	}
}

func (h *httpSource) close() error {
	h.client.CloseIdleConnections()
	return nil
}

// capture GETs the snapshot: at most one retry, after a 401 that tells
// which authentication to use (or that a digest nonce went stale).
func (h *httpSource) capture(ctx context.Context) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		resp, err := h.do(ctx)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 && h.user != "" {
			err := h.learn(resp.Header.Values("WWW-Authenticate"))
			drain(resp)
			if err != nil {
				return nil, fmt.Errorf("GET %s: %w", h.where, err)
			}
			continue
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			drain(resp)
			if resp.StatusCode == http.StatusUnauthorized {
				return nil, fmt.Errorf("GET %s: %s (check username and password)", h.where, resp.Status)
			}
			return nil, fmt.Errorf("GET %s: %s", h.where, resp.Status)
		}
		return h.readBody(resp)
	}
}

// do sends one GET with whatever authentication has been learnt.
func (h *httpSource) do(ctx context.Context) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", h.where, err)
	}
	req.Header.Set("Accept", "image/jpeg")
	if a := h.authorization(req); a != "" {
		req.Header.Set("Authorization", a)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		// *url.Error repeats the whole URL, query included; keep only
		// the cause and name the URL without its query.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if ctx.Err() == context.DeadlineExceeded || errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("GET %s: no picture within timeout %v", h.where, h.timeout)
		}
		return nil, fmt.Errorf("GET %s: %w", h.where, err)
	}
	return resp, nil
}

// readBody reads the picture, refusing it as soon as it proves larger than
// max_size: by its Content-Length, or by reading one byte more than
// max_size, so a camera that sends without end costs no more memory.
func (h *httpSource) readBody(resp *http.Response) ([]byte, error) {
	if resp.ContentLength > h.maxSize {
		return nil, fmt.Errorf("GET %s: %w (%d > %d bytes)", h.where, errTooLarge, resp.ContentLength, h.maxSize)
	}
	var data []byte
	var err error
	if resp.ContentLength >= 0 {
		// Known length: one allocation of exactly the picture's size
		// (net/http fails a body that does not match its length).
		data = make([]byte, resp.ContentLength)
		_, err = io.ReadFull(resp.Body, data)
	} else {
		var buf bytes.Buffer
		_, err = buf.ReadFrom(io.LimitReader(resp.Body, h.maxSize+1))
		data = buf.Bytes()
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "Client.Timeout") {
			return nil, fmt.Errorf("GET %s: picture not complete within timeout %v", h.where, h.timeout)
		}
		return nil, fmt.Errorf("GET %s: reading the picture: %w", h.where, err)
	}
	if int64(len(data)) > h.maxSize {
		return nil, fmt.Errorf("GET %s: %w (more than %d bytes)", h.where, errTooLarge, h.maxSize)
	}
	if err := checkJPEG(data); err != nil {
		return nil, fmt.Errorf("GET %s: %w", h.where, err)
	}
	return data, nil
}

// drain reads a little of an unused body so the connection can be reused.
func drain(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 4096)
	resp.Body.Close()
}

// learn picks the authentication the camera asks for: digest when offered
// (it never sends the password), else basic.
func (h *httpSource) learn(challenges []string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var basic bool
	var unsupported []string
	for _, c := range challenges {
		scheme, params := splitChallenge(c)
		switch strings.ToLower(scheme) {
		case "digest":
			dc, err := parseDigestChallenge(params)
			if err != nil {
				unsupported = append(unsupported, err.Error())
				continue
			}
			h.scheme, h.chal, h.nc = "digest", dc, 0
			return nil
		case "basic":
			basic = true
		default:
			if scheme != "" {
				unsupported = append(unsupported, "scheme "+scheme)
			}
		}
	}
	if basic {
		h.scheme, h.chal = "basic", nil
		return nil
	}
	if len(unsupported) == 0 {
		return errors.New("401 without an authentication challenge")
	}
	return fmt.Errorf("401 asks for unsupported authentication: %s", strings.Join(unsupported, "; "))
}

// authorization is the Authorization header for req, or "".
func (h *httpSource) authorization(req *http.Request) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch h.scheme {
	case "basic":
		r := &http.Request{Header: http.Header{}}
		r.SetBasicAuth(h.user, h.pass)
		return r.Header.Get("Authorization")
	case "digest":
		h.nc++
		return h.chal.authorize(req.Method, req.URL.RequestURI(), h.user, h.pass, h.nc, newCnonce())
	}
	return ""
}

func newCnonce() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
