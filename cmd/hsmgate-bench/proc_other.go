//go:build !linux

package main

import "syscall"

// childSysProcAttr has nothing to add outside Linux: cleanup relies on the
// deferred stop of the child.
func childSysProcAttr() *syscall.SysProcAttr { return nil }
