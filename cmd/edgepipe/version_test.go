package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionStampedByLdflagsWins(t *testing.T) {
	defer func(v, c string) { version, commit = v, c }(version, commit)
	version, commit = "1.2.3", "abc1234"
	code, out, _ := run(t, "version")
	if code != 0 || !strings.HasPrefix(out, "edgepipe 1.2.3 (commit abc1234, go") {
		t.Fatalf("exit %d: %q", code, out)
	}
}

func TestVersionFromBuildInfo(t *testing.T) {
	vcs := func(rev, modified string) *debug.BuildInfo {
		return &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}}
	}
	for _, tc := range []struct {
		name, ver, rev string
		info           *debug.BuildInfo
		wantV, wantR   string
	}{
		{"nothing recorded", "", "", &debug.BuildInfo{}, "dev", "unknown"},
		{"clean checkout", "", "", vcs("0123456789abcdef0123", "false"), "dev", "0123456789ab"},
		{"modified checkout", "", "", vcs("0123456789abcdef0123", "true"), "dev", "0123456789ab-dirty"},
		{"go install at a tag", "", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, "v1.4.0", "unknown"},
		{"stamped wins", "1.5.0", "feedbee", vcs("0123456789abcdef0123", "true"), "1.5.0", "feedbee"},
	} {
		v, r := versionFrom(tc.ver, tc.rev, tc.info, true)
		if v != tc.wantV || r != tc.wantR {
			t.Errorf("%s: got %q %q, want %q %q", tc.name, v, r, tc.wantV, tc.wantR)
		}
	}
}

// An unstamped build from a checkout names its commit: the fallback on the
// module's build information that `go build -buildvcs=true` records.
func TestVersionFallsBackToBuildInfo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skip("not a git checkout:", err)
	}
	bin := filepath.Join(t.TempDir(), "edgepipe")
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if info, err := exec.Command("go", "version", "-m", bin).Output(); err == nil && !strings.Contains(string(info), "vcs.revision=") {
		// The toolchain records nothing in a git worktree (.git is a file).
		t.Skip("the Go toolchain recorded no VCS revision in this checkout")
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := "(commit " + strings.TrimSpace(string(head))[:12]
	// The version is "dev", or the pseudo-version Go derives from the
	// commit (Go 1.24 and later); either way the commit is named.
	if !strings.HasPrefix(string(out), "edgepipe ") || !strings.Contains(string(out), want) {
		t.Fatalf("version printed %q, want %q", out, want)
	}
}
