package main

import (
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
