package mqtt

import (
	"strings"
	"testing"
)

func TestServerURLsWithDefaultPorts(t *testing.T) {
	for raw, want := range map[string]string{
		"tcp://h":                "tcp://h:1883",
		"ssl://h":                "ssl://h:8883",
		"ws://h":                 "ws://h:80",
		"wss://h/mqtt":           "wss://h:443/mqtt",
		"WSS://h:8443/mqtt":      "wss://h:8443/mqtt",
		"ws://127.0.0.1:9001/ws": "ws://127.0.0.1:9001/ws",
	} {
		u, err := parseServer(raw)
		if err != nil || u.String() != want {
			t.Errorf("%s: %v, %v; want %s", raw, u, err, want)
		}
	}
	if _, err := parseServer("wss://u:p@h/mqtt"); err == nil {
		t.Error("credentials in a wss:// URL accepted")
	}
}

// FuzzParseServer: a server URL from the configuration never panics the
// parser, and what it accepts has a known scheme, a host and a port.
func FuzzParseServer(f *testing.F) {
	for _, s := range []string{"tcp://127.0.0.1:1883", "ssl://h", "ws://h/mqtt", "wss://[::1]:443/x?y", "ftp://x", "ws://", "wss://u:p@h", "tcp://h:99999", "://", "ws:/h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := parseServer(raw)
		if err != nil {
			return
		}
		if _, ok := defaultPorts[u.Scheme]; !ok && !tlsSchemes[u.Scheme] {
			t.Fatalf("%q: accepted scheme %q", raw, u.Scheme)
		}
		if u.Hostname() == "" || u.Port() == "" || u.User != nil {
			t.Fatalf("%q: accepted as %v", raw, u)
		}
		if strings.ContainsAny(u.Host, " \n") {
			t.Fatalf("%q: host %q", raw, u.Host)
		}
	})
}
