package main

import (
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestDropFromPageCache: a file just written is in the page cache; after
// dropFromPageCache hardly any of it is, so the next exec reads it from disk.
func TestDropFromPageCache(t *testing.T) {
	dir := t.TempDir()
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	if fs.Type == unix.TMPFS_MAGIC {
		t.Skip("the temporary directory is on tmpfs, whose pages cannot leave memory")
	}
	path := filepath.Join(dir, "file")
	const size = 4 << 20
	if err := os.WriteFile(path, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	before := residentPages(t, path, size)
	if err := dropFromPageCache(path); err != nil {
		t.Fatal(err)
	}
	after := residentPages(t, path, size)
	pages := size / os.Getpagesize()
	t.Logf("resident pages of %d: %d before, %d after", pages, before, after)
	if before < pages/2 {
		t.Fatalf("only %d of %d pages cached right after writing: the check below would prove nothing", before, pages)
	}
	if after > pages/10 {
		t.Fatalf("%d of %d pages still cached after dropFromPageCache", after, pages)
	}
}

// residentPages counts the pages of the file at path that are in the page
// cache (mincore of a shared read-only mapping, which faults nothing in).
func residentPages(t *testing.T, path string, size int) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (size+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatalf("mincore: %v", errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}
