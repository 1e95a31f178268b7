package sqlstore_test

import (
	"context"
	"maps"
	"strings"
	"testing"

	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/sqlstore"
)

// inboxView reads processed_events: each entry's name and outcome by key.
func inboxView(ctx context.Context, t *testing.T, s *sqlstore.Store) map[order.EventKey]string {
	t.Helper()
	rows, err := s.DB().QueryContext(ctx, `SELECT order_id, event_id, event_name, outcome, processed_at FROM processed_events`)
	if err != nil {
		t.Fatalf("read processed_events: %v", err)
	}
	defer rows.Close()
	out := make(map[order.EventKey]string)
	for rows.Next() {
		var k order.EventKey
		var name, outcome string
		var at any
		if err := rows.Scan(&k.OrderID, &k.ID, &name, &outcome, &at); err != nil {
			t.Fatal(err)
		}
		if _, twice := out[k]; twice {
			t.Errorf("processed_events has %+v twice", k)
		}
		if at == nil {
			t.Errorf("processed_events has %+v without its time", k)
		}
		out[k] = name + " " + outcome
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestInboxInOrdersMigration (migration 8): entries recorded before it are
// read through processed_events after it, beside the entry a new order's
// row takes; going down puts every entry in the table and up again keeps
// them, each once. On SQLite processed_events is then a view, which refuses
// writes; on PostgreSQL the migration only records its version, and the
// same holds.
func TestInboxInOrdersMigration(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := testContext(t)
		if err := s.MigrateDownTo(ctx, 7); err != nil {
			t.Fatalf("down to 7: %v", err)
		}
		at := "2026-01-01T00:00:00.000000Z"
		if _, err := s.DB().ExecContext(ctx, `INSERT INTO processed_events (order_id, event_id, event_name, processed_at, outcome, reason, detail)
			VALUES ('old', 'ev-old', 'OrderCreated', $1, 'applied', '', ''), ('', 'ev-bare', 'Unknown', $1, 'refused', 'invalid', 'no order')`, at); err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("up: %v", err)
		}
		want := map[order.EventKey]string{
			{OrderID: "old", ID: "ev-old"}: "OrderCreated applied",
			{ID: "ev-bare"}:                "Unknown refused",
		}
		if got := inboxView(ctx, t, s); !maps.Equal(got, want) {
			t.Errorf("after the migration processed_events has %v, want %v", got, want)
		}

		created := order.EventKey{OrderID: "new", ID: "ev-new"}
		if err := s.InTx(ctx, func(tx order.Tx) error {
			if err := tx.CreateOrder(ctx, newOrder(t, "new")); err != nil {
				return err
			}
			_, err := tx.MarkProcessed(ctx, created, "OrderCreated")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		want[created] = "OrderCreated applied"
		if got := inboxView(ctx, t, s); !maps.Equal(got, want) {
			t.Errorf("with a new order processed_events has %v, want %v", got, want)
		}
		if s.Dialect() == sqlstore.DialectSQLite {
			var id string
			if err := s.DB().QueryRowContext(ctx, `SELECT inbox_event_id FROM orders WHERE id = 'new'`).Scan(&id); err != nil || id != created.ID {
				t.Errorf("the new order's row holds entry %q (%v), want %q", id, err, created.ID)
			}
			_, err := s.DB().ExecContext(ctx, `DELETE FROM processed_events WHERE event_id = 'ev-old'`)
			if err == nil || !strings.Contains(err.Error(), "view") {
				t.Errorf("a delete from the view processed_events: %v, want it refused", err)
			}
		}

		if err := s.MigrateDownTo(ctx, 7); err != nil {
			t.Fatalf("down to 7: %v", err)
		}
		if got := inboxView(ctx, t, s); !maps.Equal(got, want) {
			t.Errorf("after going down processed_events has %v, want %v", got, want)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("up again: %v", err)
		}
		if got := inboxView(ctx, t, s); !maps.Equal(got, want) {
			t.Errorf("after down and up processed_events has %v, want %v", got, want)
		}
		if ok, err := s.ProcessedEvent(ctx, created); err != nil || !ok {
			t.Errorf("ProcessedEvent(%+v) after down and up = %v, %v; want true", created, ok, err)
		}
	})
}

// TestInboxInOrdersFoundAgain: the entries one transaction records — under
// an order it creates (applied and refused), under an order that existed,
// under no order — are each found by a later transaction, with and without
// its preload, and by ProcessedEvent, so that a second delivery of any of
// those events is not applied again. On SQLite the created order's row holds
// the first of its applied entries and the table the rest.
func TestInboxInOrdersFoundAgain(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := testContext(t)
		create(t, s, newOrder(t, "there"))
		refusal := order.Refusal{Reason: "invalid_status", Detail: "not now"}
		entries := map[order.EventKey]order.InboxEntry{
			{OrderID: "dup", ID: "e-b"}:   {Name: "OrderCreated"},
			{OrderID: "dup", ID: "e-a"}:   {Name: "OrderProcessed"},
			{OrderID: "dup", ID: "e-0"}:   {Name: "OrderShipped", Refused: true, Refusal: refusal},
			{OrderID: "there", ID: "e-t"}: {Name: "OrderCancelled"},
			{ID: "e-bare"}:                {Name: "Unknown", Refused: true, Refusal: refusal},
		}
		if err := s.InTx(ctx, func(tx order.Tx) error {
			if err := tx.CreateOrder(ctx, newOrder(t, "dup")); err != nil {
				return err
			}
			for k, e := range entries {
				var err error
				if e.Refused {
					_, err = tx.MarkRefused(ctx, k, e.Name, e.Refusal)
				} else {
					_, err = tx.MarkProcessed(ctx, k, e.Name)
				}
				if err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}

		keys := make([]order.EventKey, 0, len(entries))
		for k := range entries {
			keys = append(keys, k)
		}
		for _, preload := range []bool{true, false} {
			if err := s.InTx(ctx, func(tx order.Tx) error {
				if preload {
					if err := tx.Preload(ctx, order.Keys{Events: keys}); err != nil {
						return err
					}
				}
				for k, want := range entries {
					got, ok, err := tx.Inbox(ctx, k)
					if err != nil {
						return err
					}
					if !ok || got != want {
						t.Errorf("preload %v: inbox entry of %+v = %+v, %v; want %+v", preload, k, got, ok, want)
					}
					if again, err := tx.MarkProcessed(ctx, k, want.Name); err != nil || again {
						t.Errorf("preload %v: MarkProcessed(%+v) again = %v, %v; want false", preload, k, again, err)
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		for k := range entries {
			if ok, err := s.ProcessedEvent(ctx, k); err != nil || !ok {
				t.Errorf("ProcessedEvent(%+v) = %v, %v; want true", k, ok, err)
			}
		}
		if ok, err := s.ProcessedEvent(ctx, order.EventKey{OrderID: "dup", ID: "e-c"}); err != nil || ok {
			t.Errorf("ProcessedEvent of an event never recorded = %v, %v; want false", ok, err)
		}
		if s.Dialect() != sqlstore.DialectSQLite {
			return
		}
		var inRow string
		if err := s.DB().QueryRowContext(ctx, `SELECT inbox_event_id FROM orders WHERE id = 'dup'`).Scan(&inRow); err != nil || inRow != "e-a" {
			t.Errorf("the created order's row holds entry %q (%v), want e-a", inRow, err)
		}
		var inTable int
		if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM inbox`).Scan(&inTable); err != nil || inTable != len(entries)-1 {
			t.Errorf("the inbox's table holds %d entries (%v), want %d", inTable, err, len(entries)-1)
		}
	})
}
