//go:build !linux

package chaos

import "syscall"

// dieWithParent has no equivalent here: Close kills the workers.
func dieWithParent() *syscall.SysProcAttr { return nil }
