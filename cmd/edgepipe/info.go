package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

func init() {
	register("version", "print version, commit and Go version", func(_ []string, stdout, _ io.Writer) int {
		fmt.Fprintf(stdout, "edgepipe %s (commit %s, %s, plugin protocol %d)\n", version, commit, runtime.Version(), sdk.ProtocolVersion)
		return 0
	})
	register("plugins", "list the built-in plugins", func(_ []string, stdout, _ io.Writer) int {
		for _, r := range sdk.Registered("") {
			fmt.Fprintf(stdout, "%-22s %s\n", r.FullName(), r.Description)
		}
		return 0
	})
	register("config", "print a sample configuration: `edgepipe config [inputs.modbus ...]`", runConfig)
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
  ## debug | info | warn | error
  log_level = "info"
  ## /metrics and /healthz; "" disables.
  http_listen = "127.0.0.1:9273"
  ## Commands from the server larger than this are refused unparsed
  ## (sizes are binary: 64KB = 65,536 bytes).
  max_command_size = "64KB"
`

func runConfig(args []string, stdout, stderr io.Writer) int {
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
				return 1
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
