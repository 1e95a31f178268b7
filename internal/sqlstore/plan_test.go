package sqlstore_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/sqlstore"
	"github.com/orderd/orderd/internal/sqlstore/sqlstoretest"
)

// TestPreloadPlansWithoutStatistics: a full batch's preload finds its
// orders' items, and their stock, through the indexes even when the tables
// have no statistics (a new database, before the autovacuum daemon analyzes
// it). With the planner's default guess for order_items.order_id, 256 ids
// match most of the table: without beginPG's setting both reads scanned
// all of order_items and compared each row with every id, and with it but
// with the stock read's subquery as a join (IN (…)), that read walked all
// of stock's index in a merge join (docs/BENCHMARKS.md, items 32 and 34).
// EXPLAIN with values shows the plans PostgreSQL makes for them, which the
// service's prepared statements get in their first five executions and,
// where small batches came first, for full batches after them too.
func TestPreloadPlansWithoutStatistics(t *testing.T) {
	t.Parallel()
	s := sqlstoretest.Open(t, sqlstore.DialectPostgres)
	ctx := testContext(t)
	db := s.DB()
	for _, table := range []string{"orders", "order_items", "stock"} {
		// No analyze while the test runs: the statistics stay missing.
		if _, err := db.ExecContext(ctx, `ALTER TABLE `+table+` SET (autovacuum_enabled = false)`); err != nil {
			t.Fatal(err)
		}
	}
	const orders, products = 20000, 20000
	if _, err := db.ExecContext(ctx, `INSERT INTO orders (id, customer_id, status, currency, total_amount, created_at, updated_at)
		SELECT 'order-' || g, 'cust', 'processing', 'INR', 100, now(), now() FROM generate_series(1, $1) AS g`, orders); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price, total_price)
		SELECT 'order-' || g, l, 'prod-' || ((2 * g + l) % $2), 1, 50, 50 FROM generate_series(1, $1) AS g, generate_series(1, 2) AS l`,
		orders, products); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO stock (product_id, available, updated_at)
		SELECT 'prod-' || g, 10, now() FROM generate_series(0, $1 - 1) AS g`, products); err != nil {
		t.Fatal(err)
	}
	var analyzed bool
	if err := db.QueryRowContext(ctx, `SELECT bool_or(reltuples >= 0) FROM pg_class
		WHERE oid IN ('order_items'::regclass, 'stock'::regclass)`).Scan(&analyzed); err != nil {
		t.Fatal(err)
	}
	if analyzed {
		t.Fatal("order_items or stock has statistics: the test needs tables without")
	}

	ids := make([]string, 256) // a full batch
	for i := range ids {
		ids[i] = fmt.Sprintf("order-%d", 1+i*(orders/len(ids)))
	}
	for _, c := range []struct {
		name  string
		query string
		args  []any
		conds []string // each an index's condition the plan must have
	}{
		{"items", sqlstore.PreloadItemsPG, []any{ids}, []string{"Index Cond: (order_id = ANY"}},
		{"stock", sqlstore.PreloadStockPG, []any{[]string{"prod-1"}, ids},
			[]string{"Index Cond: (order_id = ANY", "Index Cond: (product_id = ANY"}},
	} {
		plan, err := s.ExplainInTx(ctx, false, c.query, c.args...)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		// The ids must be the indexes' conditions: no sequential scan,
		// and no join that walks a whole index.
		for _, bad := range []string{"Seq Scan", "Merge Join", "Hash Join"} {
			if strings.Contains(plan, bad) {
				t.Errorf("%s: the preload's plan for %d ids has a %s:\n%s", c.name, len(ids), bad, plan)
			}
		}
		for _, cond := range c.conds {
			if !strings.Contains(plan, cond) {
				t.Errorf("%s: the preload's plan for %d ids lacks %q:\n%s", c.name, len(ids), cond, plan)
			}
		}
	}
}

// TestStockPreloadWithoutStockRecords: where no product has a stock record,
// the stock read does not look for the orders' items in order_items (a full
// batch of new orders would look for every one of its ids there, for
// nothing), and still finds a stock record once there is one.
func TestStockPreloadWithoutStockRecords(t *testing.T) {
	t.Parallel()
	s := sqlstoretest.Open(t, sqlstore.DialectPostgres)
	ctx := testContext(t)
	ids := []string{"order-1", "order-2"}
	itemsScan := regexp.MustCompile(`Scan (using|on) order_items_pkey.*\n`)

	plan, err := s.ExplainInTx(ctx, true, sqlstore.PreloadStockPG, []string{"prod-1"}, ids)
	if err != nil {
		t.Fatal(err)
	}
	if scan := itemsScan.FindString(plan); !strings.Contains(scan, "never executed") {
		t.Errorf("without stock records the read still looked in order_items (%q):\n%s", scan, plan)
	}

	if _, err := s.SetStock(ctx, "prod-1", 5); err != nil {
		t.Fatal(err)
	}
	plan, err = s.ExplainInTx(ctx, true, sqlstore.PreloadStockPG, []string{"prod-1"}, ids)
	if err != nil {
		t.Fatal(err)
	}
	if scan := itemsScan.FindString(plan); scan == "" || strings.Contains(scan, "never executed") {
		t.Errorf("with a stock record the read did not look in order_items (%q):\n%s", scan, plan)
	}
	if !strings.Contains(plan, "on stock (actual rows=1 ") {
		t.Errorf("the stock record of prod-1 was not read:\n%s", plan)
	}
}

// TestInboxReadUsesItsKey: the inbox's read of a batch (Preload) finds each
// (order id, event id) pair through the table's primary key, on both
// databases, rather than by reading the whole inbox.
func TestInboxReadUsesItsKey(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := testContext(t)
		if _, err := s.DB().ExecContext(ctx, `INSERT INTO `+s.InboxTable()+` (order_id, event_id, event_name, processed_at)
			WITH RECURSIVE g (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 5000)
			SELECT 'order-' || n, 'event-' || n, 'OrderCreated', '2026-01-01T00:00:00.000000Z' FROM g`); err != nil {
			t.Fatal(err)
		}
		keys := make([]order.EventKey, 256) // a full batch
		for i := range keys {
			keys[i] = order.EventKey{OrderID: fmt.Sprintf("order-%d", 1+i*19), ID: fmt.Sprintf("event-%d", 1+i*19)}
		}
		plan, err := s.InboxReadPlan(ctx, keys)
		if err != nil {
			t.Fatal(err)
		}
		want, bad := regexp.MustCompile(`(?i)inbox.*(primary key|index).*\(order_id=\? AND event_id=\?\)`), "SCAN inbox"
		if s.Dialect() == sqlstore.DialectPostgres {
			want, bad = regexp.MustCompile(`Index Scan using processed_events_pkey .*\n.*Index Cond: \(\(order_id = k\.order_id\) AND \(event_id = k\.event_id\)\)`), "Join"
		}
		if !want.MatchString(plan) || strings.Contains(plan, bad) {
			t.Errorf("the inbox's read of %d keys does not look them up by its primary key:\n%s", len(keys), plan)
		}
	})
}

// TestProcessedEventUsesKeys: on SQLite, where processed_events is a view of
// the table inbox and of the entries in orders' rows (migration 8),
// ProcessedEvent's read looks an event up through the primary key of each,
// rather than reading either whole.
func TestProcessedEventUsesKeys(t *testing.T) {
	t.Parallel()
	s := sqlstoretest.Open(t, sqlstore.DialectSQLite)
	ctx := testContext(t)
	rows, err := s.DB().QueryContext(ctx, "EXPLAIN QUERY PLAN "+sqlstore.ProcessedEventQuery, "order-1", "event-1")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan strings.Builder
	for rows.Next() {
		var id, parent, unused int
		var line string
		if err := rows.Scan(&id, &parent, &unused, &line); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(line + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"SEARCH inbox USING INDEX", "SEARCH orders USING INDEX"} {
		if !strings.Contains(plan.String(), want) {
			t.Errorf("the plan has no %q:\n%s", want, plan.String())
		}
	}
	for _, bad := range []string{"SCAN inbox", "SCAN orders"} {
		if strings.Contains(plan.String(), bad) {
			t.Errorf("the plan has %q:\n%s", bad, plan.String())
		}
	}
}
