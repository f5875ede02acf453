package camera

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// camServer is an IP camera's snapshot endpoint: basic, digest or no
// authentication, and misbehaviours switched on by the test.
type camServer struct {
	t     testing.TB
	srv   *httptest.Server
	auth  string // "", "basic", "digest"
	user  string
	pass  string
	realm string

	mu       sync.Mutex
	pic      []byte
	ctype    string
	stall    string // "": answer; "head": never answer; "body": stop half way
	nonce    int
	uses     int // requests served with the current nonce
	maxUses  int // digest: the nonce goes stale after this many uses
	lastNC   uint32
	requests int // all requests
	served   int // authorised requests
	stale    int // stale nonces answered
}

func newCamServer(t testing.TB, auth string, pic []byte) *camServer {
	s := &camServer{t: t, auth: auth, user: "admin", pass: "s3cret-Pass", realm: "IP Camera(C1234)",
		pic: pic, ctype: "image/jpeg", maxUses: 1 << 30}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *camServer) set(f func(s *camServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *camServer) counts() (requests, served, stale int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests, s.served, s.stale
}

func (s *camServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	ok, stale := s.authorised(r)
	if !ok {
		switch s.auth {
		case "basic":
			w.Header().Set("WWW-Authenticate", `Basic realm="`+s.realm+`"`)
		case "digest":
			// Offered beside basic, as cameras do: the client must pick
			// digest.
			w.Header().Add("WWW-Authenticate", `Basic realm="`+s.realm+`"`)
			st := ""
			if stale {
				st = ", stale=TRUE"
				s.stale++
			}
			w.Header().Add("WWW-Authenticate", fmt.Sprintf(`Digest qop="auth,auth-int", realm="%s", nonce="%s", opaque="0f1e2d"%s`,
				s.realm, s.nonceText(), st))
		}
		s.mu.Unlock()
		http.Error(w, "401 Unauthorized", http.StatusUnauthorized)
		return
	}
	s.served++
	pic, ctype, stall := s.pic, s.ctype, s.stall
	s.mu.Unlock()
	switch stall {
	case "head":
		<-r.Context().Done()
		return
	case "404":
		http.NotFound(w, r)
		return
	case "chunked":
		w.Write(pic) // no Content-Length: the size shows while reading
		return
	case "body":
		w.Header().Set("Content-Length", strconv.Itoa(len(pic)))
		w.Write(pic[:len(pic)/2])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(pic)))
	w.Write(pic)
}

func (s *camServer) nonceText() string { return fmt.Sprintf("nonce-%d-4f2a", s.nonce) }

var authParamRE = regexp.MustCompile(`(\w+)=(?:"([^"]*)"|([^,\s]*))`)

// authorised checks the request's credentials; stale tells a digest
// answer that was right but for a nonce used up.
func (s *camServer) authorised(r *http.Request) (ok, stale bool) {
	switch s.auth {
	case "":
		return true, false
	case "basic":
		u, p, ok := r.BasicAuth()
		return ok && u == s.user && p == s.pass, false
	}
	h, found := strings.CutPrefix(r.Header.Get("Authorization"), "Digest ")
	if !found {
		return false, false
	}
	p := map[string]string{}
	for _, m := range authParamRE.FindAllStringSubmatch(h, -1) {
		p[m[1]] = m[2] + m[3]
	}
	md5hex := func(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }
	ha1 := md5hex(s.user + ":" + s.realm + ":" + s.pass)
	ha2 := md5hex(r.Method + ":" + r.URL.RequestURI())
	want := md5hex(ha1 + ":" + p["nonce"] + ":" + p["nc"] + ":" + p["cnonce"] + ":auth:" + ha2)
	nc, err := strconv.ParseUint(p["nc"], 16, 32)
	if p["username"] != s.user || p["realm"] != s.realm || p["uri"] != r.URL.RequestURI() || p["qop"] != "auth" ||
		p["opaque"] != "0f1e2d" || err != nil || len(p["nc"]) != 8 || p["cnonce"] == "" || p["response"] != want {
		return false, false
	}
	if p["nonce"] != s.nonceText() {
		return false, true
	}
	if uint32(nc) <= s.lastNC {
		return false, false // a replayed nonce count
	}
	if s.uses >= s.maxUses {
		s.nonce++
		s.uses, s.lastNC = 0, 0
		return false, true
	}
	s.uses++
	s.lastNC = uint32(nc)
	return true, false
}

// attempts is a factory whose cameras report each capture's outcome.
type attempts chan error

func (a attempts) factory() sdk.Plugin { return &Camera{attempted: func(err error) { a <- err }} }

func newAttempts() attempts { return make(attempts, 64) }

// next waits for the outcome of the next capture.
func (a attempts) next(t *testing.T) error {
	t.Helper()
	select {
	case err := <-a:
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("no capture attempt within 15s")
	}
	return nil
}

func factory() sdk.Plugin { return &Camera{} }

func httpConfig(url, extra string) string {
	return fmt.Sprintf("device = \"cam1\"\nsource = \"http\"\nurl = %q\nusername = \"admin\"\npassword = \"s3cret-Pass\"\ninterval = \"0s\"\ntimeout = \"5s\"\n%s", url, extra)
}

func TestHTTPBasicAuth(t *testing.T) {
	pic := testJPEG(t, 320, 240)
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		s := newCamServer(t, "basic", pic)
		resp := sdktest.Init(t, p, httpConfig(s.srv.URL+"/snapshot.jpg", ""))
		if len(resp.Points) != 1 || resp.Points[0].FullName() != "cam1.capture" || resp.Points[0].Access != sdk.AccessSub ||
			resp.Points[0].Kind != sdk.KindBool || resp.Points[0].Type != "bool" {
			t.Fatalf("points %+v", resp.Points)
		}
		frames := startStream(t, p)
		for range 3 {
			capture(t, p, "cam1")
			if got := nextPicture(t, frames, "cam1"); !bytes.Equal(got.Data, pic) {
				t.Fatalf("picture differs from the served one")
			}
		}
		// One 401 to learn the scheme, then basic up front.
		if req, served, _ := s.counts(); req != 4 || served != 3 {
			t.Errorf("requests %d served %d, want 4 and 3", req, served)
		}
		h := health(t, p)
		if !h.OK {
			t.Errorf("health %+v", h)
		}
		wantCounters(t, h, map[string]uint64{"captures": 3, "failures": 0, "bytes": uint64(3 * len(pic))})
	})
}

func TestHTTPDigestAuth(t *testing.T) {
	pic := testJPEG(t, 160, 120)
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		s := newCamServer(t, "digest", pic)
		s.maxUses = 2
		sdktest.Init(t, p, httpConfig(s.srv.URL+"/ISAPI/Streaming/channels/101/picture?snapShotImageType=JPEG", ""))
		frames := startStream(t, p)
		for range 5 {
			capture(t, p, "cam1")
			nextPicture(t, frames, "cam1")
		}
		// 1 challenge, then the nonce goes stale after every 2 uses:
		// 5 pictures cost 5 + 1 + 2 stale answers.
		req, served, stale := s.counts()
		if served != 5 || stale != 2 || req != 8 {
			t.Errorf("requests %d served %d stale %d, want 8, 5, 2", req, served, stale)
		}
		wantCounters(t, health(t, p), map[string]uint64{"captures": 5, "failures": 0})
	})
}

// A refused capture (too large, not a JPEG, timed out, refused password)
// is counted and logged, the camera turns unhealthy after
// failuresForUnhealthy of them in a row, and the next good picture makes it
// healthy again. The password appears in no log line, error or health
// reason, also when written into the URL.
func TestHTTPRefusedPictures(t *testing.T) {
	var logs syncBuffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(old) })

	pic := testJPEG(t, 64, 48)
	big := padJPEG(t, pic, 20_000)
	cases := []struct {
		name    string
		bad     func(s *camServer)
		counter string
		reason  string
	}{
		{"too_large_by_length", func(s *camServer) { s.pic = big }, "too_large", "picture larger than max_size (20000 > 10240 bytes)"},
		{"too_large_chunked", func(s *camServer) { s.pic, s.stall = big, "chunked" }, "too_large", "picture larger than max_size (more than 10240 bytes)"},
		{"not_jpeg", func(s *camServer) { s.pic, s.ctype = []byte("<html>camera busy</html>"), "text/html" }, "not_jpeg", "answer is not a JPEG picture (starts with 3c 68 74 6d)"},
		{"slow_head", func(s *camServer) { s.stall = "head" }, "", "no picture within timeout 300ms"},
		{"slow_body", func(s *camServer) { s.stall = "body" }, "", "picture not complete within timeout 300ms"},
		{"not_found", func(s *camServer) { s.stall = "404" }, "", "404 Not Found"},
		{"wrong_password", func(s *camServer) { s.pass = "other" }, "", "401 Unauthorized (check username and password)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newAttempts()
			sdktest.Run(t, a.factory, func(t *testing.T, p sdk.Plugin) {
				s := newCamServer(t, "digest", pic)
				u := strings.Replace(s.srv.URL, "http://", "http://admin:s3cret-Pass@", 1) + "/snap.jpg?pwd=s3cret-Pass"
				sdktest.Init(t, p, fmt.Sprintf("device = \"cam1\"\nurl = %q\ninterval = \"0s\"\nmax_size = \"10kB\"\ntimeout = \"300ms\"\n", u))
				frames := startStream(t, p)
				capture(t, p, "cam1")
				nextPicture(t, frames, "cam1")
				if err := a.next(t); err != nil {
					t.Fatal(err)
				}
				s.set(c.bad)
				for i := 1; i <= failuresForUnhealthy; i++ {
					capture(t, p, "cam1")
					err := a.next(t)
					if err == nil || !strings.Contains(err.Error(), c.reason) {
						t.Fatalf("capture error %v, want %q", err, c.reason)
					}
					h := health(t, p)
					if h.OK != (i < failuresForUnhealthy) {
						t.Fatalf("after %d failures health %+v", i, h)
					}
					want := map[string]uint64{"captures": 1, "failures": uint64(i)}
					if c.counter != "" {
						want[c.counter] = uint64(i)
					}
					wantCounters(t, h, want)
					if !h.OK && !strings.Contains(h.Reason, "3 captures failed in a row, last: GET http://127.0.0.1") ||
						strings.Contains(h.Reason, "s3cret") {
						t.Fatalf("health reason %q", h.Reason)
					}
				}
				if d := health(t, p).Devices; len(d) != 1 || d[0].Name != "cam1" || d[0].Up || d[0].ReadErrors != failuresForUnhealthy ||
					!strings.Contains(d[0].LastError, c.reason) || strings.Contains(d[0].LastError, "s3cret") || d[0].LastGood.IsZero() {
					t.Fatalf("device after %d failures: %+v", failuresForUnhealthy, d)
				}
				noPicture(t, frames)
				s.set(func(s *camServer) { s.pic, s.ctype, s.stall, s.pass = pic, "image/jpeg", "", "s3cret-Pass" })
				capture(t, p, "cam1")
				nextPicture(t, frames, "cam1")
				if err := a.next(t); err != nil {
					t.Fatal(err)
				}
				if h := health(t, p); !h.OK || h.Reason != "" || len(h.Devices) != 1 || !h.Devices[0].Up ||
					!strings.Contains(h.Devices[0].LastError, c.reason) {
					t.Fatalf("a picture after failures should make the camera healthy again, its last error kept: %+v", h)
				}
			})
		})
	}
	if strings.Contains(logs.String(), "s3cret") {
		t.Fatalf("password in the log:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "level=WARN msg=\"camera: capture failed\" device=cam1 consecutive=1") {
		t.Fatalf("failures are not logged:\n%s", logs.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// A picture of several MB crosses the plugin boundary (gRPC, 64 MB
// messages) intact.
func TestHTTPLargePicture(t *testing.T) {
	pic := padJPEG(t, testJPEG(t, 640, 480), 5<<20)
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		s := newCamServer(t, "basic", pic)
		sdktest.Init(t, p, httpConfig(s.srv.URL+"/snap.jpg", "max_size = \"8MB\"\n"))
		frames := startStream(t, p)
		capture(t, p, "cam1")
		if got := nextPicture(t, frames, "cam1"); !bytes.Equal(got.Data, pic) {
			t.Fatalf("picture of %d bytes arrived as %d bytes, or changed", len(pic), len(got.Data))
		}
		wantCounters(t, health(t, p), map[string]uint64{"captures": 1, "bytes": uint64(len(pic))})
	})
}

// With an interval the first picture is taken at once, then one per
// interval, without any write.
func TestHTTPInterval(t *testing.T) {
	pic := testJPEG(t, 32, 24)
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		s := newCamServer(t, "", pic)
		sdktest.Init(t, p, fmt.Sprintf("device = \"yard\"\nurl = %q\ninterval = \"50ms\"\n", s.srv.URL))
		frames := startStream(t, p)
		for range 3 {
			nextPicture(t, frames, "yard")
		}
	})
}

// Capture requests made while a picture is being taken collapse into one
// more picture.
func TestCaptureRequestsCoalesce(t *testing.T) {
	pic := testJPEG(t, 32, 24)
	a := newAttempts()
	sdktest.Run(t, a.factory, func(t *testing.T, p sdk.Plugin) {
		s := newCamServer(t, "", pic)
		entered := make(chan struct{})
		release := make(chan struct{})
		var once sync.Once
		inner := s.srv.Config.Handler
		s.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			once.Do(func() { close(entered); <-release })
			inner.ServeHTTP(w, r)
		})
		sdktest.Init(t, p, httpConfig(s.srv.URL, ""))
		frames := startStream(t, p)
		capture(t, p, "cam1")
		<-entered // the first picture is being taken
		for range 5 {
			capture(t, p, "cam1")
		}
		close(release)
		nextPicture(t, frames, "cam1")
		nextPicture(t, frames, "cam1")
		a.next(t)
		a.next(t)
		noPicture(t, frames)
		if req, _, _ := s.counts(); req != 2 {
			t.Errorf("%d requests, want 2", req)
		}
		wantCounters(t, health(t, p), map[string]uint64{"captures": 2, "requests": 6})
	})
}

// https with the certificate given as tls_ca.
func TestHTTPS(t *testing.T) {
	pic := testJPEG(t, 32, 24)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(pic) }))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	a := newAttempts()
	sdktest.Run(t, a.factory, func(t *testing.T, p sdk.Plugin) {
		sdktest.Init(t, p, httpConfig(srv.URL, fmt.Sprintf("tls_ca = %q\n", ca)))
		frames := startStream(t, p)
		capture(t, p, "cam1")
		nextPicture(t, frames, "cam1")
	})
	// Without it, the system roots refuse the test certificate.
	a = newAttempts()
	sdktest.Run(t, a.factory, func(t *testing.T, p sdk.Plugin) {
		sdktest.Init(t, p, httpConfig(srv.URL, ""))
		startStream(t, p)
		capture(t, p, "cam1")
		if err := a.next(t); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("got %v, want a certificate error", err)
		}
	})
}

func TestWriteChecks(t *testing.T) {
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		sdktest.Init(t, p, httpConfig("http://127.0.0.1:9/", ""))
		res, err := p.(sdk.Writer).Write(context.Background(), []sdk.WriteRequest{
			{Device: "cam1", Name: "capture", Value: sdk.Bool(false)},
			{Device: "cam1", Name: "zoom", Value: sdk.Bool(true)},
			{Device: "cam2", Name: "capture", Value: sdk.Bool(true)},
			{Device: "cam1", Name: "capture", Value: sdk.Int(1)},
		})
		if err != nil || len(res) != 4 || res[0].Error != "" || res[1].Error == "" || res[2].Error == "" || res[3].Error == "" {
			t.Fatalf("%v %+v", err, res)
		}
		wantCounters(t, health(t, p), map[string]uint64{"requests": 0})
	})
}
