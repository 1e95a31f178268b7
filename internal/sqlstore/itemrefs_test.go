package sqlstore_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/orderd/orderd/internal/sqlstore"
	"github.com/orderd/orderd/internal/sqlstore/sqlstoretest"
)

// TestItemsReferenceOrders: an item must name an existing order, an order
// with items keeps its id, and deleting an order deletes its items.
// PostgreSQL has migration 4's triggers for it, and the foreign key again
// once migration 4 is undone: the same statements must pass and fail in
// both. (SQLite had its foreign key until migration 7 moved the items into
// their order's row, where all three hold by themselves: see
// TestItemsInOrdersMigration.) On PostgreSQL an item also locks its order
// until its transaction ends, as the foreign key did; TRUNCATE orders leaves
// no item without its order (the key refuses it, the triggers take the items
// with it); and the triggers find the orders from a session whose
// search_path lacks the schema.
func TestItemsReferenceOrders(t *testing.T) {
	t.Parallel()
	sqlstoretest.Dialects(t) // fails at once in CI without PostgreSQL
	t.Run(sqlstore.DialectPostgres, func(t *testing.T) {
		t.Parallel()
		s := sqlstoretest.Open(t, sqlstore.DialectPostgres)
		ctx := testContext(t)
		db := s.DB()
		// foreignKey: PostgreSQL with its foreign key (migration 4 undone).
		check := func(when, p string, foreignKey bool) {
			t.Helper()
			create(t, s, newOrder(t, p+"o1"), newOrder(t, p+"o2"))
			exec := func(q string) error {
				_, err := db.ExecContext(ctx, fmt.Sprintf(q, p))
				return err
			}
			item := `INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price, total_price) VALUES `
			for _, r := range []struct{ what, q string }{
				{"an item of a missing order", item + `('%[1]smissing', 1, 'p1', 1, 1, 1)`},
				{"items of an order and of a missing one", item + `('%[1]so1', 3, 'p1', 1, 1, 1), ('%[1]smissing', 1, 'p1', 1, 1, 1)`},
				{"an item moved to a missing order", `UPDATE order_items SET order_id = '%[1]smissing' WHERE order_id = '%[1]so1' AND line_no = 1`},
				{"a new id for an order with items", `UPDATE orders SET id = '%[1]srenamed' WHERE id = '%[1]so1'`},
			} {
				err := exec(r.q)
				var pgErr *pgconn.PgError
				switch {
				case err == nil:
					t.Errorf("%s: %s was accepted", when, r.what)
				case !errors.As(err, &pgErr) || pgErr.Code != "23503":
					t.Errorf("%s: %s: %v, want foreign_key_violation (23503)", when, r.what, err)
				}
			}
			for _, q := range []string{
				item + `('%[1]so1', 3, 'p1', 1, 1, 1)`,
				`UPDATE order_items SET order_id = '%[1]so2', line_no = 4 WHERE order_id = '%[1]so1' AND line_no = 3`,
				`DELETE FROM orders WHERE id = '%[1]so1'`,
			} {
				if err := exec(q); err != nil {
					t.Fatalf("%s: %s: %v", when, fmt.Sprintf(q, p), err)
				}
			}
			for id, want := range map[string]int{p + "o1": 0, p + "o2": 3} {
				var n int
				err := db.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*) FROM order_items WHERE order_id = '%s'`, id)).Scan(&n)
				if err != nil || n != want {
					t.Errorf("%s: order %s has %d items (%v), want %d", when, id, n, err, want)
				}
			}
			// TRUNCATE orders: the foreign key refuses it; the triggers
			// truncate the items with the orders. No item is left without
			// its order.
			_, err := db.ExecContext(ctx, `TRUNCATE orders`)
			switch {
			case foreignKey && err == nil:
				t.Errorf("%s: TRUNCATE orders was accepted", when)
			case !foreignKey && err != nil:
				t.Errorf("%s: TRUNCATE orders: %v", when, err)
			case err == nil:
				create(t, s, newOrder(t, p+"o2"))
			}
			var orphans int
			if err := db.QueryRowContext(ctx, `SELECT count(*) FROM order_items i
				WHERE NOT EXISTS (SELECT FROM orders o WHERE o.id = i.order_id)`).Scan(&orphans); err != nil || orphans != 0 {
				t.Errorf("%s: after TRUNCATE orders, %d items without their order (%v)", when, orphans, err)
			}
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tx.Rollback() }()
			if _, err := tx.ExecContext(ctx, fmt.Sprintf(item+`('%so2', 5, 'p1', 1, 1, 1)`, p)); err != nil {
				t.Fatalf("%s: insert an item in a transaction: %v", when, err)
			}
			if rowLockable(t, db, "orders", "id", p+"o2") {
				t.Errorf("%s: an open transaction's new item does not lock its order", when)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			if !rowLockable(t, db, "orders", "id", p+"o2") {
				t.Errorf("%s: the order is still locked after the commit", when)
			}
		}
		check("migrated", "a-", false)
		// From a session whose search_path lacks the schema, the checks
		// still find its orders.
		var schema string
		if err := db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
			t.Fatal(err)
		}
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = conn.ExecContext(ctx, `SET search_path = pg_catalog`)
		if err == nil {
			_, err = conn.ExecContext(ctx, `INSERT INTO `+pgx.Identifier{schema, "order_items"}.Sanitize()+`
				(order_id, line_no, product_id, quantity, unit_price, total_price) VALUES ('a-o2', 6, 'p1', 1, 1, 1)`)
		}
		if err != nil {
			t.Errorf("an item inserted from another search_path: %v", err)
		}
		if _, err := conn.ExecContext(ctx, `RESET search_path`); err != nil {
			t.Fatal(err)
		}
		_ = conn.Close()
		if err := s.MigrateDownTo(ctx, 3); err != nil {
			t.Fatalf("down to 3: %v", err)
		}
		// The store's code needs migration 5's column; only migration 4
		// is to be undone here.
		initialStatus := func(ddl string) {
			t.Helper()
			if _, err := db.ExecContext(ctx, `ALTER TABLE orders `+ddl); err != nil {
				t.Fatal(err)
			}
		}
		initialStatus(`ADD COLUMN initial_status TEXT NOT NULL DEFAULT ''`)
		check("down to 3 (the foreign key)", "b-", true)
		initialStatus(`DROP COLUMN initial_status`)
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("up again: %v", err)
		}
		check("up again", "c-", false)
	})
}
