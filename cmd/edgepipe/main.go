// Command edgepipe is the industrial edge gateway: it polls field devices,
// turns their values into reports and forwards them to MQTT servers, and
// takes writes and commands back. See README.md and `edgepipe help`.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/edgepipe/edgepipe/core/isolate"
	_ "github.com/edgepipe/edgepipe/plugins/all"
)

// Set by the build: go build -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

// command is one subcommand.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{}

func register(name, summary string, run func(args []string, stdout, stderr io.Writer) int) {
	commands[name] = command{summary: summary, run: run}
}

func main() {
	// A re-executed edgepipe serving one of its built-in plugins.
	isolate.MaybeServe()
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "edgepipe: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	return c.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "edgepipe - industrial edge gateway: field devices to MQTT and back")
	fmt.Fprintln(w, "\nUsage: edgepipe COMMAND [options]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun `edgepipe COMMAND -h` for a command's options.")
}

// splitList splits "a,b c" into words.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}
