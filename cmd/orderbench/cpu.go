package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is the unit of the CPU times in /proc (USER_HZ; 100 on Linux).
const clockTicks = 100

// cpuSample is the CPU time the service process and the whole machine had
// used at one moment.
type cpuSample struct {
	at     time.Time
	proc   float64 // seconds of CPU of the process (user + system)
	busy   float64 // seconds of CPU the machine spent not idle, all cores
	iowait float64 // seconds of CPU the machine spent idle waiting for I/O
	total  float64 // seconds of CPU the machine had, all cores
	cores  int
}

// sampleCPU reads /proc/PID/stat and /proc/stat.
func sampleCPU(pid int) (cpuSample, error) {
	s := cpuSample{at: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name may hold spaces: fields count from after its ')'.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(f) < 13 {
		return s, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("/proc/%d/stat: utime %q, stime %q", pid, f[11], f[12])
	}
	s.proc = (utime + stime) / clockTicks
	all, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s, err
	}
	for line := range strings.Lines(string(all)) {
		fields := strings.Fields(line)
		switch {
		case len(fields) > 0 && fields[0] == "cpu":
			for i, v := range fields[1:] {
				if i >= 8 { // guest times are already in user and nice
					break
				}
				n, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return s, fmt.Errorf("/proc/stat: %q", line)
				}
				s.total += n / clockTicks
				switch i {
				case 3: // idle
				case 4:
					s.iowait += n / clockTicks
				default:
					s.busy += n / clockTicks
				}
			}
		case len(fields) > 0 && strings.HasPrefix(fields[0], "cpu"):
			s.cores++
		}
	}
	return s, nil
}

// cpuUse is what happened between two samples: cores the service kept busy
// on average, and how busy the machine's cores were (service, broker and
// database together).
type cpuUse struct {
	serviceCores float64
	machineBusy  float64 // 0..1
	iowait       float64 // 0..1
	cores        int
}

func cpuBetween(a, b cpuSample) cpuUse {
	wall := b.at.Sub(a.at).Seconds()
	u := cpuUse{cores: b.cores}
	if wall > 0 {
		u.serviceCores = (b.proc - a.proc) / wall
	}
	if d := b.total - a.total; d > 0 {
		// The iowait counter can decrease (proc(5)), which over a short,
		// fully busy interval put busy a fraction above 1.
		u.machineBusy = min(max((b.busy-a.busy)/d, 0), 1)
		u.iowait = min(max((b.iowait-a.iowait)/d, 0), 1)
	}
	return u
}

func (u cpuUse) String() string {
	if u.cores == 0 {
		return "not measured"
	}
	return fmt.Sprintf("service %.2f cores on average; machine %.0f %% busy, %.0f %% waiting for I/O (%d cores: service, broker and database)",
		u.serviceCores, 100*u.machineBusy, 100*u.iowait, u.cores)
}
