package main

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPercentile(t *testing.T) {
	ten := make([]time.Duration, 10)
	for i := range ten {
		ten[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value", []time.Duration{7}, 99, 7},
		{"median of ten is the fifth", ten, 50, 5 * time.Millisecond},
		{"p90 of ten is the ninth", ten, 90, 9 * time.Millisecond},
		{"p99 of ten rounds up to the tenth", ten, 99, 10 * time.Millisecond},
		{"p100 is the maximum", ten, 100, 10 * time.Millisecond},
		{"a tiny p is the minimum", ten, 0.1, time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

// TestCommitLatencies checks that a record's commit time is the first
// observed commit past its offset on its own partition, and that records
// never seen committed are counted, not measured.
func TestCommitLatencies(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	advances := map[int32][]advance{
		0: {{offset: 10, at: at(0)}, {offset: 12, at: at(5)}, {offset: 15, at: at(9)}},
		1: {{offset: 3, at: at(4)}},
	}
	recs := []produced{
		{partition: 0, offset: 9, at: at(-2)},  // committed before the watch began: first advance
		{partition: 0, offset: 10, at: at(1)},  // commit 12 covers offset 10
		{partition: 0, offset: 11, at: at(2)},  // and 11
		{partition: 0, offset: 14, at: at(3)},  // commit 15
		{partition: 0, offset: 15, at: at(4)},  // not committed yet
		{partition: 1, offset: 2, at: at(1)},   // its own partition's commit
		{partition: 2, offset: 0, at: at(1)},   // a partition never committed
		{partition: 1, offset: 3, at: at(100)}, // offset 3 itself is not covered by commit 3
	}
	lat, unseen := commitLatencies(recs, advances)
	want := []time.Duration{2 * time.Millisecond, 3 * time.Millisecond, 3 * time.Millisecond, 4 * time.Millisecond, 6 * time.Millisecond}
	if diff := cmp.Diff(want, lat); diff != "" {
		t.Errorf("latencies (-want +got):\n%s", diff)
	}
	if unseen != 3 {
		t.Errorf("unseen = %d, want 3", unseen)
	}
}
