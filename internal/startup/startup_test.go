package startup_test

import (
	"testing"
	"time"

	"github.com/orderd/orderd/internal/startup"
)

// TestSchedule: the seed's waits (1, 2, 4, 8, 16 s, then 16 s for good),
// and the start-up tries used up after the fifth.
func TestSchedule(t *testing.T) {
	for _, tc := range []struct {
		try    int
		wait   time.Duration
		usedUp bool
	}{
		{1, time.Second, false},
		{2, 2 * time.Second, false},
		{3, 4 * time.Second, false},
		{4, 8 * time.Second, false},
		{5, 16 * time.Second, true},
		{6, 16 * time.Second, true},
		{100, 16 * time.Second, true},
	} {
		if got := startup.Wait(tc.try); got != tc.wait {
			t.Errorf("Wait(%d) = %v, want %v", tc.try, got, tc.wait)
		}
		if got := startup.UsedUp(tc.try); got != tc.usedUp {
			t.Errorf("UsedUp(%d) = %v, want %v", tc.try, got, tc.usedUp)
		}
	}
}
