package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSampleIO reads this process's system-call I/O from /proc around the
// write of a 1 MiB file, and finds at least that much written.
func TestSampleIO(t *testing.T) {
	a, err := sampleIO(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadFile(path); err != nil {
		t.Fatal(err)
	}
	b, err := sampleIO(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	u := ioBetween(a, b, 4)
	if u.written < 1<<20 || u.writes < 1 {
		t.Errorf("wrote %d bytes in %d calls around a 1 MiB file, want at least 1 MiB in one", u.written, u.writes)
	}
	if u.read < 1<<20 || u.reads < 1 {
		t.Errorf("read %d bytes in %d calls around reading a 1 MiB file, want at least 1 MiB in one", u.read, u.reads)
	}
	if u.diskWritten < 0 {
		t.Errorf("the disks' written bytes went down: %d", u.diskWritten)
	}
	if s := u.String(); !strings.Contains(s, "KiB per event") || strings.Contains(s, "not measured") {
		t.Errorf("String() = %q", s)
	}
	if s := (ioUse{}).String(); s != "not measured" {
		t.Errorf("zero ioUse String() = %q, want not measured", s)
	}
}

// TestDiskWritten sums the sectors written of the devices it is told are
// disks, 512 bytes a sector, and refuses a line it cannot read.
func TestDiskWritten(t *testing.T) {
	const stats = `   7       0 loop0 10 0 80 0 5 0 40 0 0 0 0
 254       0 vda 34849 5405 1372098 6571 25236 9065 1671064 10392 0 4920 17636 9480 24 957264 484 5373 188
 254       1 vda1 100 0 800 1 200 0 1000 2 0 3 4
 259       0 nvme0n1 1 0 8 0 2 0 16 0 0 0 0
`
	disks := map[string]bool{"vda": true, "nvme0n1": true}
	got, err := diskWritten(stats, func(name string) bool { return disks[name] })
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(512 * (1671064 + 16)); got != want {
		t.Errorf("diskWritten = %d, want %d (vda and nvme0n1, not loop0 nor the partition vda1)", got, want)
	}
	if _, err := diskWritten("254 0 vda 1 2 3\n", func(string) bool { return true }); err == nil {
		t.Error("a short line: no error")
	}
	if _, err := diskWritten("254 0 vda 1 2 3 4 5 6 x 8\n", func(string) bool { return true }); err == nil {
		t.Error("a sectors field that is not a number: no error")
	}
	if physicalDisk("loop0") || physicalDisk("dm-0") || physicalDisk("zram0") {
		t.Error("a loop, device-mapper or zram device counted as a disk")
	}
}
