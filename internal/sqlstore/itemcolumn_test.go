package sqlstore_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/sqlstore"
)

// TestItemsInOrdersMigration (migration 7): items stored in order_items
// before it are read, in line order and with their reserved flags, after it;
// a later change of a flag is kept; going down puts every item back in its
// table and up again keeps them. On SQLite order_items is then a view of
// the orders' items column with the table's columns, which refuses writes;
// on PostgreSQL the migration only records its version, and the same holds.
func TestItemsInOrdersMigration(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := testContext(t)
		if err := s.MigrateDownTo(ctx, 6); err != nil {
			t.Fatalf("down to 6: %v", err)
		}
		exec := func(q string, args ...any) {
			t.Helper()
			if _, err := s.DB().ExecContext(ctx, q, args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		at := "2026-01-01T00:00:00.000000Z"
		exec(`INSERT INTO orders (id, customer_id, status, currency, total_amount, created_at, updated_at)
			VALUES ('with-items', 'c', 'new', 'INR', 4350, $1, $1), ('no-items', 'c', 'new', 'INR', 0, $1, $1)`, at)
		// Inserted out of line order, with a product id JSON must escape.
		exec(`INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price, total_price, reserved)
			VALUES ('with-items', 3, 'p"3\', 1, 50, 50, FALSE), ('with-items', 1, 'p1', 2, 1000, 2000, TRUE),
				('with-items', 2, 'p2', 3, 9223372036854775, 2300, FALSE)`)
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("up: %v", err)
		}
		want := []order.Item{
			{ProductID: "p1", Quantity: 2, UnitPrice: 1000, TotalPrice: 2000, Reserved: true},
			{ProductID: "p2", Quantity: 3, UnitPrice: 9223372036854775, TotalPrice: 2300},
			{ProductID: `p"3\`, Quantity: 1, UnitPrice: 50, TotalPrice: 50},
		}
		checkItems := func(when string, want []order.Item) {
			t.Helper()
			o, err := s.GetOrder(ctx, "with-items")
			if err != nil || !reflect.DeepEqual(o.Items, want) {
				t.Errorf("%s: items %+v (%v), want %+v", when, o.Items, err, want)
			}
			if o, err := s.GetOrder(ctx, "no-items"); err != nil || len(o.Items) != 0 {
				t.Errorf("%s: the order without items has %+v (%v)", when, o.Items, err)
			}
			var rows []order.Item
			r, err := s.DB().QueryContext(ctx, `SELECT line_no, product_id, quantity, unit_price, total_price, reserved
				FROM order_items WHERE order_id = 'with-items' ORDER BY line_no`)
			if err != nil {
				t.Fatalf("%s: read order_items: %v", when, err)
			}
			defer r.Close()
			for r.Next() {
				var (
					line int
					it   order.Item
				)
				if err := r.Scan(&line, &it.ProductID, &it.Quantity, &it.UnitPrice, &it.TotalPrice, &it.Reserved); err != nil {
					t.Fatalf("%s: %v", when, err)
				}
				if line != len(rows)+1 {
					t.Errorf("%s: order_items has line %d after %d lines", when, line, len(rows))
				}
				rows = append(rows, it)
			}
			if err := r.Err(); err != nil || !reflect.DeepEqual(rows, want) {
				t.Errorf("%s: order_items has %+v (%v), want %+v", when, rows, err, want)
			}
		}
		checkItems("after the migration", want)

		// Processing reserves the second line: only its flag changes.
		if err := s.InTx(ctx, func(tx order.Tx) error {
			o, err := tx.Order(ctx, "with-items")
			if err != nil {
				return err
			}
			o.Items[1].Reserved = true
			return tx.UpdateOrder(ctx, o)
		}); err != nil {
			t.Fatal(err)
		}
		want[1].Reserved = true
		checkItems("after a flag changed", want)

		_, err := s.DB().ExecContext(ctx, `INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price, total_price)
			VALUES ('no-items', 1, 'p1', 1, 1, 1)`)
		if s.Dialect() == sqlstore.DialectSQLite && (err == nil || !strings.Contains(err.Error(), "view")) {
			t.Errorf("an insert into the view order_items: %v, want it refused", err)
		}
		if s.Dialect() == sqlstore.DialectPostgres && err != nil {
			t.Errorf("an insert into the table order_items: %v", err)
		}
		if s.Dialect() == sqlstore.DialectPostgres {
			exec(`DELETE FROM order_items WHERE order_id = 'no-items'`)
		}

		if err := s.MigrateDownTo(ctx, 6); err != nil {
			t.Fatalf("down to 6: %v", err)
		}
		var n int
		if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM order_items WHERE reserved`).Scan(&n); err != nil || n != 2 {
			t.Errorf("reserved items in the table after going down = %d, %v; want 2", n, err)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("up again: %v", err)
		}
		checkItems("after down and up", want)
	})
}

// TestItemsInOrdersReadAndWritten: orders created in one transaction, with
// and without items, read back whole by every read (one, a page, inside a
// transaction), and an order created and changed in the same transaction
// is stored as last changed.
func TestItemsInOrdersReadAndWritten(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := testContext(t)
		a, b, c := newOrder(t, "rw-a"), newOrder(t, "rw-b"), newOrder(t, "rw-c")
		b.Items = nil
		c.Items = c.Items[:1]
		err := s.InTx(ctx, func(tx order.Tx) error {
			for _, o := range []*order.Order{a, b, c} {
				if err := tx.CreateOrder(ctx, o); err != nil {
					return err
				}
			}
			o, err := tx.Order(ctx, "rw-c")
			if err != nil {
				return err
			}
			o.Items[0].Reserved = true
			return tx.UpdateOrder(ctx, o)
		})
		if err != nil {
			t.Fatal(err)
		}
		c.Items[0].Reserved = true
		wants := map[string][]order.Item{"rw-a": a.Items, "rw-b": nil, "rw-c": c.Items}
		page, _, err := s.ListOrders(ctx, sqlstore.ListQuery{After: "rw-", Limit: 10})
		if err != nil || len(page) != 3 {
			t.Fatalf("list: %d orders, %v", len(page), err)
		}
		for _, o := range page {
			if !reflect.DeepEqual(o.Items, wants[o.ID]) {
				t.Errorf("listed %s: items %+v, want %+v", o.ID, o.Items, wants[o.ID])
			}
		}
		err = s.InTx(ctx, func(tx order.Tx) error {
			if err := tx.Preload(ctx, order.Keys{OrderIDs: []string{"rw-a", "rw-b", "rw-c"}}); err != nil {
				return err
			}
			for id, want := range wants {
				o, err := tx.Order(ctx, id)
				if err != nil {
					return err
				}
				if !reflect.DeepEqual(o.Items, want) {
					t.Errorf("%s in a transaction: items %+v, want %+v", id, o.Items, want)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for id, want := range wants {
			if o, err := s.GetOrder(ctx, id); err != nil || !reflect.DeepEqual(o.Items, want) {
				t.Errorf("got %s: items %+v (%v), want %+v", id, o.Items, err, want)
			}
		}
	})
}
