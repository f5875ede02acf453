package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/core/isolate"
	"github.com/edgepipe/edgepipe/internal/testbroker"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

func TestMain(m *testing.M) {
	isolate.MaybeServe()
	// Re-executed by a test as the edgepipe binary (see edgepipe()).
	if os.Getenv("EDGEPIPE_TEST_AS_MAIN") == "1" {
		os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// edgepipe returns a command running this test binary as edgepipe itself
// with args: a real child process without building the binary.
func edgepipe(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "EDGEPIPE_TEST_AS_MAIN=1")
	return cmd
}

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := dispatch(args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeConfig(t *testing.T, doc string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gw.toml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheckPrintsEveryMistakeWithFileAndLine(t *testing.T) {
	path := writeConfig(t, `[agent]
device_id = "GW-1"
log_level = "loud"

[[inputs.synthetic]]
points = 2
pattern = "zigzag"
isolated = true

[[inputs.synthetic]]
device = "b"
colour = "blue"

[[outputs.file]]
buffer = "tape"
`)
	code, stdout, stderr := run(t, "check", "--config", path)
	if code != 1 || stdout != "" {
		t.Fatalf("exit %d, stdout %q", code, stdout)
	}
	for _, want := range []string{
		path + ":3: agent.log_level: want debug, info, warn or error",
		path + ":7: inputs.synthetic#1.pattern: want sine, counter, random or constant",
		path + ":12: inputs.synthetic#2.colour: unknown key",
		path + ":15: outputs.file.buffer: want disk, memory or none",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("missing %q in:\n%s", want, stderr)
		}
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(path) + `:\d+: `)
	for _, l := range lines {
		if !re.MatchString(l) {
			t.Errorf("line without FILE:LINE: %q", l)
		}
	}
}

func TestCheckDeviceIDLimit(t *testing.T) {
	for _, tc := range []struct {
		n    int
		code int
	}{{64, 0}, {65, 1}} {
		id := strings.Repeat("设", tc.n)
		path := writeConfig(t, "[agent]\ndevice_id = \""+id+"\"\ndata_dir = \""+t.TempDir()+"\"\n[[inputs.synthetic]]\n")
		code, stdout, stderr := run(t, "check", "--config", path)
		if code != tc.code {
			t.Fatalf("%d-character device_id: exit %d, want %d\n%s%s", tc.n, code, tc.code, stdout, stderr)
		}
		if tc.code == 1 && !strings.Contains(stderr, path+":2: agent.device_id: is 65 characters long") {
			t.Fatalf("stderr: %s", stderr)
		}
		if tc.code == 0 && !strings.Contains(stdout, "sim1.p0") {
			t.Fatalf("check output lists no points:\n%s", stdout)
		}
	}
}

func TestOnceWorksWithoutOutputs(t *testing.T) {
	path := writeConfig(t, "[agent]\ndevice_id = \"GW-1\"\n[[inputs.synthetic]]\npoints = 2\nisolated = true\n")
	code, stdout, stderr := run(t, "once", "--config", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if _, ok := sdk.Lookup("processors.template"); ok && !strings.HasPrefix(stdout, "Topic/flexem/fbox/GW-1/data\t{") {
		t.Fatalf("once printed %q", stdout)
	}
}

// Every built-in's sample configuration must be accepted as it is: the
// samples are documentation users copy.
func TestEverySampleConfigIsValid(t *testing.T) {
	code, all, _ := run(t, "config")
	if code != 0 {
		t.Fatal("config failed")
	}
	all = strings.Replace(all, `data_dir = "./data"`, `data_dir = "`+t.TempDir()+`"`, 1)
	code, stdout, stderr := run(t, "check", "--config", writeConfig(t, all))
	if code != 0 {
		t.Fatalf("the samples of `edgepipe config` do not check:\n%s%s", stdout, stderr)
	}
	for _, r := range sdk.Registered("") {
		if r.SampleConfig == "" {
			t.Errorf("%s has no sample configuration", r.FullName())
		}
	}
}

func TestUnknownCommand(t *testing.T) {
	if code, _, stderr := run(t, "fly"); code != 2 || !strings.Contains(stderr, `unknown command "fly"`) {
		t.Fatalf("%d %s", code, stderr)
	}
}

// The example site configuration in etc/ must check, with its TLS files in
// place and its password in the environment.
func TestSiteExampleConfigChecks(t *testing.T) {
	doc, err := os.ReadFile("../../etc/edgepipe.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca := testbroker.NewCA(t, "site")
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer("/etc/edgepipe/tls/", dir+"/", "/var/lib/edgepipe", t.TempDir()).Replace(string(doc))
	t.Setenv("MQTT_PASSWORD", "s3cret-site-password")
	code, stdout, stderr := run(t, "check", "--config", writeConfig(t, text))
	if code != 0 {
		t.Fatalf("etc/edgepipe.toml does not check:\n%s%s", stdout, stderr)
	}
	for _, want := range []string{"boiler.setpoint", "pubsub", "meter2.energy", "customer"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("check output lacks %q", want)
		}
	}
	if strings.Contains(stdout+stderr, "s3cret-site-password") {
		t.Fatal("check printed the password")
	}
}

// Every built-in has a README whose configuration block is its sample.
func TestEveryPluginReadmeShowsItsSample(t *testing.T) {
	for _, r := range sdk.Registered("") {
		path := filepath.Join("..", "..", "plugins", string(r.Kind), r.Name, "README.md")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v", r.FullName(), err)
			continue
		}
		if !strings.Contains(string(b), strings.TrimSpace(r.SampleConfig)) {
			t.Errorf("%s: README.md does not show sample.conf as it is", r.FullName())
		}
	}
}

// A password put in the wrong key must not be printed by the plugin's
// error about that key.
func TestCheckRedactsSubstitutedValuesInPluginErrors(t *testing.T) {
	t.Setenv("EP_TEST_PW", "hunter2-secret")
	path := writeConfig(t, "[agent]\ndevice_id = \"GW-1\"\n[[inputs.synthetic]]\npattern = \"${EP_TEST_PW}\"\nisolated = true\n")
	code, stdout, stderr := run(t, "check", "--config", path)
	if code != 1 || strings.Contains(stdout+stderr, "hunter2") || !strings.Contains(stderr, path+":4: inputs.synthetic#1.pattern:") ||
		!strings.Contains(stderr, "${EP_TEST_PW}") {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
}

// Ten different mistakes over agent, inputs, processors and outputs: one
// run of check reports them all (two wrong types in one table, an unset
// variable among the rest), each as FILE:LINE: message, sorted by line,
// with suggestions for the misspelt names.
func TestCheckReportsTenMistakesInOneRunSorted(t *testing.T) {
	path := writeConfig(t, `[agent]
device_id = "GW-1"
log_levl = "info"
data_dir = 5

[[inputs.modbus]]
url = "tcp://127.0.0.1:5020"
timeout = 5
retries = "two"
  [[inputs.modbus.devices]]
  name = "plc1"
  [[inputs.modbus.devices.points]]
  name = "t"
  area = "holding"
  address = 0
  tpye = "float32"

[[inputs.synthetic]]
device = "${EP_CHECK_UNSET}"
points = 2

[[inputs.modbsu]]

[[processors.deadband]]
points = ["*"]
absolut = 0.5

[[processors.alarm]]
[[processors.alarm.rules]]
name = "hot"
point = "sim1.p0"
condition = "value > 90"
delay = 5

[[outputs.mqtt]]
servers = ["tcp://127.0.0.1:1883"]
qos = 7
`)
	code, stdout, stderr := run(t, "check", "--config", path)
	if code != 1 || stdout != "" {
		t.Fatalf("exit %d, stdout %q", code, stdout)
	}
	want := []string{
		`3: agent.log_levl: unknown key; did you mean "log_level"?`,
		`4: agent.data_dir: incompatible types`,
		`8: inputs.modbus#1.timeout: duration "5": want a number with a unit`,
		`9: inputs.modbus#1.retries: incompatible types`,
		`16: inputs.modbus#1.devices[0].points[0].tpye: unknown key; did you mean "type"?`,
		`19: environment variable EP_CHECK_UNSET is not set`,
		`22: unknown plugin inputs.modbsu (see ` + "`edgepipe plugins`" + `); did you mean inputs.modbus?`,
		`26: processors.deadband#1.absolut: unknown key; did you mean "absolute"?`,
		`33: processors.alarm#1.rules[0].delay: duration "5"`,
		`37: outputs.mqtt#1.qos:`,
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d errors reported, want %d:\n%s", len(lines), len(want), stderr)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], path+":"+w) {
			t.Errorf("error %d:\n got %s\nwant %s:%s...", i+1, lines[i], path, w)
		}
	}
}

// Valid but likely wrong: overlapping Modbus registers and a deadband
// before an alarm rule with a delay are printed as warnings, in line
// order, and check still succeeds.
func TestCheckWarnsDeadbandBeforeDelayedAlarm(t *testing.T) {
	path := writeConfig(t, `[agent]
device_id = "GW-1"
data_dir = "`+t.TempDir()+`"

[[inputs.modbus]]
url = "tcp://127.0.0.1:5020"
  [[inputs.modbus.devices]]
  name = "plc1"
  [[inputs.modbus.devices.points]]
  name = "temperature"
  area = "holding"
  address = 0
  type = "float32"
  [[inputs.modbus.devices.points]]
  name = "pressure"
  area = "holding"
  address = 1

[[processors.deadband]]
points = ["plc1.*"]
absolute = 0.5

[[processors.alarm]]
[[processors.alarm.rules]]
name = "hot"
point = "plc1.temperature"
condition = "value > 90"
delay = "5s"
[[processors.alarm.rules]]
name = "now"
point = "plc1.pressure"
condition = "value > 9"
`)
	code, stdout, stderr := run(t, "check", "--config", path)
	if code != 0 || !strings.Contains(stdout, "OK") {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	want := []string{
		path + `:17: warning: inputs.modbus#1.devices[0].points[1].address: point "pressure" (holding 1) overlaps point "temperature" (holding 0-1)`,
		path + `:28: warning: processors.alarm#1.rules[0].delay: rule "hot" waits 5s for its condition, but processors.deadband#1 (line 19) before it`,
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) != len(want) {
		t.Fatalf("stderr:\n%s", stderr)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("warning %d:\n got %s\nwant %s...", i+1, lines[i], w)
		}
	}
	// The alarm first: no warning about the chain.
	doc, _ := os.ReadFile(path)
	s := string(doc)
	db := s[strings.Index(s, "[[processors.deadband]]"):strings.Index(s, "[[processors.alarm]]")]
	s = strings.Replace(s, db, "", 1) + "\n" + db
	_, _, stderr = run(t, "check", "--config", writeConfig(t, s))
	if strings.Contains(stderr, "rules[0].delay") {
		t.Fatalf("alarm before deadband warned:\n%s", stderr)
	}
}

// check shows sample messages only for what is configured: alarm messages
// for the rules (with their names and messages), pictures for the
// cameras, and neither without them.
func TestCheckSamplesOnlyWhatIsConfigured(t *testing.T) {
	base := "[agent]\ndevice_id = \"GW-1\"\ndata_dir = \"" + t.TempDir() + "\"\n[[inputs.synthetic]]\ndevice = \"boiler\"\npoints = 1\n"
	samples := func(doc string) string {
		t.Helper()
		code, stdout, stderr := run(t, "check", "--config", writeConfig(t, doc))
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
		}
		_, s, _ := strings.Cut(stdout, "Sample messages:\n")
		return s
	}
	s := samples(base)
	if !strings.Contains(s, "/GW-1/data\t") || strings.Contains(s, "/alarm\t") || strings.Contains(s, "/image/") {
		t.Fatalf("nothing but data configured, samples:\n%s", s)
	}
	s = samples(base + `[[inputs.camera]]
device = "cam1"
source = "http"
url = "http://127.0.0.1:1/snapshot.jpg"
interval = "0s"
[[processors.alarm]]
[[processors.alarm.rules]]
name = "too_hot"
point = "boiler.p0"
condition = "value > 90"
level = "critical"
message = "boiler at ${value}"
`)
	for _, want := range []string{`"rule":"too_hot","point":"boiler.p0","level":"critical"`, `"message":"boiler at 21.5"`, "/GW-1/image/cam1\t"} {
		if !strings.Contains(s, want) {
			t.Errorf("samples lack %s:\n%s", want, s)
		}
	}
	if strings.Contains(s, "sample_rule") || strings.Contains(s, "sample_camera") {
		t.Errorf("made-up sample events:\n%s", s)
	}
}
