package main

import (
	"strings"
	"testing"

	"github.com/orderd/orderd/internal/sqlstore/sqlstoretest"
)

// TestSeedStock: -stock's records are what the service reads back (on
// SQLite, its time format too), the sample events' products first.
func TestSeedStock(t *testing.T) {
	for _, dialect := range sqlstoretest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			dbURL := sqlstoretest.URL(t, dialect)
			st := sqlstoretest.OpenURL(t, dbURL)       // migrated, as orderd leaves it
			d := databaseAt(dialect, dbURL, func() {}) // sqlstoretest removes it
			ctx := t.Context()
			if _, err := st.SetStock(ctx, "set-by-the-service", 1); err != nil {
				t.Fatal(err)
			}
			const n = 150
			if err := d.seedStock(ctx, n); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{"prod-000", "prod-042", "prod-099", "catalogue-100", "catalogue-149"} {
				s, err := st.GetStock(ctx, p)
				if err != nil {
					t.Fatalf("stock of %s: %v", p, err)
				}
				if s.Available != 1<<40 || s.Reserved != 0 {
					t.Errorf("stock of %s: %+v", p, s)
				}
			}
			if _, err := st.GetStock(ctx, "catalogue-150"); err == nil {
				t.Errorf("catalogue-150 has stock: %d records asked for", n)
			}
			db, err := d.open()
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var count int
			if err := db.QueryRowContext(ctx, `SELECT count(*) FROM stock`).Scan(&count); err != nil {
				t.Fatal(err)
			}
			if count != n+1 {
				t.Errorf("%d stock records, want %d and the service's own", count, n)
			}
			if dialect == storeSQLite {
				// The service's fixed-width time text, which sorts in time order.
				var seeded, set string
				if err := db.QueryRowContext(ctx, `SELECT (SELECT updated_at FROM stock WHERE product_id = 'prod-000'),
					(SELECT updated_at FROM stock WHERE product_id = 'set-by-the-service')`).Scan(&seeded, &set); err != nil {
					t.Fatal(err)
				}
				if len(seeded) != len(set) || seeded[len(seeded)-1] != 'Z' {
					t.Errorf("seeded updated_at %q is not in the service's format (%q)", seeded, set)
				}
			}
		})
	}
}

// TestCheckOrders: the drain counts only when the database holds every
// order produced, each processed.
func TestCheckOrders(t *testing.T) {
	dialect := storeSQLite
	dbURL := sqlstoretest.URL(t, dialect)
	sqlstoretest.OpenURL(t, dbURL) // migrated, as orderd leaves it
	d := databaseAt(dialect, dbURL, func() {})
	ctx := t.Context()
	db, err := d.open()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	insert := func(id, status string) {
		t.Helper()
		if _, err := db.ExecContext(ctx, `INSERT INTO orders (id, customer_id, status, currency, total_amount, created_at, updated_at)
			VALUES ($1, 'c', $2, 'USD', 100, '2026-01-05T11:34:53.000000Z', '2026-01-05T11:34:53.000000Z')`, id, status); err != nil {
			t.Fatal(err)
		}
	}
	insert("o-1", "processing")
	insert("o-2", "processing")
	var res result
	if err := checkOrders(ctx, d, 2, &res); err != nil || res.processing != 2 {
		t.Errorf("two processed orders of two: %v (%+v)", err, res)
	}
	if err := checkOrders(ctx, d, 3, &res); err == nil || !strings.Contains(err.Error(), "LOST EVENTS") {
		t.Errorf("two orders of three: %v, want lost events", err)
	}
	insert("o-3", "new")
	if err := checkOrders(ctx, d, 3, &res); err == nil || !strings.Contains(err.Error(), "NOT PROCESSED") {
		t.Errorf("a refused order: %v, want it reported", err)
	}
}
