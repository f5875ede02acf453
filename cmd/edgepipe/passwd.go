package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// stdin is where passwd reads the password (tests replace it).
var stdin io.Reader = os.Stdin

func init() {
	register(command{name: "passwd", summary: "read a password on stdin and print its hash for [agent.console] password_hash",
		usage: `Usage: edgepipe passwd [--cost N] < password-file
       printf %s 'the password' | edgepipe passwd

Reads a password (the first line of stdin) and prints its bcrypt hash, for
[agent.console] password_hash. The password itself is stored nowhere.`,
		flags: func() *flag.FlagSet { return passwdFlags(new(int)) }, run: runPasswd})
}

func passwdFlags(cost *int) *flag.FlagSet {
	fs := newFlags("passwd")
	fs.IntVar(cost, "cost", bcrypt.DefaultCost, fmt.Sprintf("bcrypt cost, %d to %d (each step doubles the work of a login)", bcrypt.MinCost, bcrypt.MaxCost))
	return fs
}

func runPasswd(argv []string, stdout, stderr io.Writer) int {
	var cost int
	if !parseFlags(passwdFlags(&cost), argv, 0, stderr) {
		return exitUsage
	}
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		fmt.Fprintf(stderr, "edgepipe passwd: --cost must be %d to %d\n", bcrypt.MinCost, bcrypt.MaxCost)
		return exitUsage
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		fmt.Fprintln(stderr, "edgepipe passwd: reading the password:", err)
		return exitError
	}
	pw := strings.TrimRight(line, "\r\n")
	switch {
	case pw == "":
		fmt.Fprintln(stderr, "edgepipe passwd: no password on stdin (echo 'the password' | edgepipe passwd)")
		return exitError
	case len(pw) > 72:
		// bcrypt looks at the first 72 bytes only: refuse rather than
		// silently ignore the rest.
		fmt.Fprintln(stderr, "edgepipe passwd: the password is longer than 72 bytes, which bcrypt cannot use")
		return exitError
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	if err != nil {
		fmt.Fprintln(stderr, "edgepipe passwd:", err)
		return exitError
	}
	fmt.Fprintln(stdout, string(hash))
	return exitOK
}
