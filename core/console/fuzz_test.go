package console

import (
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

// Request bodies and paths from outside never panic the console and are
// always answered with JSON.
func FuzzRequests(f *testing.F) {
	for _, s := range []string{`{"id":"a","points":{"rw.p1":1}}`, `{"id":1}`, `{"id":{"x":1}}`, `{`, ``, `{"username":"ops","password":"x"}`,
		`null`, `[1,2]`, "\x00\xff"} {
		f.Add(uint8(1), "/api/v1/write", s)
		f.Add(uint8(1), "/api/v1/alarms/r/ack", s)
		f.Add(uint8(1), "/api/v1/login", s)
	}
	f.Add(uint8(0), "/api/v1/logs?level=x&limit=-1", "")
	c := New(Options{Agent: fakeAgent{}, Logger: slog.New(slog.DiscardHandler)})
	methods := []string{"GET", "POST", "PUT", "DELETE"}
	f.Fuzz(func(t *testing.T, m uint8, path, body string) {
		method := methods[int(m)%len(methods)]
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n\t#%") || strings.ContainsFunc(path, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
			return
		}
		r := httptest.NewRequest(method, "http://127.0.0.1"+path, strings.NewReader(body))
		r.RemoteAddr = "127.0.0.1:1"
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		c.ServeHTTP(w, r)
		if strings.HasPrefix(path, "/api/") && w.Code >= 400 && !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
			t.Fatalf("%s %s: %d with %q", method, path, w.Code, w.Header().Get("Content-Type"))
		}
	})
}
