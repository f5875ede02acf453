package camera

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// The published examples of RFC 2617 (section 3.5) and RFC 7616 (section
// 3.9.1): our digest answers must match them to the byte.
func TestDigestRFCVectors(t *testing.T) {
	cases := []struct {
		name, challenge, user, pass, uri, cnonce, want string
	}{
		{"rfc2617", `realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"`,
			"Mufasa", "Circle Of Life", "/dir/index.html", "0a4f113b", "6629fae49393a05397450978507c4ef1"},
		{"rfc7616-md5", `realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`,
			"Mufasa", "Circle of Life", "/dir/index.html", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", "8ca523f5e9506fed4657c9700eebdbec"},
		{"rfc7616-sha256", `realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`,
			"Mufasa", "Circle of Life", "/dir/index.html", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ch, err := parseDigestChallenge(c.challenge)
			if err != nil {
				t.Fatal(err)
			}
			got := ch.authorize("GET", c.uri, c.user, c.pass, 1, c.cnonce)
			p := parseAuthParams(strings.TrimPrefix(got, "Digest "))
			if p["response"] != c.want {
				t.Fatalf("response %s, want %s\n%s", p["response"], c.want, got)
			}
			if p["nc"] != "00000001" || p["qop"] != "auth" || p["cnonce"] != c.cnonce || p["uri"] != c.uri || p["opaque"] == "" {
				t.Fatalf("header %s", got)
			}
		})
	}
}

func TestDigestChallengeParsing(t *testing.T) {
	p := parseAuthParams(`realm="a \"quoted\", realm", nonce=abc, qop="auth", stale=TRUE`)
	if p["realm"] != `a "quoted", realm` || p["nonce"] != "abc" || p["qop"] != "auth" || p["stale"] != "TRUE" {
		t.Fatalf("%q", p)
	}
	for _, bad := range []string{`realm="x"`, `nonce="n", algorithm=SHA-512`, `nonce="n", qop="auth-int"`} {
		if _, err := parseDigestChallenge(bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
	// No qop: the RFC 2069 answer, without nc and cnonce.
	ch, err := parseDigestChallenge(`realm="r", nonce="n"`)
	if err != nil {
		t.Fatal(err)
	}
	if h := ch.authorize("GET", "/", "u", "p", 1, "c"); strings.Contains(h, "nc=") || !strings.Contains(h, `response="`) {
		t.Fatal(h)
	}
	// A quote in the user name is escaped, not able to end the string.
	if h := ch.authorize("GET", "/", `a"b`, "p", 1, "c"); !strings.Contains(h, `username="a\"b"`) {
		t.Fatal(h)
	}
	if err := (&httpSource{}).learn([]string{`Bearer realm="x"`}); err == nil || !strings.Contains(err.Error(), "unsupported") {
		t.Fatalf("got %v", err)
	}
}

// Every configuration mistake is reported at once, each at its line, and
// no error quotes the password.
func TestConfigErrors(t *testing.T) {
	cases := []struct {
		config string
		want   []string
	}{
		{"device = \"\"\nsource = \"ftp\"\ntimeout = \"0s\"\nmax_size = \"100MB\"\n", []string{
			"test.toml:1: device: must not be empty",
			"test.toml:3: timeout: must be more than 0",
			"test.toml:4: max_size: want more than 0 and at most 32MiB, got 104857600 bytes",
			"test.toml:2: source: want http or serial, got \"ftp\""}},
		{"device = \"c\"\nurl = \"rtsp://cam/stream\"\npassword = \"Hidden-9\"\n", []string{
			"test.toml:2: url: want an http:// or https:// URL, got scheme \"rtsp\""}},
		{"device = \"c\"\n", []string{"test.toml:1: url: required with source = \"http\""}},
		{"device = \"c\"\nurl = \"http://u:Hidden-9@cam/%zz\"\n", []string{"test.toml:2: url: not a valid URL"}},
		{"device = \"c\"\nurl = \"https://cam/\"\ntls_ca = \"/nonexistent/ca.pem\"\n", []string{
			"test.toml:3: tls_ca: open /nonexistent/ca.pem: no such file or directory"}},
		{"device = \"c\"\nsource = \"serial\"\nbaud_rate = 0\nresolution = \"1024x768\"\n", []string{
			"test.toml:1: port: required with source = \"serial\"",
			"test.toml:3: baud_rate: must be more than 0, got 0",
			"test.toml:4: resolution: want 160x120, 320x240 or 640x480, got \"1024x768\""}},
		{"device = \"c\"\nzoom = 2\nurl = \"http://cam/\"\n", []string{"test.toml:2: zoom: unknown key"}},
	}
	for _, c := range cases {
		_, err := (&Camera{}).Init(context.Background(), sdktest.Request(c.config))
		var got []string
		for _, ce := range sdk.AsConfigErrors(err) {
			got = append(got, ce.Error())
		}
		if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
			t.Errorf("config:\n%s\ngot:\n%s\nwant:\n%s", c.config, strings.Join(got, "\n"), strings.Join(c.want, "\n"))
		}
		if err != nil && strings.Contains(err.Error(), "Hidden-9") {
			t.Errorf("error quotes the password: %v", err)
		}
	}
}

// The embedded sample is valid, and the README shows it as it is.
func TestSampleAndReadme(t *testing.T) {
	if _, err := (&Camera{}).Init(context.Background(), sdktest.Request(strings.Replace(sampleConf, "[[inputs.camera]]", "", 1))); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), strings.TrimSpace(sampleConf)) {
		t.Fatal("README.md does not show sample.conf as it is")
	}
}

func TestParseResponse(t *testing.T) {
	cases := []struct {
		in       string
		cmd      byte
		data     string
		consumed int
		err      error
	}{
		{"\x76\x00\x34\x00\x04\x00\x00\x12\x34", cmdGetFBufLen, "\x00\x00\x12\x34", 9, nil},
		{"Init end\r\n\x76\x00\x36\x00\x00rest", cmdFBufCtrl, "", 15, nil},
		{"\x76\x00\x34\x00\x04\x00\x00", cmdGetFBufLen, "", 0, errShort},
		{"garbage\x76\x00", cmdGetFBufLen, "", 7, errShort},
		{"garbage\x76", cmdGetFBufLen, "", 7, errShort},
		{"garbage", cmdGetFBufLen, "", 7, errShort},
		{"\x76\x00\x32\x00\x00\x76\x00\x36\x00\x00", cmdFBufCtrl, "", 10, nil}, // a late answer is skipped
		{"\x76\x00\x36\x04\x00", cmdFBufCtrl, "", 5, statusError{cmd: cmdFBufCtrl, status: 4}},
	}
	for _, c := range cases {
		data, n, err := parseResponse([]byte(c.in), c.cmd)
		if string(data) != c.data || n != c.consumed || !errors.Is(err, c.err) && err != c.err {
			t.Errorf("%q: got %q %d %v, want %q %d %v", c.in, data, n, err, c.data, c.consumed, c.err)
		}
	}
	if !bytes.Equal(readFBufCommand(0x1234, 2048), []byte{0x56, 0x00, 0x32, 0x0C, 0x00, 0x0A, 0, 0, 0x12, 0x34, 0, 0, 0x08, 0x00, 0x00, 0x0A}) {
		t.Errorf("READ_FBUF % x", readFBufCommand(0x1234, 2048))
	}
}

// FuzzParseResponse: whatever a serial line delivers, the parser never
// panics, consumes no more than it was given, and returns data that lies
// inside the input.
func FuzzParseResponse(f *testing.F) {
	f.Add([]byte("\x76\x00\x34\x00\x04\x00\x00\x12\x34"), byte(cmdGetFBufLen))
	f.Add([]byte("VC0703 1.00\r\nInit end\r\n\x76\x00\x26\x00\x00"), byte(cmdSystemReset))
	f.Add([]byte("\x76\x00\x32\x00\xff"), byte(cmdReadFBuf))
	f.Add([]byte("\x76\x00\x36\x05\x00"), byte(cmdFBufCtrl))
	f.Add([]byte("\x76\x76\x00\x30\x00\x01\x11"), byte(cmdReadData))
	f.Fuzz(func(t *testing.T, b []byte, cmd byte) {
		data, n, err := parseResponse(b, cmd)
		if n < 0 || n > len(b) {
			t.Fatalf("consumed %d of %d", n, len(b))
		}
		if err == nil {
			if n < 5+len(data) || !bytes.Equal(b[n-len(data):n], data) || b[n-len(data)-5] != vcResponse || b[n-len(data)-3] != cmd {
				t.Fatalf("data %x not the tail of a response to %#x in the %d bytes consumed of %x", data, cmd, n, b)
			}
		} else if len(data) != 0 {
			t.Fatalf("data %x with error %v", data, err)
		}
	})
}
