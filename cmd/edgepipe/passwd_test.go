package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestPasswdPrintsABcryptHash(t *testing.T) {
	defer func(r io.Reader) { stdin = r }(stdin)
	stdin = strings.NewReader("correct horse\n")
	var out, errb bytes.Buffer
	if code := dispatch([]string{"passwd", "--cost", "4"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	hash := strings.TrimSpace(out.String())
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte("correct horse")) != nil || strings.Contains(out.String(), "horse") {
		t.Fatalf("hash %q", hash)
	}
	stdin = strings.NewReader("")
	out.Reset()
	if code := dispatch([]string{"passwd"}, &out, &errb); code != 1 || out.Len() != 0 {
		t.Fatalf("empty password: exit %d, %q", code, out.String())
	}
	if code := dispatch([]string{"passwd", "--cost", "99"}, &out, &errb); code != 2 {
		t.Fatalf("bad cost: exit %d", code)
	}
}

// check refuses a console reachable from the network without a password,
// and takes it with the hash `edgepipe passwd` printed.
func TestCheckRefusesNetworkConsoleWithoutPassword(t *testing.T) {
	doc := "[agent]\ndevice_id = \"GW-1\"\nhttp_listen = \"0.0.0.0:9273\"\n%s[[inputs.synthetic]]\n"
	var out, errb bytes.Buffer
	path := writeConfig(t, fmt.Sprintf(doc, ""))
	if code := dispatch([]string{"check", "--config", path}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), path+":3: agent.http_listen: \"0.0.0.0:9273\" is reachable from the network") {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	defer func(r io.Reader) { stdin = r }(stdin)
	stdin = strings.NewReader("pw\n")
	out.Reset()
	if dispatch([]string{"passwd", "--cost", "4"}, &out, &errb) != 0 {
		t.Fatal(errb.String())
	}
	path = writeConfig(t, fmt.Sprintf(doc, "[agent.console]\npassword_hash = \""+strings.TrimSpace(out.String())+"\"\n"))
	errb.Reset()
	out.Reset()
	if code := dispatch([]string{"check", "--config", path}, &out, &errb); code != 0 {
		t.Fatalf("with a password: exit %d: %s", code, errb.String())
	}
	if strings.Contains(out.String(), "$2a$") {
		t.Fatalf("check prints the hash: %s", out.String())
	}
}
