package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/orderd/orderd/internal/fault"
	"github.com/orderd/orderd/internal/order"
	createorder "github.com/orderd/orderd/internal/order/create"
	"github.com/orderd/orderd/internal/sqlstore"
	"github.com/orderd/orderd/internal/sqlstore/sqlstoretest"
)

// TestReserveRace is the oversell test: 50 transactions race for 10 units of
// one product, each reading the stock, reserving one and creating an order.
// Exactly 10 may win; a concurrent observer never sees stock go negative or
// units appear or vanish.
func TestReserveRace(t *testing.T) {
	t.Parallel()
	const (
		stock   = 10
		buyers  = 50
		product = "hot"
	)
	eachDialect(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := testContext(t)
		if _, err := s.SetStock(ctx, product, stock); err != nil {
			t.Fatal(err)
		}
		errSoldOut := errors.New("sold out")

		// The observer polls until the buyers are done.
		done := make(chan struct{})
		observed := make(chan error, 1)
		go func() {
			var bad error
			for n := 0; ; n++ {
				select {
				case <-done:
					observed <- bad
					return
				default:
				}
				st, err := s.GetStock(ctx, product)
				switch {
				case err != nil:
					bad = err
				case st.Available < 0 || st.Reserved < 0 || st.Available+st.Reserved != stock:
					bad = fmt.Errorf("observation %d: %+v", n, st)
				}
				if bad != nil {
					observed <- bad
					<-done
					return
				}
			}
		}()

		var (
			wg       sync.WaitGroup
			won      atomic.Int64
			soldOut  atomic.Int64
			failures = make(chan error, buyers)
		)
		for i := range buyers {
			wg.Go(func() {
				err := s.InTx(ctx, func(tx order.Tx) error {
					stock, err := tx.Stocks(ctx, []string{product})
					st, ok := stock[product]
					if err != nil {
						return err
					}
					if !ok {
						return errors.New("stock record missing")
					}
					if st.Available < 1 {
						return errSoldOut
					}
					reserved, err := tx.Reserve(ctx, product, 1)
					if err != nil {
						return err
					}
					if !reserved {
						return errSoldOut
					}
					o := newOrder(t, fmt.Sprintf("buyer-%02d", i))
					o.Status = order.StatusProcessing
					o.Items = []order.Item{{ProductID: product, Quantity: 1, UnitPrice: 2500, TotalPrice: 2500, Reserved: true}}
					return tx.CreateOrder(ctx, o)
				})
				switch {
				case err == nil:
					won.Add(1)
				case errors.Is(err, errSoldOut):
					soldOut.Add(1)
				default:
					failures <- err
				}
			})
		}
		wg.Wait()
		close(done)
		close(failures)
		for err := range failures {
			t.Errorf("buyer failed: %v", err)
		}
		if err := <-observed; err != nil {
			t.Errorf("observer: %v", err)
		}
		if won.Load() != stock || soldOut.Load() != buyers-stock {
			t.Errorf("%d won, %d sold out; want %d and %d", won.Load(), soldOut.Load(), stock, buyers-stock)
		}
		st, err := s.GetStock(ctx, product)
		if err != nil {
			t.Fatal(err)
		}
		if want := (order.Stock{ProductID: product, Available: 0, Reserved: stock}); st != want {
			t.Errorf("final stock %+v, want %+v", st, want)
		}
		orders, _, err := s.ListOrders(ctx, sqlstore.ListQuery{Limit: sqlstore.MaxListLimit})
		if err != nil {
			t.Fatal(err)
		}
		if len(orders) != stock {
			t.Errorf("%d orders created, want %d", len(orders), stock)
		}
	})
}

// TestConcurrentCreatesOfOneOrder: transactions that create the same new
// order at the same moment (POST /orders racing a retry of itself, or the
// order's OrderCreated event) all succeed: one creates it, the others find
// it and compare. On PostgreSQL, where looking for a missing row locks
// nothing, the losers' inserts fail and their transactions must run again
// rather than fail with a transient error (the API's 503).
func TestConcurrentCreatesOfOneOrder(t *testing.T) {
	t.Parallel()
	const rounds, racers = 20, 4
	eachDialect(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := testContext(t)
		for r := range rounds {
			id := fmt.Sprintf("race-%02d", r)
			var (
				wg      sync.WaitGroup
				created atomic.Int64
				start   = make(chan struct{})
				errs    = make(chan error, racers)
			)
			for range racers {
				wg.Go(func() {
					o := newOrder(t, id)
					<-start
					err := s.InTx(ctx, func(tx order.Tx) error {
						out, err := createorder.Run(ctx, tx, createorder.Input{Order: o, CreatedAtGiven: true})
						if err == nil && out.Created {
							created.Add(1)
						}
						return err
					})
					if err != nil {
						errs <- err
					}
				})
			}
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("round %d: %v (kind %s)", r, err, fault.KindOf(err))
			}
			// A run undone after it created the order counts too: at least one.
			if created.Load() < 1 {
				t.Errorf("round %d: no transaction created the order", r)
			}
			if _, err := s.GetOrder(ctx, id); err != nil {
				t.Errorf("round %d: %v", r, err)
			}
		}
	})
}

// TestPostgresAbortedTransactionReportsItsCause: a function that goes on
// past a failed statement, as Apply does to keep the events before a failed
// one, cannot commit on PostgreSQL, which aborted the transaction with the
// statement. InTx reports that statement's error (here a lock timeout,
// transient), not the next statement's "current transaction is aborted"
// (unclassified, so tried MAX_ATTEMPTS times and dead-lettered), and
// commits nothing.
func TestPostgresAbortedTransactionReportsItsCause(t *testing.T) {
	t.Parallel()
	s := sqlstoretest.Open(t, sqlstore.DialectPostgres)
	ctx := testContext(t)
	if err := s.InTx(ctx, func(tx order.Tx) error { return tx.CreateOrder(ctx, newOrder(t, "held")) }); err != nil {
		t.Fatal(err)
	}
	conn, err := s.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	holder, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Rollback() }()
	if _, err := holder.ExecContext(ctx, `SELECT 1 FROM orders WHERE id = 'held' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}

	var readErr error
	err = s.InTx(ctx, func(tx order.Tx) error {
		if err := sqlstore.ExecInTx(ctx, tx, `SET LOCAL lock_timeout = '100ms'`); err != nil {
			return err
		}
		if err := tx.CreateOrder(ctx, newOrder(t, "fresh")); err != nil {
			return err
		}
		_, readErr = tx.Order(ctx, "held") // locked by holder: times out
		return nil
	})
	var pgErr *pgconn.PgError
	if !errors.As(readErr, &pgErr) || pgErr.Code != "55P03" {
		t.Fatalf("read of the held order: %v, want a lock timeout", readErr)
	}
	if !errors.As(err, &pgErr) || pgErr.Code != "55P03" || fault.KindOf(err) != fault.Transient {
		t.Errorf("InTx = %v (kind %s), want the lock timeout, transient", err, fault.KindOf(err))
	}
	if _, err := s.GetOrder(ctx, "fresh"); order.ReasonOf(err) != order.ReasonNotFound {
		t.Errorf("the aborted transaction's order: %v, want not found", err)
	}
}

// TestUnreachablePostgresIsTransient needs no server: nothing listens on port 1.
func TestUnreachablePostgresIsTransient(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s, err := sqlstore.Open(ctx, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=5", nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	tests := []struct {
		name string
		call func() error
	}{
		{"Ping", func() error { return s.Ping(ctx) }},
		{"InTx", func() error { return s.InTx(ctx, func(order.Tx) error { return nil }) }},
		{"GetOrder", func() error { _, err := s.GetOrder(ctx, "x"); return err }},
		{"GetStock", func() error { _, err := s.GetStock(ctx, "x"); return err }},
		{"SetStock", func() error { _, err := s.SetStock(ctx, "x", 1); return err }},
		{"Migrate", func() error { return s.Migrate(ctx) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil {
				t.Fatal("succeeded against a closed port")
			}
			if k := fault.KindOf(err); k != fault.Transient {
				t.Errorf("kind = %v, want transient: %v", k, err)
			}
		})
	}
}

// TestSQLiteLockWaitDeadlineIsTransient holds the write lock of a SQLite
// file in one store while a second store (another process, as far as SQLite
// knows) waits for it with a short deadline. (SQLITE_BUSY itself, after
// busy_timeout, is TestSQLiteBusyIsTransient.)
func TestSQLiteLockWaitDeadlineIsTransient(t *testing.T) {
	t.Parallel()
	url := sqlstoretest.URL(t, sqlstore.DialectSQLite)
	holder := sqlstoretest.OpenURL(t, url)
	other := sqlstoretest.OpenURL(t, url)
	ctx := testContext(t)

	locked, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- holder.InTx(ctx, func(tx order.Tx) error {
			if _, err := tx.MarkProcessed(ctx, order.EventKey{ID: "holder"}, "test"); err != nil {
				return err
			}
			close(locked)
			<-release
			return nil
		})
	}()
	select {
	case <-locked:
	case err := <-held:
		t.Fatalf("holder: %v", err)
	}

	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	err := other.InTx(short, func(tx order.Tx) error {
		_, err := tx.MarkProcessed(short, order.EventKey{ID: "other"}, "test")
		return err
	})
	close(release)
	if err == nil {
		t.Fatal("second writer got in while the first held the lock")
	}
	if k := fault.KindOf(err); k != fault.Transient {
		t.Errorf("kind = %v, want transient: %v", k, err)
	}
	if err := <-held; err != nil {
		t.Fatalf("holder: %v", err)
	}
	// Once the lock is free the same write succeeds.
	if err := other.InTx(ctx, func(tx order.Tx) error {
		_, err := tx.MarkProcessed(ctx, order.EventKey{ID: "other"}, "test")
		return err
	}); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

// TestPostgresDeadlockIsTransient makes two transactions lock two orders in
// opposite order. PostgreSQL aborts one with 40P01 (after deadlock_timeout,
// one second by default); that error must be transient, and the other
// transaction must commit.
func TestPostgresDeadlockIsTransient(t *testing.T) {
	t.Parallel()
	s := sqlstoretest.Open(t, sqlstore.DialectPostgres)
	ctx := testContext(t)
	create(t, s, newOrder(t, "a"), newOrder(t, "b"))

	var firstLocks sync.WaitGroup
	firstLocks.Add(2)
	lockBoth := func(first, second string) error {
		return s.InTx(ctx, func(tx order.Tx) error {
			if _, err := tx.Order(ctx, first); err != nil {
				return err
			}
			firstLocks.Done()
			firstLocks.Wait()
			_, err := tx.Order(ctx, second)
			return err
		})
	}
	errs := make(chan error, 2)
	go func() { errs <- lockBoth("a", "b") }()
	go func() { errs <- lockBoth("b", "a") }()
	var failed []error
	for range 2 {
		if err := <-errs; err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) != 1 {
		t.Fatalf("%d transactions failed, want exactly one: %v", len(failed), failed)
	}
	var pgErr *pgconn.PgError
	if !errors.As(failed[0], &pgErr) || pgErr.Code != "40P01" {
		t.Fatalf("error %v, want SQLSTATE 40P01", failed[0])
	}
	if k := fault.KindOf(failed[0]); k != fault.Transient {
		t.Errorf("kind = %v, want transient", k)
	}
}
