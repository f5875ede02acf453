package main

import (
	"flag"
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

func init() {
	register(command{name: "version", summary: "print version, commit and Go version",
		usage: "Usage: edgepipe version   (or edgepipe --version)\n\nPrints the version, the commit, the Go version and the plugin protocol version.",
		flags: func() *flag.FlagSet { return newFlags("version") },
		run: func(args []string, stdout, stderr io.Writer) int {
			if !parseFlags(newFlags("version"), args, 0, stderr) {
				return exitUsage
			}
			ver, rev := buildVersion()
			fmt.Fprintf(stdout, "edgepipe %s (commit %s, %s, plugin protocol %d)\n", ver, rev, runtime.Version(), sdk.ProtocolVersion)
			return exitOK
		}})
	register(command{name: "plugins", summary: "list the built-in plugins",
		usage: "Usage: edgepipe plugins\n\nLists the built-in plugins with a one-line description each.",
		run: func(args []string, stdout, stderr io.Writer) int {
			if !parseFlags(newFlags("plugins"), args, 0, stderr) {
				return exitUsage
			}
			for _, r := range sdk.Registered("") {
				fmt.Fprintf(stdout, "%-22s %s\n", r.FullName(), r.Description)
			}
			return exitOK
		}})
	register(command{name: "config", summary: "print a sample configuration: `edgepipe config [inputs.modbus ...]`",
		usage: "Usage: edgepipe config [PLUGIN...]\n\nPrints a sample configuration: [agent] and every built-in plugin, or only the\nnamed ones (inputs.modbus, outputs.mqtt; see `edgepipe plugins`).",
		run:   runConfig})
}

const agentSample = `# edgepipe configuration. Durations are strings ("500ms", "60s"), sizes too
# ("64MB", binary: 1 MB = 1,048,576 bytes); ${VAR} (upper case) is taken from the environment.
[agent]
  ## Device ID: the MQTT ClientID and part of every topic; 1-64 UTF-8 characters.
  device_id = "GW-0001"
  ## Prefix of every topic; must end with "/".
  topic_prefix = "Topic/flexem/fbox/"
  ## Where queues and plugin state are kept.
  data_dir = "./data"
  ## debug | info | warn | error; a reload (SIGHUP) applies a new level.
  log_level = "info"
  ## text | json (one object per line, for a log collector)
  log_format = "text"
  ## /metrics, /healthz, the console and the API (/api/v1); "" disables.
  ## A listen address reachable from the network needs
  ## [agent.console] password_hash.
  http_listen = "127.0.0.1:9273"
  ## Commands from the server larger than this are refused unparsed
  ## (sizes are binary: 64KB = 65,536 bytes).
  max_command_size = "64KB"
  ## Remote configuration: the server may get and set this configuration
  ## over MQTT (SPEC 9, README "Remote configuration"); off by default.
  [agent.remote]
    enabled = false
    ## base64 of raw 32-byte ed25519 public keys; when set, only sets
    ## signed by one of them are taken.
    # public_keys = ["..."]
    ## Trial of a set that names no confirm; "0s": final at once.
    confirm_default = "0s"

## The local console and API on http_listen. Without password_hash they
## answer on loopback only.
[agent.console]
  ## false serves /metrics and /healthz alone.
  enabled = true
  username = "admin"
  ## bcrypt hash printed by "edgepipe passwd"; needed for a non-loopback http_listen.
  # password_hash = "$2a$10$..."
  ## HTTPS on http_listen.
  # tls_cert = "/etc/edgepipe/console.crt"
  # tls_key = "/etc/edgepipe/console.key"
  ## Bearer tokens for scripts: the SHA-256 of the token (echo -n TOKEN | sha256sum).
  # [[agent.console.tokens]]
  #   name = "grafana"
  #   sha256 = "<64 hex digits>"
  #   access = "read"               # read | write
`

func runConfig(argv []string, stdout, stderr io.Writer) int {
	fs := newFlags("config")
	if !parseFlags(fs, argv, -1, stderr) {
		return exitUsage
	}
	args := fs.Args()
	var regs []sdk.Registration
	if len(args) == 0 {
		regs = sdk.Registered("")
		fmt.Fprint(stdout, agentSample+"\n")
	}
	for _, a := range args {
		for _, name := range splitList(a) {
			r, ok := sdk.Lookup(name)
			if !ok {
				fmt.Fprintf(stderr, "edgepipe config: no built-in plugin %q (see `edgepipe plugins`)\n", name)
				return exitUsage
			}
			regs = append(regs, r)
		}
	}
	for _, r := range regs {
		fmt.Fprintln(stdout, strings.TrimRight(r.SampleConfig, "\n"))
		fmt.Fprintln(stdout)
	}
	return 0
}
