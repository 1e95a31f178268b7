//go:build unix

package kafka

import (
	"os"
	"syscall"
)

// lockFile takes a non-blocking exclusive advisory lock on f.
func lockFile(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}
