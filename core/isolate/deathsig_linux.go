package isolate

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill the plugin process when the gateway
// dies, however it dies (kill -9 included). See start for the thread
// caveat.
func dieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
