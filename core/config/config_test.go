package config

import (
	"context"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

type nop struct{}

func (nop) Init(context.Context, *sdk.InitRequest) (*sdk.InitResponse, error) {
	return &sdk.InitResponse{}, nil
}
func (nop) Close(context.Context) error { return nil }

func init() {
	sdk.Register(sdk.Registration{Kind: sdk.KindInput, Name: "cfgtest", Factory: func() sdk.Plugin { return nop{} }})
	sdk.Register(sdk.Registration{Kind: sdk.KindProcessor, Name: "cfgtest", Factory: func() sdk.Plugin { return nop{} }})
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestCutsPluginTablesKeepingLines(t *testing.T) {
	doc := `# site
[agent]
device_id = "GW-1"

[[inputs.cfgtest]]
alias = "bus1"
isolated = true
url = "tcp://${HOST}:502"   # from the environment
template = "${value}"

[[inputs.cfgtest.devices]]
name = "plc1"
[[inputs.cfgtest.devices.points]]
name = "t"

[[processors.cfgtest]]
`
	cfg, err := Parse("gw.toml", []byte(doc), env(map[string]string{"HOST": "10.0.0.5"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Agent.TopicPrefix != DefaultTopicPrefix || cfg.Agent.DeviceID != "GW-1" {
		t.Fatalf("agent: %+v", cfg.Agent)
	}
	in := cfg.Inputs[0]
	if in.ID != "bus1" || !in.Isolated || in.Line != 5 {
		t.Fatalf("plugin: %+v", in)
	}
	lines := strings.Split(string(in.Text()), "\n")
	want := map[int]string{1: "", 2: "", 3: "", 4: `url = "tcp://10.0.0.5:502"   # from the environment`, 5: `template = "${value}"`,
		7: "[[devices]]", 9: "[[devices.points]]"}
	for n, w := range want {
		if lines[n-1] != w {
			t.Errorf("text line %d (file line %d) = %q, want %q", n, n+4, lines[n-1], w)
		}
	}
	if len(cfg.Processors) != 1 || cfg.Processors[0].ID != "processors.cfgtest#1" {
		t.Fatalf("processors: %+v", cfg.Processors)
	}
}

func TestReportsEveryMistakeWithItsLine(t *testing.T) {
	doc := `[agent]
device_id = ""
topic_prefix = "no/slash"
colour = "red"

[[inputs.nosuch]]

[processors.cfgtest]

[[outputs.cfgtest]]
[[inputs.cfgtest]]
password = "${SECRET_NOT_SET}"
`
	_, err := Parse("gw.toml", []byte(doc), env(nil))
	if err == nil || !strings.Contains(err.Error(), "gw.toml:12: environment variable SECRET_NOT_SET is not set") {
		t.Fatalf("env error: %v", err)
	}
	doc = strings.Replace(doc, "${SECRET_NOT_SET}", "x", 1)
	_, err = Parse("gw.toml", []byte(doc), env(nil))
	got := err.Error()
	for _, want := range []string{
		"gw.toml:2: agent.device_id: is required",
		"gw.toml:3: agent.topic_prefix: must end with \"/\"",
		"gw.toml:4: agent.colour: unknown key",
		"gw.toml:6: unknown plugin inputs.nosuch",
		"gw.toml:8: write [[processors.cfgtest]] (double brackets)",
		"gw.toml:10: unknown plugin outputs.cfgtest",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}

func TestDeviceIDLength(t *testing.T) {
	id64 := strings.Repeat("网", 64)
	for _, tc := range []struct {
		id string
		ok bool
	}{{id64, true}, {id64 + "关", false}, {"GW-0001", true}, {"a/b", false}} {
		doc := "[agent]\ndevice_id = \"" + tc.id + "\"\n[[inputs.cfgtest]]\n"
		_, err := Parse("gw.toml", []byte(doc), env(nil))
		if (err == nil) != tc.ok {
			t.Errorf("device_id of %d characters: err=%v, want ok=%v", len([]rune(tc.id)), err, tc.ok)
		}
	}
}

func TestSyntaxErrorHasLine(t *testing.T) {
	_, err := Parse("gw.toml", []byte("[agent]\ndevice_id = \"x\"\nbroken = = 1\n"), env(nil))
	if err == nil || !strings.HasPrefix(err.Error(), "gw.toml:3: ") {
		t.Fatalf("got %v", err)
	}
}

func TestSyntaxErrorDoesNotQuoteSubstitutedValue(t *testing.T) {
	doc := "[agent]\ndevice_id = \"x\"\npassword = ${PW}\n"
	_, err := Parse("gw.toml", []byte(doc), env(map[string]string{"PW": "hunter2"}))
	if err == nil || strings.Contains(err.Error(), "hunt") || !strings.Contains(err.Error(), "gw.toml:3: ") {
		t.Fatalf("want a syntax error at line 3 without the value, got %v", err)
	}
}

func TestExternalPluginConfig(t *testing.T) {
	doc := `[agent]
device_id = "x"
[[inputs.external]]
command = "/opt/p"
sha256 = "ABCDEF"
stray = 1
[inputs.external.config]
rate = 5
[inputs.external.config.sub]
a = 1
`
	cfg, err := Parse("gw.toml", []byte(doc), env(nil))
	if err == nil || !strings.Contains(err.Error(), "gw.toml:5: inputs.external.sha256: want 64 hexadecimal digits") ||
		!strings.Contains(err.Error(), "gw.toml:6: inputs.external.stray: unknown key") {
		t.Fatalf("got %v", err)
	}
	p := cfg.Inputs[0]
	lines := strings.Split(string(p.Text()), "\n")
	if lines[5] != "rate = 5" || lines[6] != "[sub]" || lines[1] != "" || !p.Isolated {
		t.Fatalf("external text: %q", lines)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("[agent]\ndevice_id = \"x\"\n[[inputs.cfgtest]]\nalias = \"a\"\n[[inputs.cfgtest.d]]\nx = [\n[1],\n]\n"))
	f.Add([]byte("[agent]\ndevice_id = ${UNSET}\ndata_dir = [\n1,\n]\nlog_level = 3\nlog_levl = \"x\"\nx = \"${B}\" ${C}\n"))
	f.Add([]byte("a = '''\n[x]\n'''\n[[inputs.external]]\n[inputs.external.config]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = Parse("f.toml", data, env(map[string]string{"A": "\"x"}))
	})
}

func TestEnvInCommentsIsLeftAlone(t *testing.T) {
	doc := "[agent]\ndevice_id = \"${ID}\" # not ${UNSET}\n# password = \"${UNSET}\"\n[[inputs.cfgtest]]\nnote = \"a # b ${ID}\"\n"
	cfg, err := Parse("gw.toml", []byte(doc), env(map[string]string{"ID": "GW-9"}))
	if err != nil || cfg.Agent.DeviceID != "GW-9" || !strings.Contains(string(cfg.Inputs[0].Text()), `note = "a # b GW-9"`) {
		t.Fatalf("%v %+v", err, cfg)
	}
}

func TestErrorsNeverShowSubstitutedValues(t *testing.T) {
	doc := "[agent]\ndevice_id = \"GW\"\nlog_level = \"${PW}\"\n[[inputs.cfgtest]]\n"
	_, err := Parse("gw.toml", []byte(doc), env(map[string]string{"PW": "hunter2-secret"}))
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "${PW}") {
		t.Fatalf("got %v", err)
	}
}

// An unset variable is reported with the other mistakes of the file, not
// instead of them, quoted or not; nothing else is said about its line.
func TestUnsetVariableDoesNotHideTheRest(t *testing.T) {
	doc := "[agent]\ndevice_id = \"GW-1\"\nlog_level = \"loud\"\n[[inputs.cfgtest]]\nalias = ${EP_NO_ALIAS}\n[agent2]\nx = \"${EP_NO_HOST}:1\"\n"
	cfg, err := Parse("gw.toml", []byte(doc), env(nil))
	if cfg == nil {
		t.Fatalf("no configuration: %v", err)
	}
	want := "gw.toml:3: agent.log_level: want debug, info, warn or error, got \"loud\"\n" +
		"gw.toml:5: environment variable EP_NO_ALIAS is not set\n" +
		"gw.toml:6: unknown table \"agent2\"; want [agent], [[inputs.NAME]], [[processors.NAME]] or [[outputs.NAME]]\n" +
		"gw.toml:7: environment variable EP_NO_HOST is not set"
	if err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
}

// A misspelt plugin name gets the nearest built-in as a suggestion.
func TestUnknownPluginSuggestsTheNearest(t *testing.T) {
	_, err := Parse("gw.toml", []byte("[agent]\ndevice_id = \"GW-1\"\n[[inputs.cfgtets]]\n"), env(nil))
	if err == nil || !strings.Contains(err.Error(), "gw.toml:3: unknown plugin inputs.cfgtets (see `edgepipe plugins`); did you mean inputs.cfgtest?") {
		t.Fatal(err)
	}
}
