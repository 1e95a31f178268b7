package sqlstore_test

import (
	"fmt"
	"testing"

	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/sqlstore"
)

// inboxOf returns, in a transaction of its own, what the inbox holds for
// each key, and records the keys in marks as applied (reporting whether
// each was new), preloaded first when preload is set (Preload's read, not
// the calls' own).
func inboxOf(t *testing.T, s *sqlstore.Store, preload bool, look []order.EventKey, marks ...order.EventKey) (found []order.InboxEntry, ok []bool, first []bool) {
	t.Helper()
	ctx := testContext(t)
	err := s.InTx(ctx, func(tx order.Tx) error {
		found, ok, first = nil, nil, nil
		if preload {
			if err := tx.Preload(ctx, order.Keys{Events: append(append([]order.EventKey{}, look...), marks...)}); err != nil {
				return err
			}
		}
		for _, k := range look {
			e, has, err := tx.Inbox(ctx, k)
			if err != nil {
				return err
			}
			found, ok = append(found, e), append(ok, has)
		}
		for _, k := range marks {
			f, err := tx.MarkProcessed(ctx, k, "OrderCancelled")
			if err != nil {
				return err
			}
			first = append(first, f)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found, ok, first
}

// TestInboxKeyedByOrder: an event id is the idempotency key among the events
// of its order. The same id under another order is another event; an entry
// recorded under no order is found for its id under any order. Both with
// and without Preload's read.
func TestInboxKeyedByOrder(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *sqlstore.Store) {
		for _, preload := range []bool{false, true} {
			p := fmt.Sprintf("p%v-", preload)
			a, b := order.EventKey{OrderID: p + "A", ID: p + "e1"}, order.EventKey{OrderID: p + "B", ID: p + "e1"}
			bare := order.EventKey{ID: p + "e2"}
			if _, _, first := inboxOf(t, s, preload, nil, a, bare); !first[0] || !first[1] {
				t.Fatalf("preload %v: first marks = %v, want new", preload, first)
			}
			_, ok, first := inboxOf(t, s, preload,
				[]order.EventKey{a, b, {OrderID: p + "C", ID: bare.ID}, bare},
				a, b, order.EventKey{OrderID: p + "D", ID: bare.ID})
			if want := []bool{true, false, true, true}; fmt.Sprint(ok) != fmt.Sprint(want) {
				t.Errorf("preload %v: found %v for A/e1, B/e1, C/e2 and e2 under no order; want %v", preload, ok, want)
			}
			if want := []bool{false, true, false}; fmt.Sprint(first) != fmt.Sprint(want) {
				t.Errorf("preload %v: marks of A/e1 again, B/e1, D/e2 = %v; want %v", preload, first, want)
			}
			for _, k := range []order.EventKey{a, b, {OrderID: p + "E", ID: bare.ID}} {
				if seen, err := s.ProcessedEvent(testContext(t), k); err != nil || !seen {
					t.Errorf("preload %v: ProcessedEvent(%+v) = %v, %v; want true", preload, k, seen, err)
				}
			}
			if seen, err := s.ProcessedEvent(testContext(t), order.EventKey{OrderID: p + "C", ID: a.ID}); err != nil || seen {
				t.Errorf("preload %v: ProcessedEvent of e1 under C = %v, %v; want false", preload, seen, err)
			}
		}
	})
}

// TestInboxByOrderMigration (migration 6): entries recorded while the inbox
// was keyed by the event id alone are kept, under no order, so a
// redelivery after the upgrade is still found — a refusal as a refusal.
// Going down keeps one entry of an id recorded under several orders, and
// up again finds them all as before.
func TestInboxByOrderMigration(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := testContext(t)
		if err := s.MigrateDownTo(ctx, 5); err != nil {
			t.Fatalf("down to 5: %v", err)
		}
		exec := func(q string, args ...any) {
			t.Helper()
			if _, err := s.DB().ExecContext(ctx, q, args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		exec(`INSERT INTO processed_events (event_id, event_name, processed_at, outcome, reason, detail)
			VALUES ('old-applied', 'OrderCreated', $1, 'applied', '', ''), ('old-refused', 'OrderCancelled', $1, 'refused', 'not_cancellable', 'order O is shipped')`,
			"2026-01-01T00:00:00.000000Z")
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("up: %v", err)
		}
		found, ok, first := inboxOf(t, s, true,
			[]order.EventKey{{OrderID: "O", ID: "old-applied"}, {OrderID: "O", ID: "old-refused"}},
			order.EventKey{OrderID: "O", ID: "old-applied"}, order.EventKey{OrderID: "P", ID: "new"}, order.EventKey{OrderID: "Q", ID: "new"})
		if !ok[0] || !ok[1] || found[0].Refused || !found[1].Refused || found[1].Refusal.Reason != "not_cancellable" {
			t.Errorf("entries from before the migration, under order O: %+v, %v", found, ok)
		}
		if first[0] || !first[1] || !first[2] {
			t.Errorf("marks of old-applied, and of new under P and Q = %v; want false, true, true", first)
		}

		if err := s.MigrateDownTo(ctx, 5); err != nil {
			t.Fatalf("down to 5 with an id under two orders: %v", err)
		}
		var n int
		if err := s.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM processed_events`).Scan(&n); err != nil || n != 3 {
			t.Errorf("entries after going down = %d, %v; want 3 (new kept once)", n, err)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("up again: %v", err)
		}
		if _, ok, _ := inboxOf(t, s, false, []order.EventKey{{OrderID: "P", ID: "new"}, {OrderID: "O", ID: "old-refused"}}); !ok[0] || !ok[1] {
			t.Errorf("after down and up: found %v, want both", ok)
		}
	})
}
