package app

import (
	"testing"

	"github.com/orderd/orderd/internal/kafka"
)

// TestLagReckoner: without a commit, the lag counts from the log start
// when the group reads from the earliest offset, and from the end first
// seen when it starts at the latest: a quiet partition of a new group with
// KAFKA_AUTO_OFFSET_RESET=latest shows no lag, not its whole log for good.
func TestLagReckoner(t *testing.T) {
	offs := func(start, end, committed int64) map[string]map[int32]kafka.PartitionOffsets {
		return map[string]map[int32]kafka.PartitionOffsets{"t": {0: {Start: start, End: end, Committed: committed}}}
	}
	earliest := newLagReckoner(false)
	if got := earliest.lag(offs(2, 10, -1))["t"][0]; got != 8 {
		t.Errorf("earliest, no commit: lag %d, want 8 (end - start)", got)
	}
	latest := newLagReckoner(true)
	for _, step := range []struct {
		end, committed, want int64
	}{
		{10, -1, 0}, // the group starts at the end: nothing of the log is pending
		{10, -1, 0}, // a quiet partition stays at 0
		{13, -1, 3}, // three records arrived since, none committed
		{13, 13, 0}, // committed
		{15, 13, 2}, // from the commit on
	} {
		if got := latest.lag(offs(0, step.end, step.committed))["t"][0]; got != step.want {
			t.Errorf("latest, end %d, committed %d: lag %d, want %d", step.end, step.committed, got, step.want)
		}
	}
}
