package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// dropFromPageCache writes the file at path to disk and has the kernel drop
// its pages from the page cache, so that the processes measured read the
// executable from disk, as one does after an install or a reboot. How the
// file's pages came into the cache shows in the idle RSS: a copy written
// through a shared mapping, as the Go linker writes its output, maps about
// 2 MB more of itself at idle, and in 3 of 18 runs before this every orderd
// of the run idled that much higher (docs/BENCHMARKS.md, item 28). That is
// a figure of how the file was last written, not of the service.
func dropFromPageCache(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("drop %s from the page cache: %w", path, err)
	}
	return nil
}
