package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/blakesmith/ar"
	rpmutils "github.com/sassoftware/go-rpmutils"
)

// entry is what a package says about one installed path.
type entry struct {
	mode         os.FileMode // permission bits
	owner, group string
}

// want is the layout both packages must install.
var want = map[string]entry{
	BinPath:        {0o755, "root", "root"},
	UnitPath:       {0o644, "root", "root"},
	ConfigDir:      {0o750, "root", "edgepipe"},
	ConfigPath:     {0o640, "root", "edgepipe"},
	StateDir:       {0o750, "edgepipe", "edgepipe"},
	CompletionPath: {0o644, "root", "root"},
}

var (
	buildOnce sync.Once
	built     map[string]string // format -> path
	buildErr  error
)

// packages builds the host architecture's binary and packages once per
// test binary, the way the release command does.
func packages(t *testing.T) map[string]string {
	t.Helper()
	buildOnce.Do(func() {
		name := map[string]string{"amd64": "amd64", "arm64": "arm64", "arm": "armv7"}[runtime.GOARCH]
		if name == "" {
			name = "amd64"
		}
		dir, err := os.MkdirTemp("", "edgepipe-release")
		if err != nil {
			buildErr = err
			return
		}
		r := release{Root: "..", Out: dir, Version: "0.0.1-test", Commit: gitCommit("..")}
		paths, err := r.build(name, targets[name], []string{"deb", "rpm"})
		if err != nil {
			buildErr = err
			return
		}
		built = map[string]string{"bin": paths[0], "deb": paths[1], "rpm": paths[2]}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built != nil {
		os.RemoveAll(filepath.Dir(filepath.Dir(built["bin"])))
	}
	os.Exit(code)
}

// debFiles reads a .deb's data and control archives.
func debFiles(t *testing.T, path string) (data map[string]entry, control map[string]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data, control = map[string]entry{}, map[string]string{}
	rd := ar.NewReader(f)
	for {
		h, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if !strings.HasSuffix(name, ".tar.gz") {
			continue
		}
		zr, err := gzip.NewReader(rd)
		if err != nil {
			t.Fatal(name, err)
		}
		tr := tar.NewReader(zr)
		for {
			th, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(name, err)
			}
			p := "/" + strings.Trim(strings.TrimPrefix(th.Name, "./"), "/")
			if strings.HasPrefix(name, "data.") {
				data[p] = entry{os.FileMode(th.Mode).Perm(), th.Uname, th.Gname}
			} else {
				b, _ := io.ReadAll(tr)
				control[strings.TrimPrefix(p, "/")] = string(b)
			}
		}
	}
	return data, control
}

func TestDebInstallsBinaryUnitConfigAndStateDir(t *testing.T) {
	data, control := debFiles(t, packages(t)["deb"])
	for p, w := range want {
		if got, ok := data[p]; !ok || got != w {
			t.Errorf("%s: got %+v (present %v), want %+v", p, got, ok, w)
		}
	}
	if !strings.Contains(control["conffiles"], ConfigPath) {
		t.Errorf("the configuration is not a conffile (an upgrade would overwrite local edits):\n%s", control["conffiles"])
	}
	setup, err := os.ReadFile("scripts/setup.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"preinst", "postinst"} {
		if control[s] != string(setup) {
			t.Errorf("%s is not scripts/setup.sh", s)
		}
	}
	if !regexp.MustCompile(`(?m)^Architecture: `).MatchString(control["control"]) {
		t.Errorf("control: %s", control["control"])
	}
}

func TestRPMInstallsTheSameLayout(t *testing.T) {
	f, err := os.Open(packages(t)["rpm"])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rpm, err := rpmutils.ReadRpm(f)
	if err != nil {
		t.Fatal(err)
	}
	fis, err := rpm.Header.GetFiles()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]entry{}
	for _, fi := range fis {
		got[fi.Name()] = entry{os.FileMode(fi.Mode()).Perm(), fi.UserName(), fi.GroupName()}
	}
	for p, w := range want {
		if g, ok := got[p]; !ok || g != w {
			t.Errorf("%s: got %+v (present %v), want %+v", p, g, ok, w)
		}
	}
}

func TestBinaryIsStaticAndStamped(t *testing.T) {
	bin := packages(t)["bin"]
	if out, err := exec.Command("go", "version", "-m", bin).Output(); err != nil || !strings.Contains(string(out), "CGO_ENABLED=0") {
		t.Errorf("not built with CGO_ENABLED=0: %v\n%s", err, out)
	}
	if runtime.GOOS != "linux" {
		return
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "edgepipe 0.0.1-test (commit "+gitCommit("..")) {
		t.Fatalf("version: %v %q", err, out)
	}
}

// sandbox runs script as root in a private mount namespace where /usr, /etc
// and /var are overlays on temporary directories: a package or a manual
// install happens for real (dpkg, useradd, chown) and vanishes afterwards.
func sandbox(t *testing.T, script string, env ...string) string {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root (a mount namespace with overlays)")
	}
	for _, tool := range []string{"unshare", "runuser", "useradd"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skip(tool, "is not installed")
		}
	}
	dir := t.TempDir()
	var pre strings.Builder
	pre.WriteString("set -e\nmount --make-rprivate /\n")
	for _, d := range []string{"usr", "etc", "var"} {
		up, work := filepath.Join(dir, d+".up"), filepath.Join(dir, d+".work")
		pre.WriteString("mkdir -p " + up + " " + work + "\n")
		pre.WriteString("mount -t overlay overlay -o lowerdir=/" + d + ",upperdir=" + up + ",workdir=" + work + " /" + d + "\n")
	}
	cmd := exec.Command("unshare", "--mount", "sh", "-c", pre.String()+script)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "overlay") || strings.Contains(string(out), "unshare:") {
			t.Skipf("no overlay mounts here: %v\n%s", err, out)
		}
		t.Fatalf("%v\n%s", err, out)
	}
	return string(out)
}

// inspect prints, inside the sandbox, what the service user can do.
const inspect = `
echo "groups: $(id -nG edgepipe)"
for p in /usr/bin/edgepipe /etc/edgepipe /etc/edgepipe/edgepipe.toml /var/lib/edgepipe; do echo "stat: $p $(stat -c '%a %U:%G' $p)"; done
runuser -u edgepipe -- cat /etc/edgepipe/edgepipe.toml >/dev/null && echo "service reads config: yes"
runuser -u edgepipe -- touch /var/lib/edgepipe/probe && echo "service writes state: yes"
if runuser -u nobody -- cat /etc/edgepipe/edgepipe.toml >/dev/null 2>&1; then echo "others read config: yes"; else echo "others read config: no"; fi
runuser -u edgepipe -- /usr/bin/edgepipe version
`

func checkInstalled(t *testing.T, out string) {
	t.Helper()
	for _, w := range []string{
		"stat: /usr/bin/edgepipe 755 root:root",
		"stat: /etc/edgepipe 750 root:edgepipe",
		"stat: /etc/edgepipe/edgepipe.toml 640 root:edgepipe",
		"stat: /var/lib/edgepipe 750 edgepipe:edgepipe",
		"service reads config: yes",
		"service writes state: yes",
		"others read config: no",
		"edgepipe ",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("missing %q in:\n%s", w, out)
		}
	}
	m := regexp.MustCompile(`groups: (.*)`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(" "+m[1]+" ", " dialout ") || !strings.Contains(" "+m[1]+" ", " edgepipe ") {
		t.Errorf("user edgepipe is not in edgepipe and dialout: %q", m)
	}
}

// The README's package install, for real: dpkg -i runs the package's
// scripts; the service user then reads its configuration.
func TestDebInstallLetsTheServiceUserReadItsConfig(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("dpkg is not installed")
	}
	deb := packages(t)["deb"]
	out := sandbox(t, "dpkg -i "+deb+" >/dev/null\n"+inspect+"\ndpkg -i "+deb+" >/dev/null && echo 'upgrade: ok'\n")
	checkInstalled(t, out)
	if !strings.Contains(out, "upgrade: ok") {
		t.Errorf("reinstalling failed:\n%s", out)
	}
}

// readmeBlock returns the shell block of README.md that follows marker.
func readmeBlock(t *testing.T, marker string) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, marker)
	if i < 0 {
		t.Fatalf("README.md has no %q", marker)
	}
	s = s[i:]
	start := strings.Index(s, "```sh\n")
	end := strings.Index(s[start+6:], "```")
	if start < 0 || end < 0 {
		t.Fatalf("no ```sh block after %q", marker)
	}
	return s[start+6 : start+6+end]
}

// The README's manual install, line by line from the README, with the
// repository's files and a freshly built binary; systemctl, which needs a
// running systemd, is recorded instead of run.
func TestReadmeManualInstallLetsTheServiceUserReadItsConfig(t *testing.T) {
	block := readmeBlock(t, "<!-- manual install: checked by packaging/package_test.go -->")
	bin := packages(t)["bin"]
	stub := t.TempDir()
	if err := os.WriteFile(filepath.Join(stub, "systemctl"), []byte("#!/bin/sh\necho \"systemctl $*\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// The block's first line builds the binary; use the one already built.
	block = regexp.MustCompile(`(?m)^.*go build .*$`).ReplaceAllString(block, "cp "+bin+" edgepipe")
	script := "export PATH=" + stub + ":$PATH\nwork=$(mktemp -d)\ncp -r " + root + "/etc " + root + "/packaging $work/\ncd $work\n" + block + "\n" + inspect
	out := sandbox(t, script)
	checkInstalled(t, out)
	if !strings.Contains(out, "systemctl enable --now edgepipe") {
		t.Errorf("the manual install does not enable the service:\n%s", out)
	}
}

// The unit must score 2.0 or lower ("OK") in systemd-analyze security.
func TestUnitIsHardened(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed (Debian: apt-get install systemd)")
	}
	out, err := exec.Command("systemd-analyze", "security", "--offline=true", "--no-pager", "../etc/edgepipe.service").CombinedOutput()
	if err != nil && !bytes.Contains(out, []byte("Overall exposure level")) {
		t.Fatalf("%v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no score in:\n%s", out)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("systemd-analyze security: %.1f", score)
	if score > 2.0 {
		t.Fatalf("exposure %.1f > 2.0:\n%s", score, out)
	}
	unit, err := os.ReadFile("../etc/edgepipe.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"Type=notify", "WatchdogSec=", "User=edgepipe", "SupplementaryGroups=dialout",
		"DeviceAllow=char-ttyS rw", "DeviceAllow=char-ttyUSB rw", "DeviceAllow=char-ttyACM rw", "ExecStart=" + BinPath + " run"} {
		if !bytes.Contains(unit, []byte(w)) {
			t.Errorf("unit lacks %q", w)
		}
	}
	if bytes.Contains(unit, []byte("PrivateUsers=yes")) || bytes.Contains(unit, []byte("PrivateDevices=yes")) {
		t.Error("PrivateUsers hides dialout and PrivateDevices hides the serial ports")
	}
}
