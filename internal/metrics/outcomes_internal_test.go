package metrics

import (
	"errors"
	"slices"
	"testing"

	"github.com/orderd/orderd/internal/kafka"
)

// TestOutcomesAreTheConsumers: the outcome label of orders_events_total is
// the consumer's word for the call (kafka.Outcome.Label, which the app
// passes on and the "record handled" line logs), and the metric creates its
// series from its own list: every word the consumer can give must be there.
func TestOutcomesAreTheConsumers(t *testing.T) {
	fail := errors.New("failed")
	for _, o := range []kafka.Outcome{{}, {Duplicate: true}, {Err: fail, DLQ: true}, {Err: fail}} {
		if label := Outcome(o.Label()); !slices.Contains(outcomes[:], label) {
			t.Errorf("the consumer's outcome %q (for %+v) is not one of orders_events_total's %v", label, o, outcomes)
		}
	}
}
