package chaos

import "syscall"

// dieWithParent makes the kernel kill a worker process if the test process
// dies first (a test timeout, a crash), so that none is left behind.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
