package sqlstore_test

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/sqlstore"
	"github.com/orderd/orderd/internal/sqlstore/sqlstoretest"
)

// TestSavepointUndoesOnlyItsOwnWork: a failed savepoint takes back exactly
// what it did — an order created, another updated, stock reserved and
// released, inbox entries — while what came before it, and a later savepoint
// that succeeds, are committed. Nested savepoints undo separately.
func TestSavepointUndoesOnlyItsOwnWork(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := testContext(t)
		for _, p := range []string{"p1", "p2"} {
			if _, err := s.SetStock(ctx, p, 10); err != nil {
				t.Fatal(err)
			}
		}
		create(t, s, newOrder(t, "old"))
		refused := order.Reject(order.ReasonOutOfStock, "refused")
		err := s.InTx(ctx, func(tx order.Tx) error {
			if err := tx.CreateOrder(ctx, newOrder(t, "kept")); err != nil {
				return err
			}
			if ok, err := tx.Reserve(ctx, "p1", 3); err != nil || !ok {
				return fmt.Errorf("reserve before: %v, %v", ok, err)
			}
			err := tx.Savepoint(ctx, func() error {
				if _, err := tx.MarkProcessed(ctx, order.EventKey{ID: "e-undone"}, "OrderCreated"); err != nil {
					return err
				}
				if err := tx.CreateOrder(ctx, newOrder(t, "undone")); err != nil {
					return err
				}
				o, err := tx.Order(ctx, "old")
				if err != nil {
					return err
				}
				o.Status, o.Items[0].Reserved = order.StatusProcessing, true
				if err := tx.UpdateOrder(ctx, o); err != nil {
					return err
				}
				if ok, err := tx.Reserve(ctx, "p1", 7); err != nil || !ok {
					return fmt.Errorf("reserve inside: %v, %v", ok, err)
				}
				if err := tx.Release(ctx, "p1", 2); err != nil {
					return err
				}
				// Inside, the transaction sees its own writes.
				if st, err := tx.Stocks(ctx, []string{"p1"}); err != nil || st["p1"].Available != 2 || st["p1"].Reserved != 8 {
					return fmt.Errorf("stock inside = %+v, %v; want 2 available, 8 reserved", st["p1"], err)
				}
				inner := tx.Savepoint(ctx, func() error {
					if _, err := tx.Reserve(ctx, "p2", 1); err != nil {
						return err
					}
					return refused
				})
				if !errors.Is(inner, refused) {
					return fmt.Errorf("inner savepoint: %v", inner)
				}
				if st, _ := tx.Stocks(ctx, []string{"p2"}); st["p2"].Reserved != 0 {
					return fmt.Errorf("inner savepoint not undone: p2 %+v", st["p2"])
				}
				return refused
			})
			if !errors.Is(err, refused) {
				return fmt.Errorf("savepoint returned %v, want the refusal", err)
			}
			if _, err := tx.Order(ctx, "undone"); order.ReasonOf(err) != order.ReasonNotFound {
				return fmt.Errorf("undone order after the savepoint: %v, want not found", err)
			}
			if first, err := tx.MarkProcessed(ctx, order.EventKey{ID: "e-undone"}, "OrderCreated"); err != nil || !first {
				return fmt.Errorf("inbox entry not undone: first %v, %v", first, err)
			}
			return tx.Savepoint(ctx, func() error {
				_, err := tx.Reserve(ctx, "p2", 4)
				return err
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			product             string
			available, reserved int64
		}{{"p1", 7, 3}, {"p2", 6, 4}} {
			st, err := s.GetStock(ctx, c.product)
			if err != nil || st.Available != c.available || st.Reserved != c.reserved {
				t.Errorf("stock of %s = %+v, %v; want %d available, %d reserved", c.product, st, err, c.available, c.reserved)
			}
		}
		if _, err := s.GetOrder(ctx, "undone"); order.ReasonOf(err) != order.ReasonNotFound {
			t.Errorf("order created in the failed savepoint: %v, want not found", err)
		}
		old, err := s.GetOrder(ctx, "old")
		if err != nil || old.Status != order.StatusNew || old.Items[0].Reserved {
			t.Errorf("order updated in the failed savepoint = %+v, %v; want it unchanged", old, err)
		}
		if _, err := s.GetOrder(ctx, "kept"); err != nil {
			t.Errorf("order created before the savepoint: %v", err)
		}
		if seen, err := s.ProcessedEvent(ctx, order.EventKey{ID: "e-undone"}); err != nil || !seen {
			t.Errorf("inbox entry marked after the savepoint: %v, %v", seen, err)
		}
	})
}

// TestLargeBatch writes and reads back more rows than one SQLite statement
// or IN list takes (execRows and Preload split them; PostgreSQL takes them
// as arrays), and updates them all in a second transaction.
func TestLargeBatch(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := testContext(t)
		const n = 2100 // orders: more than one SQLite statement (256 rows) or IN list (1,024 ids) takes
		var ids []string
		var events []order.EventKey
		var want []*order.Order
		for i := range n {
			o := newOrder(t, fmt.Sprintf("bulk-%04d", i))
			o.Items = append(o.Items, order.Item{ProductID: fmt.Sprintf("q%04d", i), Quantity: 1, UnitPrice: 1, TotalPrice: 1})
			o.TotalAmount++
			ids, events, want = append(ids, o.ID), append(events, order.EventKey{OrderID: o.ID, ID: "ev-" + o.ID}), append(want, o)
		}
		create(t, s, want...)
		for _, p := range []string{"p1", "p2"} {
			if _, err := s.SetStock(ctx, p, 10*n); err != nil {
				t.Fatal(err)
			}
		}
		err := s.InTx(ctx, func(tx order.Tx) error {
			if err := tx.Preload(ctx, order.Keys{Events: events, OrderIDs: ids, ProductIDs: []string{"p1", "p2"}}); err != nil {
				return err
			}
			for i, id := range ids {
				if first, err := tx.MarkProcessed(ctx, events[i], "OrderCancelled"); err != nil || !first {
					return fmt.Errorf("mark %s: %v, %v", events[i], first, err)
				}
				o, err := tx.Order(ctx, id)
				if err != nil {
					return err
				}
				if diff := cmp.Diff(want[i], o); diff != "" {
					return fmt.Errorf("order %s as preloaded (-want +got):\n%s", id, diff)
				}
				for _, j := range []int{0, 1} {
					if ok, err := tx.Reserve(ctx, o.Items[j].ProductID, o.Items[j].Quantity); err != nil || !ok {
						return fmt.Errorf("reserve for %s: %v, %v", id, ok, err)
					}
					o.Items[j].Reserved = true
				}
				o.Status = order.StatusProcessing
				if err := tx.UpdateOrder(ctx, o); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range []int{0, n / 2, n - 1} {
			o, err := s.GetOrder(ctx, ids[i])
			if err != nil {
				t.Fatal(err)
			}
			if o.Status != order.StatusProcessing || !o.Items[0].Reserved || !o.Items[1].Reserved || o.Items[2].Reserved {
				t.Errorf("order %s after the update: status %s, reserved %v %v %v", o.ID, o.Status, o.Items[0].Reserved, o.Items[1].Reserved, o.Items[2].Reserved)
			}
		}
		if st, err := s.GetStock(ctx, "p1"); err != nil || st.Reserved != 2*n || st.Available != 8*n {
			t.Errorf("stock of p1 = %+v, %v; want %d reserved", st, err, 2*n)
		}
		if seen, err := s.ProcessedEvent(ctx, events[n-1]); err != nil || !seen {
			t.Errorf("last inbox entry: %v, %v", seen, err)
		}
	})
}

// racedWrites runs two transactions on s that both read (look) before either
// writes; the second writes only once the first has committed. The first
// must succeed; racedWrites returns how many times InTx ran the second's
// function, and its error (a run whose commit fails on a key the first
// inserted is undone and run again, without the waits).
func racedWrites(t *testing.T, s *sqlstore.Store, look func(tx order.Tx, second bool) error, write func(tx order.Tx, second bool) error) (runs int, err error) {
	t.Helper()
	ctx := testContext(t)
	var bothLooked, firstDone sync.WaitGroup
	bothLooked.Add(2)
	firstDone.Add(1)
	run := func(second bool) (int, error) {
		runs := 0
		err := s.InTx(ctx, func(tx order.Tx) error {
			runs++
			err := look(tx, second)
			if runs > 1 {
				if err != nil {
					return err
				}
				return write(tx, second)
			}
			bothLooked.Done() // also on failure: the other must not wait for ever
			if err != nil {
				return err
			}
			bothLooked.Wait()
			if second {
				firstDone.Wait()
			}
			return write(tx, second)
		})
		return runs, err
	}
	type result struct {
		runs int
		err  error
	}
	second := make(chan result, 1)
	go func() {
		runs, err := run(true)
		second <- result{runs, err}
	}()
	if _, err := run(false); err != nil {
		firstDone.Done()
		t.Fatalf("first transaction: %v", err)
	}
	firstDone.Done()
	r := <-second
	return r.runs, r.err
}

// TestConcurrentInboxInsertRunsAgain: on PostgreSQL two transactions can
// both find an event id missing from the inbox (two deliveries of one event,
// to an old and a new owner of its partition). The second to commit must
// never commit a second application: its insert fails, its writes are
// undone, and it runs again and finds the event applied.
func TestConcurrentInboxInsertRunsAgain(t *testing.T) {
	t.Parallel()
	s := sqlstoretest.Open(t, sqlstore.DialectPostgres)
	ctx := testContext(t)
	if _, err := s.SetStock(ctx, "p1", 10); err != nil {
		t.Fatal(err)
	}
	orderID := func(second bool) string {
		if second {
			return "second"
		}
		return "first"
	}
	errApplied := errors.New("already applied")
	runs, err := racedWrites(t, s,
		func(tx order.Tx, _ bool) error {
			return tx.Preload(ctx, order.Keys{Events: []order.EventKey{{ID: "e1"}}})
		},
		func(tx order.Tx, second bool) error {
			first, err := tx.MarkProcessed(ctx, order.EventKey{ID: "e1"}, "OrderCreated")
			if err != nil {
				return err
			}
			if !first {
				return errApplied
			}
			if _, err := tx.Reserve(ctx, "p1", 1); err != nil {
				return err
			}
			return tx.CreateOrder(ctx, newOrder(t, orderID(second)))
		})
	if runs != 2 || !errors.Is(err, errApplied) {
		t.Fatalf("second transaction: %v after %d runs, want it to find the event applied on its second run", err, runs)
	}
	if _, err := s.GetOrder(ctx, "second"); order.ReasonOf(err) != order.ReasonNotFound {
		t.Errorf("the failed transaction's order: %v, want not found", err)
	}
	if st, err := s.GetStock(ctx, "p1"); err != nil || st.Reserved != 1 {
		t.Errorf("stock = %+v, %v; want 1 reserved (one application)", st, err)
	}
}

// TestConcurrentOrderInsertRunsAgain: two events (different ids) creating
// the same order, in transactions that both looked before either committed.
// The second finds the order inserted when it writes; it must be undone
// and run again, and then find the order (to compare it with its own) —
// not fail with a constraint violation on the order's items, which on
// PostgreSQL go in the same statement as the order. (PostgreSQL only, like
// the test above: SQLite runs one write transaction at a time.)
func TestConcurrentOrderInsertRunsAgain(t *testing.T) {
	t.Parallel()
	s := sqlstoretest.Open(t, sqlstore.DialectPostgres)
	ctx := testContext(t)
	eventID := func(second bool) string {
		if second {
			return "e2"
		}
		return "e1"
	}
	errExists := errors.New("order exists")
	runs, err := racedWrites(t, s,
		func(tx order.Tx, second bool) error {
			return tx.Preload(ctx, order.Keys{Events: []order.EventKey{{OrderID: "o1", ID: eventID(second)}}, OrderIDs: []string{"o1"}})
		},
		func(tx order.Tx, second bool) error {
			if _, err := tx.MarkProcessed(ctx, order.EventKey{OrderID: "o1", ID: eventID(second)}, "OrderCreated"); err != nil {
				return err
			}
			switch _, err := tx.Order(ctx, "o1"); {
			case err == nil:
				return errExists
			case order.ReasonOf(err) != order.ReasonNotFound:
				return err
			}
			return tx.CreateOrder(ctx, newOrder(t, "o1"))
		})
	if runs != 2 || !errors.Is(err, errExists) {
		t.Fatalf("second transaction: %v after %d runs, want it to find the order on its second run", err, runs)
	}
	if seen, err := s.ProcessedEvent(ctx, order.EventKey{OrderID: "o1", ID: "e2"}); err != nil || seen {
		t.Errorf("the failed transaction's inbox entry: %v, %v; want none", seen, err)
	}
}

// rowLockable reports whether a transaction on db can lock, for an update,
// the row of table whose column is id now: PostgreSQL's NOWAIT fails while
// another transaction holds a lock on it.
func rowLockable(t *testing.T, db *sql.DB, table, column, id string) bool {
	t.Helper()
	ctx := testContext(t)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	var one int
	err = tx.QueryRowContext(ctx, "SELECT 1 FROM "+table+" WHERE "+column+" = $1 FOR UPDATE NOWAIT", id).Scan(&one)
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return true
	case errors.As(err, &pgErr) && pgErr.Code == "55P03": // lock_not_available
		return false
	default:
		t.Fatalf("lock %s %s: %v", table, id, err)
		return false
	}
}

// TestPreloadLocksOrdersNotStock: on PostgreSQL, Preload locks the orders
// it finds until the transaction ends — what flush writes back is computed
// under those locks — and reads the stock of their items (even of products
// the keys do not name) without locking it: stock is written as changes
// that must still fit the row (TestStockTakenMeanwhile). Another
// connection's NOWAIT lock on an order fails while the transaction is open
// and succeeds once it has committed; on the stock it succeeds throughout.
func TestPreloadLocksOrdersNotStock(t *testing.T) {
	t.Parallel()
	dbURL := sqlstoretest.URL(t, sqlstore.DialectPostgres)
	s := sqlstoretest.OpenURL(t, dbURL)
	ctx := testContext(t)
	create(t, s, newOrder(t, "o1"), newOrder(t, "o2"))
	for _, p := range []string{"p1", "p2"} {
		if _, err := s.SetStock(ctx, p, 10); err != nil {
			t.Fatal(err)
		}
	}
	other, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lockable := func(table, column, id string) bool {
		t.Helper()
		return rowLockable(t, other, table, column, id)
	}
	type row struct{ table, column, id string }
	locked := []row{{"orders", "id", "o1"}}
	unlocked := []row{{"orders", "id", "o2"}, {"stock", "product_id", "p1"}, {"stock", "product_id", "p2"}}
	err = s.InTx(ctx, func(tx order.Tx) error {
		if err := tx.Preload(ctx, order.Keys{Events: []order.EventKey{{ID: "e1"}}, OrderIDs: []string{"o1", "missing"}}); err != nil {
			return err
		}
		for _, r := range locked {
			if lockable(r.table, r.column, r.id) {
				t.Errorf("%s %s is not locked by the transaction that preloaded it", r.table, r.id)
			}
		}
		for _, r := range unlocked {
			if !lockable(r.table, r.column, r.id) {
				t.Errorf("%s %s is locked by the transaction that preloaded o1", r.table, r.id)
			}
		}
		o, err := tx.Order(ctx, "o1")
		if err != nil {
			return err
		}
		if diff := cmp.Diff(newOrder(t, "o1").Items, o.Items); diff != "" {
			t.Errorf("preloaded items (-want +got):\n%s", diff)
		}
		if _, err := tx.Order(ctx, "missing"); order.ReasonOf(err) != order.ReasonNotFound {
			t.Errorf("order missing: %v, want not found", err)
		}
		if ok, err := tx.Reserve(ctx, "p2", 4); err != nil || !ok {
			return fmt.Errorf("reserve p2: %v, %v", ok, err)
		}
		_, err = tx.MarkProcessed(ctx, order.EventKey{ID: "e1"}, "OrderCreated")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range append(locked, unlocked...) {
		if !lockable(r.table, r.column, r.id) {
			t.Errorf("%s %s is still locked after the commit", r.table, r.id)
		}
	}
	if st, err := s.GetStock(ctx, "p2"); err != nil || st.Available != 6 || st.Reserved != 4 {
		t.Errorf("stock of p2 = %+v, %v; want 6 available, 4 reserved", st, err)
	}
}

// TestStockTakenMeanwhile: on PostgreSQL a transaction reads stock without
// a lock, so another can take it between that read and the write. The
// write then finds that the row no longer covers the reservation: the run
// is undone, and the function runs again in a new transaction that locks
// the stock as it reads it, and decides on what is there. Nothing is
// oversold, and nothing of the first run is committed.
func TestStockTakenMeanwhile(t *testing.T) {
	t.Parallel()
	dbURL := sqlstoretest.URL(t, sqlstore.DialectPostgres)
	s := sqlstoretest.OpenURL(t, dbURL)
	ctx := testContext(t)
	for p, n := range map[string]int64{"hot": 5, "plenty": 100} {
		if _, err := s.SetStock(ctx, p, n); err != nil {
			t.Fatal(err)
		}
	}
	other, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var reserved []bool // what Reserve of hot answered, run by run
	err = s.InTx(ctx, func(tx order.Tx) error {
		if ok, err := tx.Reserve(ctx, "plenty", 10); err != nil || !ok {
			return fmt.Errorf("reserve plenty: %v, %v", ok, err)
		}
		ok, err := tx.Reserve(ctx, "hot", 4)
		if err != nil {
			return err
		}
		reserved = append(reserved, ok)
		if len(reserved) == 1 {
			// Another transaction takes 3 of the 5 meanwhile, without
			// waiting for this one.
			err := s.InTx(ctx, func(tx order.Tx) error {
				if ok, err := tx.Reserve(ctx, "hot", 3); err != nil || !ok {
					return fmt.Errorf("reserve 3: %v, %v", ok, err)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("the other transaction: %w", err)
			}
		} else if rowLockable(t, other, "stock", "product_id", "hot") {
			t.Error("the second run reads stock without locking it")
		}
		_, err = tx.MarkProcessed(ctx, order.EventKey{ID: fmt.Sprintf("e-run-%d", len(reserved))}, "OrderCreated")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]bool{true, false}, reserved); diff != "" {
		t.Errorf("Reserve of 4 hot, run by run (-want +got):\n%s", diff)
	}
	for _, want := range []order.Stock{{ProductID: "hot", Available: 2, Reserved: 3}, {ProductID: "plenty", Available: 90, Reserved: 10}} {
		if got, err := s.GetStock(ctx, want.ProductID); err != nil || got != want {
			t.Errorf("stock = %+v, %v; want %+v", got, err, want)
		}
	}
	for id, want := range map[string]bool{"e-run-1": false, "e-run-2": true} {
		if got, err := s.ProcessedEvent(ctx, order.EventKey{ID: id}); err != nil || got != want {
			t.Errorf("inbox has %s: %v, %v; want %v", id, got, err, want)
		}
	}
}

// TestUnstorableTextLeavesTheTransactionUsable: on PostgreSQL a statement
// that fails aborts its transaction, and with it a whole batch. Text
// PostgreSQL cannot store is refused before any statement, so the other
// events of the transaction still commit.
func TestUnstorableTextLeavesTheTransactionUsable(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := testContext(t)
		err := s.InTx(ctx, func(tx order.Tx) error {
			if err := tx.Preload(ctx, order.Keys{Events: []order.EventKey{{OrderID: "o\xff", ID: "e\x00"}}, OrderIDs: []string{"o\xff"}, ProductIDs: []string{"p\x00"}}); err != nil {
				return fmt.Errorf("preload: %v", err)
			}
			_, errOrder := tx.Order(ctx, "o\xff")
			_, errMark := tx.MarkProcessed(ctx, order.EventKey{ID: "e\x00"}, "OrderCreated")
			if s.Dialect() == sqlstore.DialectPostgres {
				for name, err := range map[string]error{"Order": errOrder, "MarkProcessed": errMark} {
					if order.ReasonOf(err) != order.ReasonInvalid {
						return fmt.Errorf("%s: %v, want invalid", name, err)
					}
				}
			}
			return tx.CreateOrder(ctx, newOrder(t, "fine"))
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetOrder(ctx, "fine"); err != nil {
			t.Fatal(err)
		}
	})
}

// TestLogStartsOverUnderSteadyWrites: on SQLite, under a steady stream of
// write transactions (one every millisecond or so, for two seconds) the
// write-ahead log still starts over now and then, before the writer's own
// checkpoint limit (8,000 pages): the checkpointer's last step, on the write
// connection between two transactions, completes what the background
// checkpoint copied. The log file keeps the largest size the log reached:
// about 1,000 pages here (6 or so per transaction), where the checkpointer
// before this step let it reach 4,800–5,600 (a background checkpoint
// completed only when it happened to fall between two transactions).
func TestLogStartsOverUnderSteadyWrites(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "orders.db")
	s := sqlstoretest.OpenURL(t, "sqlite://"+path)
	const (
		pageFrame = 4096 + 24 // a page in the log, with its frame header
		limit     = 3000      // pages
	)
	logPages := func() int64 {
		t.Helper()
		st, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		return st.Size() / pageFrame
	}
	txs := 0
	for start := time.Now(); time.Since(start) < 2*time.Second && logPages() < limit; txs++ {
		// An order with a 3,000-byte product id: its item takes a page.
		o := newOrder(t, fmt.Sprintf("steady-%06d", txs))
		o.Items = o.Items[:1]
		o.Items[0].ProductID = strings.Repeat("p", 3000)
		o.Items[0].TotalPrice, o.TotalAmount = 2000, 2000
		create(t, s, o)
		time.Sleep(time.Millisecond)
	}
	if pages := logPages(); pages >= limit {
		t.Errorf("the log reached %d pages over %d transactions: it did not start over", pages, txs)
	}
}

// TestBackgroundCheckpoint: on SQLite, committed pages reach the database
// file from the write-ahead log without the writer checkpointing (its own
// limit is far above what this test writes): the store's background
// checkpointer copies them.
func TestBackgroundCheckpoint(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "orders.db")
	s := sqlstoretest.OpenURL(t, "sqlite://"+path)
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	var orders []*order.Order
	for i := range 500 {
		orders = append(orders, newOrder(t, fmt.Sprintf("ckpt-%04d-%s", i, strings.Repeat("x", 200))))
	}
	create(t, s, orders...)
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > before.Size()+100_000 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file still %d bytes (%d before the writes): the log was not checkpointed", st.Size(), before.Size())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCheckpointerRestsWhenIdle: the SQLite checkpointer runs a round after
// writes, at most one per interval, and none while nothing is written, so
// an idle service makes no database call.
func TestCheckpointerRestsWhenIdle(t *testing.T) {
	t.Parallel()
	s := sqlstoretest.OpenURL(t, "sqlite://"+filepath.Join(t.TempDir(), "orders.db"))
	waitRounds := func(above int64) int64 {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if n := s.CheckpointRounds(); n > above {
				return n
			}
			if time.Now().After(deadline) {
				t.Fatalf("no checkpoint round after a write (%d rounds)", above)
			}
		}
	}
	settle := func() int64 {
		t.Helper()
		// Rounds are due only after writes, at most one per 50 ms: once
		// the count holds still for half a second, none is pending. A
		// checkpointer that never rests fails here rather than hanging.
		n := s.CheckpointRounds()
		deadline := time.Now().Add(10 * time.Second)
		for still := time.Now(); time.Since(still) < 500*time.Millisecond; time.Sleep(20 * time.Millisecond) {
			if m := s.CheckpointRounds(); m != n {
				n, still = m, time.Now()
			}
			if time.Now().After(deadline) {
				t.Fatalf("checkpoint rounds still running 10 s after the last write (%d so far)", n)
			}
		}
		return n
	}

	idle := settle() // the migrations' round, if any
	create(t, s, newOrder(t, "idle-1"))
	afterWrite := waitRounds(idle)
	if quiet := settle(); quiet > afterWrite+1 {
		t.Errorf("%d rounds after one write, want at most 2", quiet-idle)
	}
	before := s.CheckpointRounds()
	time.Sleep(time.Second)
	if n := s.CheckpointRounds(); n != before {
		t.Errorf("%d checkpoint rounds in an idle second, want none", n-before)
	}

	// A burst of writes is served by rounds at a pace, not one per write.
	const writes = 100
	for i := range writes {
		create(t, s, newOrder(t, fmt.Sprintf("burst-%03d", i)))
	}
	if n := settle() - before; n < 1 || n >= writes {
		t.Errorf("%d rounds for %d writes, want at least one and fewer than one per write", n, writes)
	}
}

// TestCheckpointerRestsLongerAfterLongRounds: short rounds come at most
// every 50 ms; after a long one (a backlog draining) the checkpointer
// rests three times as long, so it checkpoints a quarter of the time at
// most and leaves the disk to the writer.
func TestCheckpointerRestsLongerAfterLongRounds(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ round, rest time.Duration }{
		{0, 50 * time.Millisecond},
		{12 * time.Millisecond, 50 * time.Millisecond},
		{20 * time.Millisecond, 60 * time.Millisecond},
		{80 * time.Millisecond, 240 * time.Millisecond},
	} {
		if got := sqlstore.RestAfter(c.round); got != c.rest {
			t.Errorf("rest after a round of %v = %v, want %v", c.round, got, c.rest)
		}
	}
}
