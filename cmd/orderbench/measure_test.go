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

// TestLatencyTimeline checks that records fall into slices by their produce
// time from the first record's, that each slice has its own percentiles,
// and that records never seen committed are left out.
func TestLatencyTimeline(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	advances := map[int32][]advance{
		0: {{offset: 2, at: at(30)}, {offset: 3, at: at(250)}},
		1: {{offset: 1, at: at(40)}},
	}
	recs := []produced{
		{partition: 0, offset: 0, at: at(10)},  // slice 0: 20 ms
		{partition: 1, offset: 0, at: at(0)},   // slice 0: 40 ms, the first record
		{partition: 0, offset: 1, at: at(20)},  // slice 0: 10 ms
		{partition: 0, offset: 2, at: at(150)}, // slice 1: 100 ms
		{partition: 1, offset: 1, at: at(160)}, // slice 1: never seen committed
		{partition: 1, offset: 2, at: at(210)}, // slice 2: never seen committed
	}
	got := latencyTimeline(recs, advances, 100*time.Millisecond)
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	want := []timeSlice{
		{from: 0, count: 3, p50: ms(20), p99: ms(40), max: ms(40)},
		{from: ms(100), count: 1, p50: ms(100), p99: ms(100), max: ms(100)},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(timeSlice{})); diff != "" {
		t.Errorf("timeline (-want +got):\n%s", diff)
	}
	if got := latencyTimeline(recs, advances, 0); got != nil {
		t.Errorf("width 0: %v, want none", got)
	}
}
