package main

import "syscall"

// childSysProcAttr makes the kernel kill the server child should this
// process die without cleaning up (for example on SIGKILL).
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
