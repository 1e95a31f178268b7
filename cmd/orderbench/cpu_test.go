package main

import (
	"os"
	"runtime"
	"testing"
	"time"
)

// TestSampleCPU reads this process's and the machine's CPU times from /proc
// and turns two samples around some busy work into a plausible use.
func TestSampleCPU(t *testing.T) {
	a, err := sampleCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
		// spin: this goroutine keeps about one core busy
	}
	b, err := sampleCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if b.cores < runtime.NumCPU() {
		t.Errorf("cores = %d, want at least runtime.NumCPU() = %d", b.cores, runtime.NumCPU())
	}
	u := cpuBetween(a, b)
	if u.serviceCores <= 0 || u.serviceCores > float64(b.cores)+0.5 {
		t.Errorf("process used %.2f cores while spinning, want between 0 and %d", u.serviceCores, b.cores)
	}
	if u.machineBusy <= 0 || u.machineBusy > 1 {
		t.Errorf("machine busy %.2f, want in (0, 1]", u.machineBusy)
	}
}
