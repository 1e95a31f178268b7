package main

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Idle trimming: serve's GOGC of 400 (defaultGCPercent) lets the heap grow
// to five times what is live, and never collects below a 16 MB goal, before
// the next collection. That suits a busy instance; an idle one keeps the
// garbage of every fetch poll and lag check until then, and the runtime
// keeps the collected memory mapped up to that goal: an idle embedded
// orderd's RSS rose from 28,940 kB at start to 34,076 kB after three
// minutes (ps). While the process allocates little, trimWhenIdle collects
// and returns the free memory to the system. Every 10 s after 256 KiB
// rather than every 30 s after 1 MiB: started side by side and sampled for
// seven minutes, go run's build held 28,888–29,320 kB against up to 30,696,
// and the static build 28,964–29,608 against up to 31,028, for a forced
// collection of a heap of about 2 MB every 10 s (docs/BENCHMARKS.md, the
// twenty-second round).
const (
	trimEvery = 10 * time.Second
	// quietBytes: allocating less than this in one trimEvery is idle. An
	// idle embedded instance allocated about 4 MB in two minutes (gctrace:
	// 5->5->1 MB at the forced collection after 120 s), most of it for the
	// consumer's fetch polls (fetchMaxWait) and the lag gauge. One event is
	// about 12.9 KB (BenchmarkHandleBatch/sqlite: 3,299,805 B per 256
	// events, without the Kafka client's share), so this is some 20 events
	// a second.
	quietBytes = 2560 << 10
	// trimAfterBytes: no trim unless this much was allocated since the last
	// one, so that a truly idle process does not collect for nothing. An
	// idle instance reaches it within one trimEvery.
	trimAfterBytes = 256 << 10
)

// idleTrimmer decides, from the process's running total of allocated bytes
// sampled once per period, when to trim.
type idleTrimmer struct {
	last, lastTrim uint64
}

// observe takes the total allocated so far and reports whether to trim now.
func (t *idleTrimmer) observe(allocated uint64) bool {
	inPeriod, sinceTrim := allocated-t.last, allocated-t.lastTrim
	t.last = allocated
	if inPeriod >= quietBytes || sinceTrim < trimAfterBytes {
		return false
	}
	t.lastTrim = allocated
	return true
}

// allocatedBytes is the heap memory allocated since the process started.
func allocatedBytes() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// trimWhenIdle returns free heap memory to the system every trimEvery in
// which the process was idle, until ctx ends.
func trimWhenIdle(ctx context.Context) {
	t := idleTrimmer{last: allocatedBytes()}
	t.lastTrim = t.last
	tick := time.NewTicker(trimEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if t.observe(allocatedBytes()) {
				debug.FreeOSMemory()
			}
		}
	}
}
