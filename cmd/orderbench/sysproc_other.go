//go:build !linux

package main

import "syscall"

// childAttr returns nil: outside Linux children keep the default attributes
// and are stopped by orderbench's own clean-up only.
func childAttr() *syscall.SysProcAttr { return nil }
