package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ioSample is what the service process had read and written through system
// calls, and what the machine's disks had written, at one moment.
type ioSample struct {
	rchar, wchar int64 // bytes the process passed to read(2), write(2) and the like, on files and sockets (/proc/PID/io)
	syscr, syscw int64 // how many such calls it made
	diskWritten  int64 // bytes the machine's disks wrote (/proc/diskstats)
}

// sampleIO reads /proc/PID/io and /proc/diskstats.
func sampleIO(pid int) (ioSample, error) {
	var s ioSample
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return s, err
	}
	fields := map[string]*int64{"rchar": &s.rchar, "wchar": &s.wchar, "syscr": &s.syscr, "syscw": &s.syscw}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ": ")
		if p := fields[k]; ok && p != nil {
			if *p, err = strconv.ParseInt(v, 10, 64); err != nil {
				return s, fmt.Errorf("/proc/%d/io: %q", pid, line)
			}
			delete(fields, k)
		}
	}
	if len(fields) > 0 {
		return s, fmt.Errorf("/proc/%d/io: no %d of rchar, wchar, syscr, syscw", pid, len(fields))
	}
	stats, err := os.ReadFile("/proc/diskstats")
	if err != nil {
		return s, err
	}
	s.diskWritten, err = diskWritten(string(stats), physicalDisk)
	return s, err
}

// physicalDisk reports whether name, a device of /proc/diskstats, is a
// whole disk that stores data: in /sys/block, and neither a loop, RAM,
// compressed-swap, device-mapper nor software-RAID device, whose writes a
// disk below it counts again (or no disk at all).
func physicalDisk(name string) bool {
	for _, p := range []string{"loop", "ram", "zram", "dm-", "md", "nbd"} {
		if strings.HasPrefix(name, p) {
			return false
		}
	}
	_, err := os.Stat("/sys/block/" + name)
	return err == nil
}

// diskWritten sums the sectors written (512 bytes each, whatever the
// device's own sector size) of the devices in stats, the text of
// /proc/diskstats, for which disk is true.
func diskWritten(stats string, disk func(name string) bool) (int64, error) {
	var sum int64
	for line := range strings.Lines(stats) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 10 {
			return 0, fmt.Errorf("/proc/diskstats: %q", line)
		}
		if !disk(f[2]) {
			continue
		}
		sectors, err := strconv.ParseInt(f[9], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/diskstats: %q", line)
		}
		sum += 512 * sectors
	}
	return sum, nil
}

// ioUse is what happened between two samples, for events processed in
// between; the zero value is not measured.
type ioUse struct {
	read, written int64 // bytes, by the service
	reads, writes int64 // calls, by the service
	diskWritten   int64 // bytes, by the machine's disks
	events        int
}

func ioBetween(a, b ioSample, events int) ioUse {
	return ioUse{
		read: b.rchar - a.rchar, written: b.wchar - a.wchar,
		reads: b.syscr - a.syscr, writes: b.syscw - a.syscw,
		diskWritten: b.diskWritten - a.diskWritten,
		events:      events,
	}
}

func (u ioUse) String() string {
	if u.events <= 0 {
		return "not measured"
	}
	n := float64(u.events)
	kib := func(bytes int64) float64 { return float64(bytes) / 1024 / n }
	return fmt.Sprintf("the service read %s in %d calls and wrote %s in %d calls (%.1f / %.1f KiB, %.1f / %.1f calls per event); the machine's disks wrote %s (%.1f KiB per event)",
		mib(u.read), u.reads, mib(u.written), u.writes, kib(u.read), kib(u.written),
		float64(u.reads)/n, float64(u.writes)/n, mib(u.diskWritten), kib(u.diskWritten))
}
