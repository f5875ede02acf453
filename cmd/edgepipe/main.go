// Command edgepipe is the industrial edge gateway: it polls field devices,
// turns their values into reports and forwards them to MQTT servers, and
// takes writes and commands back. See README.md and `edgepipe help`.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/edgepipe/edgepipe/core/isolate"
	_ "github.com/edgepipe/edgepipe/plugins/all"
)

// command is one subcommand.
type command struct {
	name    string
	summary string // one line, for `edgepipe help`
	usage   string // synopsis and description, for `edgepipe help NAME`
	// flags returns the command's flag set, the one its run parses, so that
	// help lists exactly what the command accepts; nil: no flags.
	flags func() *flag.FlagSet
	run   func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{}

func register(c command) { commands[c.name] = c }

func main() {
	// A re-executed edgepipe serving one of its built-in plugins.
	isolate.MaybeServe()
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes, as Telegraf and most Unix tools use them.
const (
	exitOK    = 0
	exitError = 1 // the command ran and failed
	exitUsage = 2 // the command line is wrong
)

// dispatch runs the command line args. `help CMD`, `CMD -h` and
// `CMD --help` print the command's help on stdout and exit 0; an unknown
// command, flag or a stray argument exits 2 with a message on stderr that
// starts with the command ("edgepipe run: ...").
func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stdout)
		return exitOK
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) == 1 {
			usage(stdout)
			return exitOK
		}
		if len(args) > 2 {
			fmt.Fprintf(stderr, "edgepipe help: unexpected argument %q\n", args[2])
			return exitUsage
		}
		c, ok := commands[args[1]]
		if !ok {
			fmt.Fprintf(stderr, "edgepipe help: unknown command %q (see `edgepipe help`)\n", args[1])
			return exitUsage
		}
		commandHelp(stdout, c)
		return exitOK
	case "--version", "-version":
		args = []string{"version"}
	}
	c, ok := commands[args[0]]
	if !ok {
		what := "command"
		if strings.HasPrefix(args[0], "-") {
			what = "flag"
		}
		fmt.Fprintf(stderr, "edgepipe: unknown %s %q\n\n", what, args[0])
		usage(stderr)
		return exitUsage
	}
	if wantsHelp(args[1:]) {
		commandHelp(stdout, c)
		return exitOK
	}
	return c.run(args[1:], stdout, stderr)
}

// wantsHelp reports whether args ask for help before any "--".
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "edgepipe - industrial edge gateway: field devices to MQTT and back")
	fmt.Fprintln(w, "\nUsage: edgepipe COMMAND [options]\n\nCommands:")
	for _, n := range commandNames() {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun `edgepipe help COMMAND` (or `edgepipe COMMAND --help`) for a command's options;\n`edgepipe --version` prints the version.")
}

func commandNames() []string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// commandHelp prints a command's synopsis, description and flags.
func commandHelp(w io.Writer, c command) {
	fmt.Fprintf(w, "%s\n", strings.TrimRight(c.usage, "\n"))
	if c.flags == nil {
		return
	}
	fs := c.flags()
	if !hasFlags(fs) {
		return
	}
	fmt.Fprintln(w, "\nOptions:")
	fs.SetOutput(w)
	fs.PrintDefaults()
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// newFlags is a command's flag set; parseFlags reports its errors.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("edgepipe "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses a command's arguments, allowing at most maxArgs
// positional ones (-1: any). On a usage error it prints
// "edgepipe NAME: ..." and returns false: the command exits 2.
func parseFlags(fs *flag.FlagSet, args []string, maxArgs int, stderr io.Writer) bool {
	name := strings.TrimPrefix(fs.Name(), "edgepipe ")
	err := fs.Parse(args)
	if err == nil && maxArgs >= 0 && fs.NArg() > maxArgs {
		err = fmt.Errorf("unexpected argument %q", fs.Arg(maxArgs))
	}
	if err == nil {
		return true
	}
	if errors.Is(err, flag.ErrHelp) { // dispatch answers --help; -help=x and the like end here
		err = errors.New("see `edgepipe help " + name + "`")
	}
	fmt.Fprintf(stderr, "edgepipe %s: %v\nRun `edgepipe help %s` for usage.\n", name, err, name)
	return false
}

// splitList splits "a,b c" into words.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}
