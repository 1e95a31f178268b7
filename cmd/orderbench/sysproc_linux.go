package main

import "syscall"

// childAttr puts a child in its own process group, so that a Ctrl-C in the
// terminal reaches orderbench only (which then stops the child in order),
// and has the kernel kill it should orderbench itself be killed.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
