package main

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

func init() {
	register(command{name: "completion", summary: "print a shell completion script: `source <(edgepipe completion bash)`",
		usage: `Usage: edgepipe completion bash

Prints a bash completion script for commands, their options, plugin names
(edgepipe config) and files. Load it with ` + "`source <(edgepipe completion bash)`" + `, or
install it as /usr/share/bash-completion/completions/edgepipe. zsh can use it
after ` + "`autoload bashcompinit && bashcompinit`" + `.`,
		run: runCompletion})
}

func runCompletion(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("completion")
	if !parseFlags(fs, args, 1, stderr) {
		return exitUsage
	}
	if fs.NArg() != 1 || fs.Arg(0) != "bash" {
		fmt.Fprintln(stderr, "edgepipe completion: want `edgepipe completion bash`")
		return exitUsage
	}
	fmt.Fprint(stdout, bashCompletion())
	return exitOK
}

// bashCompletion is generated from the registered commands and their flag
// sets, so it cannot drift from what the commands accept.
func bashCompletion() string {
	var cases strings.Builder
	for _, n := range commandNames() {
		words := []string{"--help"}
		if c := commands[n]; c.flags != nil {
			c.flags().VisitAll(func(f *flag.Flag) {
				if len(f.Name) > 1 {
					words = append(words, "--"+f.Name)
				}
			})
		}
		switch n {
		case "help":
		case "config":
			for _, r := range sdk.Registered("") {
				words = append(words, r.FullName())
			}
		case "sim":
			words = append(words, "modbus", "--listen", "--config", "--print-config")
		case "completion":
			words = append(words, "bash")
		}
		sort.Strings(words)
		fmt.Fprintf(&cases, "\t%s) words=%q ;;\n", n, strings.Join(words, " "))
	}
	return `# bash completion for edgepipe (edgepipe completion bash)
_edgepipe() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} words
	COMPREPLY=()
	if [ "$COMP_CWORD" -eq 1 ]; then
		COMPREPLY=($(compgen -W "` + strings.Join(commandNames(), " ") + ` help --help --version" -- "$cur"))
		return
	fi
	case $prev in
	--config|-c) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	--config-directory) COMPREPLY=($(compgen -d -- "$cur")); return ;;
	esac
	case ${COMP_WORDS[1]} in
	help) words="` + strings.Join(commandNames(), " ") + `" ;;
` + cases.String() + `	*) return ;;
	esac
	COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _edgepipe edgepipe
`
}
