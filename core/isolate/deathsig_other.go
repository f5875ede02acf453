//go:build !linux

package isolate

import "os/exec"

// dieWithParent: no parent-death signal outside Linux; the plugin's
// watchParent is the only guard there.
func dieWithParent(*exec.Cmd) {}
