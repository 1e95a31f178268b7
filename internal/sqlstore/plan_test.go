package sqlstore_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/orderd/orderd/internal/sqlstore"
	"github.com/orderd/orderd/internal/sqlstore/sqlstoretest"
)

// TestPreloadPlansWithoutStatistics: a full batch's preload finds its
// orders' items through the index even when order_items has no statistics
// (a new database, before the autovacuum daemon analyzes it). With the
// planner's default guess for order_items.order_id, 256 ids match most of
// the table, and without beginPG's setting these plans read all of it
// (a sequential scan) and compare each row with every id. (On the same
// guess a plan of the stock read made for 256 ids walks all of stock's
// index in a merge join where stock has rows; this test has none, and does
// not check that read's join. Collecting the ids into an array first
// avoided the walk but drained slower where orders reserve stock:
// docs/BENCHMARKS.md, item 32.)
func TestPreloadPlansWithoutStatistics(t *testing.T) {
	t.Parallel()
	s := sqlstoretest.Open(t, sqlstore.DialectPostgres)
	ctx := testContext(t)
	db := s.DB()
	for _, table := range []string{"orders", "order_items"} {
		// No analyze while the test runs: the statistics stay missing.
		if _, err := db.ExecContext(ctx, `ALTER TABLE `+table+` SET (autovacuum_enabled = false)`); err != nil {
			t.Fatal(err)
		}
	}
	const orders = 20000
	if _, err := db.ExecContext(ctx, `INSERT INTO orders (id, customer_id, status, currency, total_amount, created_at, updated_at)
		SELECT 'order-' || g, 'cust', 'processing', 'INR', 100, now(), now() FROM generate_series(1, $1) AS g`, orders); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price, total_price)
		SELECT 'order-' || g, l, 'prod-' || (g % 100), 1, 50, 50 FROM generate_series(1, $1) AS g, generate_series(1, 2) AS l`, orders); err != nil {
		t.Fatal(err)
	}
	var analyzed bool
	if err := db.QueryRowContext(ctx, `SELECT reltuples >= 0 FROM pg_class WHERE oid = 'order_items'::regclass`).Scan(&analyzed); err != nil {
		t.Fatal(err)
	}
	if analyzed {
		t.Fatal("order_items has statistics: the test needs a table without")
	}

	ids := make([]string, 256) // a full batch
	for i := range ids {
		ids[i] = fmt.Sprintf("order-%d", 1+i*(orders/len(ids)))
	}
	for _, c := range []struct {
		name  string
		query string
		args  []any
	}{
		{"items", sqlstore.PreloadItemsPG, []any{ids}},
		{"stock", sqlstore.PreloadStockPG, []any{[]string{"prod-1"}, ids}},
	} {
		plan, err := s.ExplainInTx(ctx, c.query, c.args...)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		// The ids must be the index's condition: neither a sequential
		// scan nor a walk over the whole index.
		if strings.Contains(plan, "Seq Scan on order_items") || !strings.Contains(plan, "Index Cond: (order_id = ANY") {
			t.Errorf("%s: the preload reads all of order_items for %d ids:\n%s", c.name, len(ids), plan)
		}
	}
}
