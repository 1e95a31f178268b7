package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orderd/orderd/internal/fault"
	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/sqlstore"
	"github.com/orderd/orderd/internal/sqlstore/sqlstoretest"
)

// eachDialect runs test as a parallel subtest per dialect, each on its own
// migrated store.
func eachDialect(t *testing.T, test func(t *testing.T, s *sqlstore.Store)) {
	t.Helper()
	for _, d := range sqlstoretest.Dialects(t) {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			test(t, sqlstoretest.Open(t, d))
		})
	}
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func currency(t testing.TB, code string) order.Currency {
	t.Helper()
	c, err := order.LookupCurrency(code)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ptr(v int64) *int64 { return &v }

// newOrder returns a plain new order with two items.
func newOrder(t testing.TB, id string) *order.Order {
	t.Helper()
	at := time.Date(2024, 3, 1, 12, 30, 45, 123456000, time.UTC)
	return &order.Order{
		ID:             id,
		CustomerID:     "cust-" + id,
		CustomerName:   "Ada",
		Status:         order.StatusNew,
		Currency:       currency(t, "INR"),
		TotalAmount:    2500,
		Items:          []order.Item{{ProductID: "p1", Quantity: 2, UnitPrice: 1000, TotalPrice: 2000}, {ProductID: "p2", Quantity: 1, UnitPrice: 500, TotalPrice: 500}},
		ShippingRegion: "Kerala",
		ShippingMethod: order.ShippingStandard,
		CreatedAt:      at,
		UpdatedAt:      at,
	}
}

func create(t *testing.T, s *sqlstore.Store, orders ...*order.Order) {
	t.Helper()
	err := s.InTx(testContext(t), func(tx order.Tx) error {
		for _, o := range orders {
			if err := tx.CreateOrder(testContext(t), o); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name    string
		url     string
		dialect string
		wantErr bool
	}{
		{name: "sqlite absolute path", url: "sqlite://" + dir + "/a.db", dialect: "sqlite"},
		{name: "sqlite memory", url: "sqlite://:memory:", dialect: "sqlite"},
		{name: "postgres is lazy", url: "postgres://nobody@127.0.0.1:1/x?sslmode=disable", dialect: "postgres"},
		{name: "postgresql scheme", url: "postgresql://nobody@127.0.0.1:1/x?sslmode=disable", dialect: "postgres"},
		{name: "sqlite without path", url: "sqlite://", wantErr: true},
		{name: "sqlite with query", url: "sqlite://" + dir + "/b.db?mode=ro", wantErr: true},
		{name: "sqlite in a missing directory", url: "sqlite://" + dir + "/missing/c.db", wantErr: true},
		{name: "unknown scheme", url: "mysql://root:secret@localhost/x", wantErr: true},
		{name: "bad postgres url", url: "postgres://u@h:notaport/x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := sqlstore.Open(testContext(t), tt.url, nil)
			if tt.wantErr {
				if err == nil {
					s.Close()
					t.Fatalf("Open(%q) succeeded, want an error", tt.url)
				}
				if tt.name == "unknown scheme" && strings.Contains(err.Error(), "secret") {
					t.Errorf("error %q leaks the password", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%q): %v", tt.url, err)
			}
			t.Cleanup(func() { s.Close() })
			if got := s.Dialect(); got != tt.dialect {
				t.Errorf("Dialect() = %q, want %q", got, tt.dialect)
			}
		})
	}
}

// TestSQLiteRelativeAndMemory checks the two SQLite forms that are not a
// temp-dir absolute path: a relative path (sqlite://orders.db, the default)
// lands in the working directory, and :memory: works end to end on its one
// connection.
func TestSQLiteRelativeAndMemory(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, url := range []string{"sqlite://orders.db", "sqlite://:memory:"} {
		t.Run(url, func(t *testing.T) {
			s := sqlstoretest.OpenURL(t, url)
			create(t, s, newOrder(t, "o1"))
			if _, err := s.GetOrder(testContext(t), "o1"); err != nil {
				t.Fatalf("GetOrder: %v", err)
			}
		})
	}
	if _, err := os.Stat("orders.db"); err != nil {
		t.Fatalf("sqlite://orders.db is not in the working directory: %v", err)
	}
}

func TestMigrateTwiceIsIdempotent(t *testing.T) {
	t.Parallel()
	for _, d := range sqlstoretest.Dialects(t) {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			url := sqlstoretest.URL(t, d)
			first := sqlstoretest.OpenURL(t, url) // migrates
			create(t, first, newOrder(t, "kept"))
			if err := first.Migrate(testContext(t)); err != nil {
				t.Fatalf("second Migrate: %v", err)
			}
			// A second instance starting on the same database migrates too.
			second := sqlstoretest.OpenURL(t, url)
			if err := second.Migrate(testContext(t)); err != nil {
				t.Fatalf("Migrate from a second store: %v", err)
			}
			if _, err := second.GetOrder(testContext(t), "kept"); err != nil {
				t.Fatalf("data lost by re-migrating: %v", err)
			}
		})
	}
}

// TestMigrateCount: MigrateCount reports the migrations it applied, none on
// a schema that is up to date.
func TestMigrateCount(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := testContext(t)
		if n, err := s.MigrateCount(ctx); err != nil || n != 0 {
			t.Errorf("MigrateCount of a migrated store = %d, %v; want 0, nil", n, err)
		}
		if err := s.MigrateDownTo(ctx, 2); err != nil {
			t.Fatalf("down to 2: %v", err)
		}
		if n, err := s.MigrateCount(ctx); err != nil || n != 6 {
			t.Errorf("MigrateCount after going down to 2 of 8 = %d, %v; want 6, nil", n, err)
		}
		if n, err := s.MigrateCount(ctx); err != nil || n != 0 {
			t.Errorf("MigrateCount again = %d, %v; want 0, nil", n, err)
		}
	})
}

// TestByteOrderKeysDownAndUp: after migrating, PostgreSQL compares the key
// columns as bytes; migration 3 undone, they follow the database's locale
// again, and migrated up once more they compare as bytes, with the data
// kept throughout. On SQLite the migration only records its version.
func TestByteOrderKeysDownAndUp(t *testing.T) {
	t.Parallel()
	keys := [][2]string{
		{"orders", "id"}, {"orders", "status"}, {"order_items", "order_id"},
		{"stock", "product_id"}, {"processed_events", "event_id"},
	}
	eachDialect(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := testContext(t)
		create(t, s, newOrder(t, "kept"))
		expect := func(when, want string) {
			t.Helper()
			if s.Dialect() != sqlstore.DialectPostgres {
				return
			}
			for _, k := range keys {
				got, err := s.Collation(ctx, k[0], k[1])
				if err != nil {
					t.Fatalf("%s: collation of %s.%s: %v", when, k[0], k[1], err)
				}
				if got != want {
					t.Errorf("%s: %s.%s collates %q, want %q", when, k[0], k[1], got, want)
				}
			}
		}
		expect("migrated", "C")
		if err := s.MigrateDownTo(ctx, 2); err != nil {
			t.Fatalf("down to 2: %v", err)
		}
		expect("down to 2", "")
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("up again: %v", err)
		}
		expect("up again", "C")
		if _, err := s.GetOrder(ctx, "kept"); err != nil {
			t.Fatalf("order lost by migrating down and up: %v", err)
		}
	})
}

func TestOrderRoundTrip(t *testing.T) {
	t.Parallel()
	jpy, kwd := currency(t, "JPY"), currency(t, "KWD")
	created := time.Date(2024, 2, 29, 23, 59, 59, 987654000, time.UTC)
	updated := time.Date(2024, 3, 1, 0, 0, 0, 1000, time.UTC)
	tests := []struct {
		name   string
		mutate func(o *order.Order)
		// want adjusts the expected loaded order; nil means the order as given.
		want func(o *order.Order)
	}{
		{name: "computed amounts unset", mutate: func(o *order.Order) {}},
		{name: "computed amounts set, zero is not null", mutate: func(o *order.Order) {
			o.Status = order.StatusCancelled
			o.ShippingCost, o.Discount, o.FinalTotal, o.RefundAmount = ptr(0), ptr(250), ptr(2250), ptr(2138)
			o.CancellationReason = "Customer request"
			o.TrackingNumber = "TRK-1"
			o.Items[0].Reserved = true
		}},
		{name: "zero-digit currency", mutate: func(o *order.Order) {
			o.Currency = jpy
			o.ShippingMethod = order.ShippingExpress
		}},
		{name: "three-digit currency", mutate: func(o *order.Order) { o.Currency = kwd }},
		{name: "empty optional text and unicode", mutate: func(o *order.Order) {
			o.CustomerName, o.ShippingRegion = "", ""
			o.Items[1].ProductID = "produit-été-☃"
		}},
		{name: "times are UTC to the microsecond", mutate: func(o *order.Order) {
			loc := time.FixedZone("IST", 5*3600+1800)
			o.CreatedAt = created.In(loc)
			o.UpdatedAt = updated.Add(789 * time.Nanosecond) // below the stored precision
		}, want: func(o *order.Order) {
			o.CreatedAt, o.UpdatedAt = created, updated
		}},
	}
	eachDialect(t, func(t *testing.T, s *sqlstore.Store) {
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				in := newOrder(t, fmt.Sprintf("rt-%d", i))
				tt.mutate(in)
				want := newOrder(t, in.ID)
				tt.mutate(want)
				if tt.want != nil {
					tt.want(want)
				}
				create(t, s, in)
				if diff := cmp.Diff(want, in); diff != "" {
					t.Errorf("CreateOrder did not normalise the order to what it stored (-want +got):\n%s", diff)
				}
				got, err := s.GetOrder(testContext(t), in.ID)
				if err != nil {
					t.Fatalf("GetOrder: %v", err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("GetOrder (-want +got):\n%s", diff)
				}
				if got.CreatedAt.Location() != time.UTC || got.UpdatedAt.Location() != time.UTC {
					t.Errorf("times not in UTC: %v, %v", got.CreatedAt.Location(), got.UpdatedAt.Location())
				}
				var inTx *order.Order
				err = s.InTx(testContext(t), func(tx order.Tx) error {
					inTx, err = tx.Order(testContext(t), in.ID)
					return err
				})
				if err != nil {
					t.Fatalf("Tx.Order: %v", err)
				}
				if diff := cmp.Diff(want, inTx); diff != "" {
					t.Errorf("Tx.Order (-want +got):\n%s", diff)
				}
			})
		}
	})
}

func TestUpdateOrder(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := testContext(t)
		o := newOrder(t, "u1")
		o.Items = append(o.Items, order.Item{ProductID: "p3", Quantity: 3, UnitPrice: 0, TotalPrice: 0})
		create(t, s, o)
		steps := []struct {
			name   string
			change func(o *order.Order)
		}{
			{name: "processed", change: func(o *order.Order) {
				o.Status = order.StatusProcessing
				o.ShippingCost, o.Discount, o.FinalTotal = ptr(599), ptr(250), ptr(2849)
				o.Items[0].Reserved, o.Items[2].Reserved = true, true
				o.UpdatedAt = o.UpdatedAt.Add(time.Hour)
			}},
			{name: "one line released", change: func(o *order.Order) {
				o.Items[0].Reserved, o.Items[1].Reserved = false, true
			}},
			{name: "cancelled, all released", change: func(o *order.Order) {
				o.Status = order.StatusCancelled
				o.RefundAmount, o.CancellationReason = ptr(2707), "changed mind"
				for i := range o.Items {
					o.Items[i].Reserved = false
				}
				o.UpdatedAt = o.UpdatedAt.Add(time.Minute)
			}},
		}
		want := o
		for _, st := range steps {
			t.Run(st.name, func(t *testing.T) {
				err := s.InTx(ctx, func(tx order.Tx) error {
					cur, err := tx.Order(ctx, o.ID)
					if err != nil {
						return err
					}
					st.change(cur)
					want = cur
					return tx.UpdateOrder(ctx, cur)
				})
				if err != nil {
					t.Fatalf("update: %v", err)
				}
				got, err := s.GetOrder(ctx, o.ID)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("after update (-want +got):\n%s", diff)
				}
			})
		}
	})
}

func TestCreateDuplicateIsConflict(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := testContext(t)
		first := newOrder(t, "dup")
		create(t, s, first)
		second := newOrder(t, "dup")
		second.TotalAmount = 999
		err := s.InTx(ctx, func(tx order.Tx) error {
			err := tx.CreateOrder(ctx, second)
			if order.ReasonOf(err) != order.ReasonConflict {
				return fmt.Errorf("CreateOrder of an existing id = %v, want a conflict", err)
			}
			if fault.KindOf(err) != fault.Permanent {
				return fmt.Errorf("conflict is %v, want permanent", fault.KindOf(err))
			}
			// The refusal must leave the transaction usable.
			_, err = tx.MarkProcessed(ctx, order.EventKey{ID: "after-conflict"}, "OrderCreated")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.GetOrder(ctx, "dup")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(first, got); diff != "" {
			t.Errorf("existing order changed (-want +got):\n%s", diff)
		}
		if ok, err := s.ProcessedEvent(ctx, order.EventKey{ID: "after-conflict"}); err != nil || !ok {
			t.Errorf("work after the conflict was not committed: %v, %v", ok, err)
		}
	})
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := testContext(t)
		tests := []struct {
			name string
			call func() error
		}{
			{"GetOrder", func() error { _, err := s.GetOrder(ctx, "nope"); return err }},
			{"GetStock", func() error { _, err := s.GetStock(ctx, "nope"); return err }},
			{"Tx.Order", func() error {
				return s.InTx(ctx, func(tx order.Tx) error { _, err := tx.Order(ctx, "nope"); return err })
			}},
			{"Tx.UpdateOrder", func() error {
				return s.InTx(ctx, func(tx order.Tx) error { return tx.UpdateOrder(ctx, newOrder(t, "nope")) })
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := tt.call()
				if !errors.Is(err, order.ErrNotFound) {
					t.Fatalf("err = %v, want not found", err)
				}
				if k := fault.KindOf(err); k != fault.Permanent {
					t.Errorf("kind = %v, want permanent", k)
				}
			})
		}
		if _, err := s.SetStock(ctx, "some", 3); err != nil {
			t.Fatal(err)
		}
		err := s.InTx(ctx, func(tx order.Tx) error {
			got, err := tx.Stocks(ctx, []string{"nope", "some", "some"})
			want := map[string]order.Stock{"some": {ProductID: "some", Available: 3}}
			if err != nil || len(got) != 1 || got["some"] != want["some"] {
				return fmt.Errorf("Tx.Stocks = %+v, %v; want %+v", got, err, want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func TestListOrders(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := testContext(t)
		statuses := []order.Status{order.StatusNew, order.StatusProcessing, order.StatusNew, order.StatusCancelled,
			order.StatusNew, order.StatusProcessing, order.StatusNew}
		var all []*order.Order
		for i, st := range statuses {
			o := newOrder(t, fmt.Sprintf("o%02d", i))
			o.Status = st
			o.Items = o.Items[:1+i%2] // one or two items, to see they land on the right order
			all = append(all, o)
		}
		// Created out of id order: the list is in id order whatever the insertion order.
		create(t, s, all[3], all[0], all[6], all[1], all[5], all[2], all[4])

		ids := func(os []*order.Order) []string {
			var out []string
			for _, o := range os {
				out = append(out, o.ID)
			}
			return out
		}
		tests := []struct {
			name  string
			query sqlstore.ListQuery
			pages [][]string
		}{
			{"all in one default page", sqlstore.ListQuery{}, [][]string{{"o00", "o01", "o02", "o03", "o04", "o05", "o06"}}},
			{"all by three", sqlstore.ListQuery{Limit: 3}, [][]string{{"o00", "o01", "o02"}, {"o03", "o04", "o05"}, {"o06"}}},
			{"exact fit has no next page", sqlstore.ListQuery{Limit: 7}, [][]string{{"o00", "o01", "o02", "o03", "o04", "o05", "o06"}}},
			{"new by two", sqlstore.ListQuery{Status: order.StatusNew, Limit: 2}, [][]string{{"o00", "o02"}, {"o04", "o06"}}},
			{"processing", sqlstore.ListQuery{Status: order.StatusProcessing}, [][]string{{"o01", "o05"}}},
			{"none shipped", sqlstore.ListQuery{Status: order.StatusShipped}, [][]string{nil}},
			{"after a cursor", sqlstore.ListQuery{After: "o04", Limit: 1}, [][]string{{"o05"}, {"o06"}}},
			{"cursor between ids", sqlstore.ListQuery{After: "o035", Status: order.StatusNew}, [][]string{{"o04", "o06"}}},
			{"huge limit is capped, not refused", sqlstore.ListQuery{Limit: 1 << 30}, [][]string{{"o00", "o01", "o02", "o03", "o04", "o05", "o06"}}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				q := tt.query
				for i, want := range tt.pages {
					page, next, err := s.ListOrders(ctx, q)
					if err != nil {
						t.Fatalf("page %d: %v", i, err)
					}
					if diff := cmp.Diff(want, ids(page)); diff != "" {
						t.Errorf("page %d ids (-want +got):\n%s", i, diff)
					}
					for _, o := range page {
						var orig *order.Order
						for _, a := range all {
							if a.ID == o.ID {
								orig = a
							}
						}
						if diff := cmp.Diff(orig, o); diff != "" {
							t.Errorf("listed order %s (-want +got):\n%s", o.ID, diff)
						}
					}
					last := i == len(tt.pages)-1
					if last != (next == "") {
						t.Fatalf("page %d: next cursor %q, last page %v", i, next, last)
					}
					q.After = next
				}
			})
		}
		if _, _, err := s.ListOrders(ctx, sqlstore.ListQuery{Status: "lost"}); order.ReasonOf(err) != order.ReasonInvalid {
			t.Errorf("unknown status filter: err = %v, want reason invalid", err)
		}
	})
}

func TestStock(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := testContext(t)
		check := func(t *testing.T, product string, available, reserved int64) {
			t.Helper()
			got, err := s.GetStock(ctx, product)
			if err != nil {
				t.Fatalf("GetStock: %v", err)
			}
			want := order.Stock{ProductID: product, Available: available, Reserved: reserved}
			if got != want {
				t.Fatalf("stock = %+v, want %+v", got, want)
			}
		}
		inTx := func(fn func(tx order.Tx) error) error { return s.InTx(ctx, fn) }

		st, err := s.SetStock(ctx, "p", 5)
		if err != nil || st != (order.Stock{ProductID: "p", Available: 5}) {
			t.Fatalf("SetStock = %+v, %v", st, err)
		}
		check(t, "p", 5, 0)

		steps := []struct {
			name                string
			run                 func() error
			available, reserved int64
		}{
			{"reserve 3", func() error {
				return inTx(func(tx order.Tx) error {
					ok, err := tx.Reserve(ctx, "p", 3)
					if err == nil && !ok {
						err = errors.New("refused")
					}
					return err
				})
			}, 2, 3},
			{"reserve beyond available is refused and changes nothing", func() error {
				return inTx(func(tx order.Tx) error {
					ok, err := tx.Reserve(ctx, "p", 3)
					if err == nil && ok {
						err = errors.New("reserved 3 of 2")
					}
					return err
				})
			}, 2, 3},
			{"reserve all that is left", func() error {
				return inTx(func(tx order.Tx) error {
					ok, err := tx.Reserve(ctx, "p", 2)
					if err == nil && !ok {
						err = errors.New("refused")
					}
					if stock, err2 := tx.Stocks(ctx, []string{"p"}); err == nil && (err2 != nil || stock["p"] != (order.Stock{ProductID: "p", Reserved: 5})) {
						err = fmt.Errorf("Tx.Stocks sees %+v, %v", stock, err2)
					}
					return err
				})
			}, 0, 5},
			{"set stock keeps what is reserved", func() error { _, err := s.SetStock(ctx, "p", 10); return err }, 10, 5},
			{"release 4", func() error {
				return inTx(func(tx order.Tx) error { return tx.Release(ctx, "p", 4) })
			}, 14, 1},
		}
		for _, st := range steps {
			t.Run(st.name, func(t *testing.T) {
				if err := st.run(); err != nil {
					t.Fatal(err)
				}
				check(t, "p", st.available, st.reserved)
			})
		}

		refusals := []struct {
			name   string
			run    func() error
			reason string // "" for a bug (unclassified error)
		}{
			{"release beyond reserved", func() error {
				return inTx(func(tx order.Tx) error { return tx.Release(ctx, "p", 2) })
			}, ""},
			{"release without stock record", func() error {
				return inTx(func(tx order.Tx) error { return tx.Release(ctx, "ghost", 1) })
			}, ""},
			{"reserve zero", func() error {
				return inTx(func(tx order.Tx) error { _, err := tx.Reserve(ctx, "p", 0); return err })
			}, ""},
			{"negative stock", func() error { _, err := s.SetStock(ctx, "p", -1); return err }, order.ReasonInvalid},
			{"empty product id", func() error { _, err := s.SetStock(ctx, "", 1); return err }, order.ReasonInvalid},
			{"stock over MaxUnits", func() error { _, err := s.SetStock(ctx, "p", order.MaxUnits+1); return err }, order.ReasonInvalid},
			// One unit is reserved: MaxUnits available would make MaxUnits+1.
			{"stock and reserved over MaxUnits", func() error { _, err := s.SetStock(ctx, "p", order.MaxUnits); return err }, order.ReasonStockLimit},
		}
		for _, r := range refusals {
			t.Run(r.name, func(t *testing.T) {
				err := r.run()
				if err == nil {
					t.Fatal("succeeded, want an error")
				}
				if got := order.ReasonOf(err); got != r.reason {
					t.Errorf("reason = %q, want %q (err %v)", got, r.reason, err)
				}
				if r.reason == "" && fault.KindOf(err) != fault.Unclassified {
					t.Errorf("kind = %v, want unclassified: %v", fault.KindOf(err), err)
				}
				check(t, "p", 14, 1)
			})
		}

		// Up to the bound, with what is reserved, is fine.
		if _, err := s.SetStock(ctx, "p", order.MaxUnits-1); err != nil {
			t.Fatalf("SetStock(MaxUnits-1) with 1 reserved: %v", err)
		}
		check(t, "p", order.MaxUnits-1, 1)

		err = inTx(func(tx order.Tx) error {
			ok, err := tx.Reserve(ctx, "ghost", 1)
			if err == nil && ok {
				err = errors.New("reserved a product without stock")
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func TestMarkProcessed(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := testContext(t)
		mark := func(id string) bool {
			t.Helper()
			var first bool
			err := s.InTx(ctx, func(tx order.Tx) error {
				var err error
				first, err = tx.MarkProcessed(ctx, order.EventKey{ID: id}, "OrderCreated")
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return first
		}
		if seen, err := s.ProcessedEvent(ctx, order.EventKey{ID: "e1"}); err != nil || seen {
			t.Fatalf("ProcessedEvent before = %v, %v", seen, err)
		}
		if !mark("e1") {
			t.Fatal("first MarkProcessed = false, want true")
		}
		if mark("e1") {
			t.Fatal("second MarkProcessed = true, want false")
		}
		if !mark("e2") {
			t.Fatal("another id: MarkProcessed = false, want true")
		}
		if seen, err := s.ProcessedEvent(ctx, order.EventKey{ID: "e1"}); err != nil || !seen {
			t.Fatalf("ProcessedEvent after = %v, %v", seen, err)
		}
		err := s.InTx(ctx, func(tx order.Tx) error {
			a, err := tx.MarkProcessed(ctx, order.EventKey{ID: "e3"}, "OrderShipped")
			if err != nil {
				return err
			}
			b, err := tx.MarkProcessed(ctx, order.EventKey{ID: "e3"}, "OrderShipped")
			if err == nil && (!a || b) {
				err = fmt.Errorf("same transaction: %v then %v, want true then false", a, b)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func TestRollbackLeavesNothing(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := testContext(t)
		if _, err := s.SetStock(ctx, "p1", 10); err != nil {
			t.Fatal(err)
		}
		existing := newOrder(t, "existing")
		create(t, s, existing)
		work := func(t *testing.T, tx order.Tx) {
			if ok, err := tx.Reserve(ctx, "p1", 4); err != nil || !ok {
				t.Fatalf("Reserve: %v, %v", ok, err)
			}
			if err := tx.CreateOrder(ctx, newOrder(t, "ghost")); err != nil {
				t.Fatalf("CreateOrder: %v", err)
			}
			o, err := tx.Order(ctx, "existing")
			if err != nil {
				t.Fatalf("Order: %v", err)
			}
			o.Status = order.StatusProcessing
			if err := tx.UpdateOrder(ctx, o); err != nil {
				t.Fatalf("UpdateOrder: %v", err)
			}
			if ok, err := tx.MarkProcessed(ctx, order.EventKey{ID: "ev"}, "OrderCreated"); err != nil || !ok {
				t.Fatalf("MarkProcessed: %v, %v", ok, err)
			}
		}
		sentinel := order.Reject(order.ReasonFraudReview, "too much")
		tests := []struct {
			name string
			run  func(t *testing.T) error
		}{
			{"fn returns an error", func(t *testing.T) error {
				return s.InTx(ctx, func(tx order.Tx) error {
					work(t, tx)
					return fmt.Errorf("use case: %w", sentinel)
				})
			}},
			{"fn panics", func(t *testing.T) (err error) {
				defer func() {
					if p := recover(); p != "boom" {
						err = fmt.Errorf("recovered %v, want the panic to propagate", p)
					} else {
						err = sentinel
					}
				}()
				return s.InTx(ctx, func(tx order.Tx) error {
					work(t, tx)
					panic("boom")
				})
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := tt.run(t)
				if !errors.Is(err, sentinel) || order.ReasonOf(err) != order.ReasonFraudReview {
					t.Fatalf("InTx = %v, want fn's error", err)
				}
				if _, err := s.GetOrder(ctx, "ghost"); !errors.Is(err, order.ErrNotFound) {
					t.Errorf("created order survived the rollback: %v", err)
				}
				if got, err := s.GetOrder(ctx, "existing"); err != nil || got.Status != order.StatusNew {
					t.Errorf("update survived the rollback: %v, %v", got, err)
				}
				if st, err := s.GetStock(ctx, "p1"); err != nil || st.Available != 10 || st.Reserved != 0 {
					t.Errorf("reservation survived the rollback: %+v, %v", st, err)
				}
				if seen, err := s.ProcessedEvent(ctx, order.EventKey{ID: "ev"}); err != nil || seen {
					t.Errorf("inbox entry survived the rollback: %v, %v", seen, err)
				}
			})
		}
	})
}

// TestObserveTransactions checks that the observer hears of every committed
// transaction once, with its duration and its COMMIT's, and of a
// rolled-back one not at all.
func TestObserveTransactions(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := testContext(t)
		type observed struct{ total, commit time.Duration }
		var mu sync.Mutex
		var seen []observed
		s.ObserveTransactions(func(total, commit time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, observed{total, commit})
		})
		count := func() int {
			mu.Lock()
			defer mu.Unlock()
			return len(seen)
		}

		create(t, s, newOrder(t, "observed"))
		if got := count(); got != 1 {
			t.Fatalf("after one committed transaction: %d observed, want 1", got)
		}
		err := s.InTx(ctx, func(tx order.Tx) error {
			if err := tx.CreateOrder(ctx, newOrder(t, "rolled-back")); err != nil {
				return err
			}
			return errors.New("use case failed")
		})
		if err == nil {
			t.Fatal("InTx succeeded, want the use case's error")
		}
		if got := count(); got != 1 {
			t.Errorf("after a rolled-back transaction: %d observed, want still 1", got)
		}
		mu.Lock()
		defer mu.Unlock()
		if o := seen[0]; o.commit <= 0 || o.total <= o.commit {
			t.Errorf("transaction %v, commit %v: want 0 < commit < transaction", o.total, o.commit)
		}
	})
}
