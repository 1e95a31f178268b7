package events_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/orderd/orderd/internal/delivery"
	"github.com/orderd/orderd/internal/events"
	"github.com/orderd/orderd/internal/fault"
	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/order/cancel"
	"github.com/orderd/orderd/internal/order/fulfil"
	"github.com/orderd/orderd/internal/order/ordertest"
	"github.com/orderd/orderd/internal/order/process"
	"github.com/orderd/orderd/internal/sqlstore"
	"github.com/orderd/orderd/internal/sqlstore/sqlstoretest"
)

func created(eventID, orderID, product string, qty int) []byte {
	return fmt.Appendf(nil, `{"id":%q,"name":"OrderCreated","data":{"orderId":%q,"customerId":"c-1","totalAmount":%d.00,"currency":"USD","items":[{"productId":%q,"quantity":%d,"unitPrice":10.00,"totalPrice":%d.00}]}}`,
		eventID, orderID, 10*qty, product, qty, 10*qty)
}

func cancelled(eventID, orderID string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"name":"OrderCancelled","data":{"orderId":%q,"reason":"changed my mind"}}`, eventID, orderID)
}

// TestRefusalIsSticky is defect b2 of the reliability suite: order B is
// refused for want of stock, A is then cancelled and releases its units, and
// B's event is delivered again (its offset was never committed). B must be
// refused again with the same reason — not take the released units — and the
// inbox must not let the refusal be judged anew.
func TestRefusalIsSticky(t *testing.T) {
	t.Parallel()
	eachDialect(t, map[string]int64{"scarce": 2}, func(t *testing.T, dialect string, st *sqlstore.Store, h *events.Handler) {
		ctx := context.Background()

		handle := func(value []byte) (delivery.Outcome, error) {
			t.Helper()
			return h.Handle(ctx, value)
		}
		if res, err := handle(created("a-created", "A", "scarce", 2)); err != nil || res != delivery.Applied {
			t.Fatalf("A created: %v, %v", res, err)
		}
		bCreated := created("b-created", "B", "scarce", 2)
		_, err := handle(bCreated)
		wantRefusal(t, "B created", err, order.ReasonOutOfStock)
		if res, err := handle(cancelled("a-cancelled", "A")); err != nil || res != delivery.Applied {
			t.Fatalf("A cancelled: %v, %v", res, err)
		}
		wantStock(t, st, order.Stock{ProductID: "scarce", Available: 2})

		// The redeliveries.
		_, err = handle(bCreated)
		wantRefusal(t, "B created, redelivered", err, order.ReasonOutOfStock)
		if !strings.Contains(err.Error(), "earlier delivery") {
			t.Errorf("redelivered refusal = %q, want it to say it was refused before", err)
		}
		if res, err := handle(created("a-created", "A", "scarce", 2)); err != nil || res != delivery.Duplicate {
			t.Errorf("A created, redelivered: %v, %v; want duplicate", res, err)
		}
		wantStock(t, st, order.Stock{ProductID: "scarce", Available: 2})
		b, err := st.GetOrder(ctx, "B")
		if err != nil {
			t.Fatal(err)
		}
		if b.Status != order.StatusNew {
			t.Errorf("B status = %q, want new (kept for review, never processed)", b.Status)
		}
		if a, _ := st.GetOrder(ctx, "A"); a == nil || a.Status != order.StatusCancelled {
			t.Errorf("A = %+v, want cancelled", a)
		}
	})
}

// TestRefusalAfterPartialReservation: an order whose two lines of one product
// pass the per-line check but not the reservation of the second line is
// refused; the order kept for review holds no reservation, and the stock is
// untouched.
func TestRefusalAfterPartialReservation(t *testing.T) {
	t.Parallel()
	eachDialect(t, map[string]int64{"scarce": 1}, func(t *testing.T, dialect string, st *sqlstore.Store, h *events.Handler) {
		ctx := context.Background()
		v := []byte(`{"id":"e-2l","name":"OrderCreated","data":{"orderId":"L","customerId":"c","totalAmount":20.00,"currency":"USD","items":[{"productId":"scarce","quantity":1,"unitPrice":10.00,"totalPrice":10.00},{"productId":"scarce","quantity":1,"unitPrice":10.00,"totalPrice":10.00}]}}`)
		_, err := h.Handle(ctx, v)
		wantRefusal(t, "two lines of one unit", err, order.ReasonOutOfStock)
		wantStock(t, st, order.Stock{ProductID: "scarce", Available: 1})
		o, err := st.GetOrder(ctx, "L")
		if err != nil {
			t.Fatal(err)
		}
		if o.Status != order.StatusNew || o.Items[0].Reserved || o.Items[1].Reserved {
			t.Errorf("kept order = %s with lines reserved %v/%v, want new and nothing reserved", o.Status, o.Items[0].Reserved, o.Items[1].Reserved)
		}
	})
}

// TestRefusalOfOtherEvents: refusals of events that are not OrderCreated are
// sticky too (a cancellation refused as not_found stays refused once the
// order exists), and a refusal's message is stored even when it holds text a
// database column would refuse.
func TestRefusalOfOtherEvents(t *testing.T) {
	t.Parallel()
	eachDialect(t, nil, func(t *testing.T, dialect string, st *sqlstore.Store, h *events.Handler) {
		ctx := context.Background()

		early := cancelled("c-cancelled", "C")
		_, err := h.Handle(ctx, early)
		wantRefusal(t, "cancel before create", err, order.ReasonNotFound)
		if res, err := h.Handle(ctx, created("c-created", "C", "plenty", 1)); err != nil || res != delivery.Applied {
			t.Fatalf("C created: %v, %v", res, err)
		}
		_, err = h.Handle(ctx, early)
		wantRefusal(t, "cancel before create, redelivered", err, order.ReasonNotFound)
		if c, _ := st.GetOrder(ctx, "C"); c == nil || c.Status != order.StatusProcessing {
			t.Errorf("C = %+v, want processing (the late redelivery of a refused cancel changes nothing)", c)
		}

		odd := cancelled("d-cancelled", "D\u00ff-\xff")
		_, err = h.Handle(ctx, odd)
		if k := fault.KindOf(err); k != fault.Permanent {
			t.Fatalf("cancel of an odd id: %v (%v), want permanent", err, k)
		}
		_, err2 := h.Handle(ctx, odd)
		if fault.KindOf(err2) != fault.Permanent {
			t.Fatalf("cancel of an odd id, redelivered: %v, want permanent", err2)
		}
	})
}

// TestSharedProductsNoDeadlock: orders listing the same two products in
// opposite orders, processed concurrently, all succeed at the first attempt —
// stock rows are locked in product order, so PostgreSQL never finds a
// deadlock to break.
func TestSharedProductsNoDeadlock(t *testing.T) {
	t.Parallel()
	eachDialect(t, map[string]int64{"x": 1000, "y": 1000}, func(t *testing.T, dialect string, st *sqlstore.Store, h *events.Handler) {
		ctx := context.Background()
		const perWorker = 40
		errs := make(chan error, 2*perWorker)
		var wg sync.WaitGroup
		for w, products := range [][2]string{{"x", "y"}, {"y", "x"}} {
			wg.Go(func() {
				for i := range perWorker {
					id := fmt.Sprintf("w%d-%d", w, i)
					v := fmt.Appendf(nil, `{"id":%q,"name":"OrderCreated","data":{"orderId":%q,"customerId":"c","totalAmount":20.00,"currency":"USD","items":[{"productId":%q,"quantity":1,"unitPrice":10.00,"totalPrice":10.00},{"productId":%q,"quantity":1,"unitPrice":10.00,"totalPrice":10.00}]}}`,
						id, id, products[0], products[1])
					if _, err := h.Handle(ctx, v); err != nil {
						errs <- fmt.Errorf("order %s: %w", id, err)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		wantStock(t, st, order.Stock{ProductID: "x", Available: 1000 - 2*perWorker, Reserved: 2 * perWorker})
		wantStock(t, st, order.Stock{ProductID: "y", Available: 1000 - 2*perWorker, Reserved: 2 * perWorker})
	})
}

// TestHandleBatch: one transaction for a partition's records, each event
// under its own savepoint. A refused event, an undecodable one, a duplicate
// and an event whose text the database itself refuses (a NUL in a name: on
// PostgreSQL a failed statement, which aborts the transaction unless rolled
// back to a savepoint) sit between applied ones; each gets its own result and
// only the applied effects stand.
func TestHandleBatch(t *testing.T) {
	t.Parallel()
	eachDialect(t, map[string]int64{"scarce": 1}, func(t *testing.T, dialect string, st *sqlstore.Store, h *events.Handler) {
		ctx := context.Background()

		nul := fmt.Appendf(nil, `{"id":"e-nul","name":"OrderCreated","data":{"orderId":"N","customerId":"c-1","customerName":"a\u0000b","totalAmount":10.00,"currency":"USD","items":[{"productId":"p","quantity":1,"unitPrice":10.00,"totalPrice":10.00}]}}`)
		values := [][]byte{
			created("e-a", "A", "scarce", 1), // applied: takes the last unit
			created("e-b", "B", "scarce", 1), // refused: out_of_stock, kept as new
			[]byte(`{"id":"e-x","name":`),    // malformed
			created("e-a", "A", "scarce", 1), // duplicate of the first
			nul,                              // refused by the database
			created("e-c", "C", "plenty", 3), // applied
			cancelled("e-a-cancel", "A"),     // applied: releases the unit
			created("e-b", "B", "scarce", 1), // B again: still refused
		}
		metas := make([]*delivery.Meta, len(values))
		for i := range metas {
			metas[i] = &delivery.Meta{}
		}
		n, errs, stop := h.HandleBatch(ctx, values, metas)
		if n != len(values) {
			t.Fatalf("finished %d of %d: %v (stopped by %v)", n, len(values), errs, stop)
		}
		want := []string{"", order.ReasonOutOfStock, events.ReasonMalformedJSON, "", order.ReasonInvalid, "", "", order.ReasonOutOfStock}
		if dialect == sqlstore.DialectSQLite {
			want[4] = "" // SQLite stores a NUL
		}
		for i, w := range want {
			switch kind, reason := fault.Of(errs[i]); {
			case w == "" && errs[i] != nil:
				t.Errorf("value %d: %v, want it applied", i, errs[i])
			case w != "" && (kind != fault.Permanent || reason != w):
				t.Errorf("value %d: %v (%v %q), want a permanent %s", i, errs[i], kind, reason, w)
			}
		}
		if !metas[3].Duplicate || metas[0].Duplicate || metas[5].Duplicate {
			t.Errorf("duplicate flags = %v %v %v, want only the redelivered event marked", metas[0].Duplicate, metas[3].Duplicate, metas[5].Duplicate)
		}
		if metas[5].EventID != "e-c" || metas[5].EventName != "OrderCreated" || metas[5].OrderID != "C" {
			t.Errorf("meta of value 5 = %+v", metas[5])
		}
		wantStock(t, st, order.Stock{ProductID: "scarce", Available: 1})
		for id, status := range map[string]order.Status{"A": order.StatusCancelled, "B": order.StatusNew, "C": order.StatusProcessing} {
			if o, err := st.GetOrder(ctx, id); err != nil || o.Status != status {
				t.Errorf("order %s = %+v, %v; want %s", id, o, err, status)
			}
		}
		// A batch with nothing to apply is answered without the database.
		n, errs, stop = h.HandleBatch(ctx, [][]byte{[]byte("{"), []byte(`{"id":"x","name":"Nope","data":{}}`)}, []*delivery.Meta{{}, {}})
		if _, r0 := fault.Of(errs[0]); n != 2 || stop != nil || r0 != events.ReasonMalformedJSON || fault.KindOf(errs[1]) != fault.Permanent {
			t.Errorf("undecodable batch: n %d, errs %v, stop %v", n, errs, stop)
		}
		if _, err := st.GetOrder(ctx, "N"); (err == nil) != (want[4] == "") {
			t.Errorf("order N: %v; want it stored only where the database takes a NUL", err)
		}
	})
}

// TestBatchRunAgainWhenStockTaken: on PostgreSQL a batch's transaction reads
// stock without a lock; stock that another transaction takes before the
// batch writes has the store run the batch again, with its stock locked
// (sqlstore's TestStockTakenMeanwhile). What the handler reports is the
// second run's, where a refusal and a reservation of the first changed
// places: A was refused for want of stock and is now applied (stock was
// added meanwhile); B was applied and is now refused (its stock was taken).
func TestBatchRunAgainWhenStockTaken(t *testing.T) {
	t.Parallel()
	st := sqlstoretest.Open(t, sqlstore.DialectPostgres)
	ctx := context.Background()
	for p, n := range map[string]int64{"scarce": 2, "hot": 2} {
		if _, err := st.SetStock(ctx, p, n); err != nil {
			t.Fatal(err)
		}
	}
	var notified []string
	meanwhile := notifyFunc(func(_ context.Context, n order.Notification) error {
		notified = append(notified, n.OrderID)
		if len(notified) > 1 {
			return nil
		}
		// While the first run processes B: another instance restocks
		// scarce and takes one of hot.
		if _, err := st.SetStock(ctx, "scarce", 10); err != nil {
			return err
		}
		return st.InTx(ctx, func(tx order.Tx) error {
			if ok, err := tx.Reserve(ctx, "hot", 1); err != nil || !ok {
				return fmt.Errorf("reserve hot: %v, %v", ok, err)
			}
			return nil
		})
	})
	h := newHandler(st, meanwhile)
	values := [][]byte{created("e-a", "A", "scarce", 3), created("e-b", "B", "hot", 2)}
	metas := []*delivery.Meta{{}, {}}
	n, errs, stop := h.HandleBatch(ctx, values, metas)
	if n != 2 || stop != nil {
		t.Fatalf("finished %d of 2: %v (stopped by %v)", n, errs, stop)
	}
	if errs[0] != nil {
		t.Errorf("A: %v, want it applied on the second run", errs[0])
	}
	wantRefusal(t, "B", errs[1], order.ReasonOutOfStock)
	if diff := cmp.Diff([]string{"B", "A"}, notified); diff != "" {
		t.Errorf("notified orders (-want +got):\n%s", diff)
	}
	wantStock(t, st, order.Stock{ProductID: "scarce", Available: 7, Reserved: 3})
	wantStock(t, st, order.Stock{ProductID: "hot", Available: 1, Reserved: 1})
	for id, status := range map[string]order.Status{"A": order.StatusProcessing, "B": order.StatusNew} {
		if o, err := st.GetOrder(ctx, id); err != nil || o.Status != status {
			t.Errorf("order %s = %+v, %v; want %s", id, o, err, status)
		}
	}
}

// TestApplyReportsTheLastRun: order.Transactor may undo a run and run the
// function again. Apply reports the last run alone. Here the first run finds
// e-1 in the inbox and stops at e-2 on a store error; it is undone, and the
// second run applies both. Without the resets (Apply's of the stop error,
// applyOne's of the duplicate flag) the first run's would be reported.
func TestApplyReportsTheLastRun(t *testing.T) {
	t.Parallel()
	st := ordertest.NewStore()
	st.SetStock("p", 10)
	h := newHandler(rerunOnce{st}, &ordertest.Notifier{})
	values := [][]byte{created("e-1", "O1", "p", 1), created("e-2", "O2", "p", 1)}
	metas := []*delivery.Meta{{}, {}}
	n, errs, stop := h.HandleBatch(context.Background(), values, metas)
	if n != 2 || stop != nil || errs[0] != nil || errs[1] != nil {
		t.Fatalf("n %d, errs %v, stop %v; want both applied", n, errs, stop)
	}
	if metas[0].Duplicate || metas[1].Duplicate {
		t.Errorf("duplicate flags %v %v, want none: the first run was undone", metas[0].Duplicate, metas[1].Duplicate)
	}
	for _, id := range []string{"O1", "O2"} {
		if o := st.Get(id); o == nil || o.Status != order.StatusProcessing {
			t.Errorf("order %s = %+v, want processing", id, o)
		}
	}
}

// rerunOnce is an order.Transactor that runs fn twice, as the PostgreSQL
// store does when stock it read was taken meanwhile: first on a transaction
// that finds e-1 in the inbox and cannot reach the store for e-2, then, that
// run undone, on the store itself.
type rerunOnce struct{ *ordertest.Store }

func (r rerunOnce) InTx(ctx context.Context, fn func(order.Tx) error) error {
	errUndone := errors.New("undone")
	err := r.Store.InTx(ctx, func(tx order.Tx) error {
		if err := fn(firstRunTx{tx}); err != nil {
			return err
		}
		return errUndone
	})
	if !errors.Is(err, errUndone) {
		return fmt.Errorf("first run: %v", err)
	}
	return r.Store.InTx(ctx, fn)
}

type firstRunTx struct{ order.Tx }

func (t firstRunTx) MarkProcessed(ctx context.Context, k order.EventKey, eventName string) (bool, error) {
	switch k.ID {
	case "e-1":
		return false, nil // in the inbox
	case "e-2":
		return false, fault.AsTransient(errors.New("store unreachable"))
	}
	return t.Tx.MarkProcessed(ctx, k, eventName)
}

// notifyFunc is an order.Notifier.
type notifyFunc func(ctx context.Context, n order.Notification) error

func (f notifyFunc) Notify(ctx context.Context, n order.Notification) error { return f(ctx, n) }

// eachDialect runs test as a parallel subtest per dialect, on a fresh store
// with the given stock and a handler wired by newHandler.
func eachDialect(t *testing.T, stock map[string]int64, test func(t *testing.T, dialect string, st *sqlstore.Store, h *events.Handler)) {
	t.Helper()
	for _, dialect := range sqlstoretest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			st := sqlstoretest.Open(t, dialect)
			for p, n := range stock {
				if _, err := st.SetStock(context.Background(), p, n); err != nil {
					t.Fatal(err)
				}
			}
			test(t, dialect, st, newHandler(st, &ordertest.Notifier{}))
		})
	}
}

// newHandler wires a Handler as the service does, on st, with notifications
// going to n and logs discarded.
func newHandler(st order.Transactor, n order.Notifier) *events.Handler {
	rules := order.DefaultRules()
	return events.NewHandler(events.DefaultRegistry(events.UseCases{
		Process: process.New(rules, n),
		Cancel:  cancel.New(rules, n),
		Fulfil:  fulfil.New(),
	}), st, slog.New(slog.DiscardHandler))
}

func wantRefusal(t *testing.T, what string, err error, reason string) {
	t.Helper()
	kind, got := fault.Of(err)
	if kind != fault.Permanent || got != reason {
		t.Fatalf("%s: %v (%v, %q), want a permanent %s refusal", what, err, kind, got, reason)
	}
}

func wantStock(t *testing.T, st *sqlstore.Store, want order.Stock) {
	t.Helper()
	got, err := st.GetStock(context.Background(), want.ProductID)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("stock = %+v, want %+v", got, want)
	}
}

// TestEventOrderIDIsTheOneActedOn: an event's data decodes with names in any
// case, and the order id the batch reads ahead, logs and names in DLQ
// headers is the one the processor acts on; one given twice, in any case,
// is refused as invalid data, whichever a reader would take.
func TestEventOrderIDIsTheOneActedOn(t *testing.T) {
	t.Parallel()
	eachDialect(t, nil, func(t *testing.T, dialect string, st *sqlstore.Store, h *events.Handler) {
		ctx := context.Background()
		for _, v := range [][]byte{created("a-created", "A", "p", 1), created("b-created", "B", "p", 1)} {
			if res, err := h.Handle(ctx, v); err != nil || res != delivery.Applied {
				t.Fatalf("created: %v, %v", res, err)
			}
		}
		values := [][]byte{
			[]byte(`{"id":"b-cancelled","name":"OrderCancelled","data":{"orderId":"A","OrderId":"B","reason":"r"}}`),
			[]byte(`{"id":"a-shipped","name":"OrderShipped","data":{"ORDERID":"A","trackingNumber":"t-1"}}`),
		}
		metas := []*delivery.Meta{{}, {}}
		pre := h.Prepare(values, metas)
		if metas[0].OrderID != "" || metas[1].OrderID != "A" {
			t.Errorf("order ids %q, %q; want none (orderId given twice) and A", metas[0].OrderID, metas[1].OrderID)
		}
		n, errs, stop := h.Apply(ctx, pre, metas)
		if n != 2 || stop != nil || errs[1] != nil {
			t.Fatalf("Apply = %d, %v, %v", n, errs, stop)
		}
		wantRefusal(t, "orderId given twice", errs[0], order.ReasonInvalid)
		for id, want := range map[string]order.Status{"A": order.StatusShipped, "B": order.StatusProcessing} {
			if o, err := st.GetOrder(ctx, id); err != nil || o.Status != want {
				t.Errorf("order %s: %+v, %v; want %s", id, o, err, want)
			}
		}
	})
}

// TestEventIDReusedByAnotherEvent: an event whose id the inbox holds for an
// event of another name is not a redelivery. It is refused as a conflict
// (dead-lettered, with the reason), not acknowledged as a duplicate with
// nothing done and nothing said; a true redelivery is still a duplicate, in
// a batch as alone.
func TestEventIDReusedByAnotherEvent(t *testing.T) {
	t.Parallel()
	eachDialect(t, nil, func(t *testing.T, dialect string, st *sqlstore.Store, h *events.Handler) {
		ctx := context.Background()
		if res, err := h.Handle(ctx, created("e1", "R", "plenty", 1)); err != nil || res != delivery.Applied {
			t.Fatalf("R created: %v, %v", res, err)
		}
		_, err := h.Handle(ctx, cancelled("e1", "R"))
		wantRefusal(t, "a cancellation under the creation's id", err, order.ReasonConflict)
		if err != nil && !strings.Contains(err.Error(), "already recorded for a OrderCreated event") {
			t.Errorf("conflict = %q, want it to name the event the id is recorded for", err)
		}
		metas := []*delivery.Meta{{}, {}}
		n, errs, stop := h.HandleBatch(ctx, [][]byte{created("e1", "R", "plenty", 1), cancelled("e1", "R")}, metas)
		if stop != nil || n != 2 || errs[0] != nil || !metas[0].Duplicate || metas[1].Duplicate {
			t.Fatalf("batch of the redelivery and the reuse: n=%d errs=%v duplicate=%v/%v", n, errs, metas[0].Duplicate, metas[1].Duplicate)
		}
		wantRefusal(t, "the reuse in a batch", errs[1], order.ReasonConflict)
		if r, _ := st.GetOrder(ctx, "R"); r == nil || r.Status != order.StatusProcessing {
			t.Errorf("R = %+v, want processing: the cancellation under a reused id was not applied", r)
		}
	})
}

// TestEventIDReusedForAnotherOrder: the inbox keys an event id under its
// order (order.EventKey). A producer that reuses an id for another order's
// event has that event applied, not acknowledged as a duplicate with its
// order never created; a redelivery of either is still a duplicate, alone
// or in a batch with the other.
func TestEventIDReusedForAnotherOrder(t *testing.T) {
	t.Parallel()
	eachDialect(t, nil, func(t *testing.T, dialect string, st *sqlstore.Store, h *events.Handler) {
		ctx := context.Background()
		for _, id := range []string{"U1", "U2"} {
			if res, err := h.Handle(ctx, created("u-1", id, "plenty", 1)); err != nil || res != delivery.Applied {
				t.Fatalf("%s created under event id u-1: %v, %v; want applied", id, res, err)
			}
			if o, err := st.GetOrder(ctx, id); err != nil || o.Status != order.StatusProcessing {
				t.Errorf("order %s: %+v, %v; want processing", id, o, err)
			}
		}
		if res, err := h.Handle(ctx, created("u-1", "U1", "plenty", 1)); err != nil || res != delivery.Duplicate {
			t.Errorf("U1's creation again: %v, %v; want a duplicate", res, err)
		}
		metas := []*delivery.Meta{{}, {}, {}}
		n, errs, stop := h.HandleBatch(ctx, [][]byte{created("u-1", "U2", "plenty", 1), created("u-1", "U3", "plenty", 1), created("u-1", "U3", "plenty", 1)}, metas)
		if stop != nil || n != 3 || errs[0] != nil || errs[1] != nil || errs[2] != nil ||
			!metas[0].Duplicate || metas[1].Duplicate || !metas[2].Duplicate {
			t.Fatalf("batch of U2 again, U3, U3 again: n=%d errs=%v stop=%v duplicate=%v/%v/%v",
				n, errs, stop, metas[0].Duplicate, metas[1].Duplicate, metas[2].Duplicate)
		}
	})
}

// TestOrderCreatedAgainWithAnotherStatus: the status an OrderCreated gives
// (NEW → new, PENDING → pending) is part of its content. A second creation
// of the order that differs only there is a conflict, even after the order
// moved on to processing; with the same status it is the same order (which,
// processing, ProcessOrder then refuses as invalid_status, §3).
func TestOrderCreatedAgainWithAnotherStatus(t *testing.T) {
	t.Parallel()
	withStatus := func(eventID, status string) []byte {
		return fmt.Appendf(nil, `{"id":%q,"name":"OrderCreated","data":{"orderId":"S","customerId":"c-1","status":%q,"totalAmount":10.00,"currency":"USD","items":[{"productId":"p","quantity":1,"unitPrice":10.00,"totalPrice":10.00}]}}`,
			eventID, status)
	}
	eachDialect(t, nil, func(t *testing.T, dialect string, st *sqlstore.Store, h *events.Handler) {
		ctx := context.Background()
		if res, err := h.Handle(ctx, withStatus("s-1", "PENDING")); err != nil || res != delivery.Applied {
			t.Fatalf("S created pending: %v, %v", res, err)
		}
		_, err := h.Handle(ctx, withStatus("s-2", "NEW"))
		wantRefusal(t, "S created again as new", err, order.ReasonConflict)
		// The same order, already processing: ProcessOrder refuses it.
		_, err = h.Handle(ctx, withStatus("s-3", "pending"))
		wantRefusal(t, "S created again as pending", err, order.ReasonInvalidStatus)
		s, err := st.GetOrder(ctx, "S")
		if err != nil {
			t.Fatal(err)
		}
		if s.InitialStatus != order.StatusPending || s.Status != order.StatusProcessing {
			t.Errorf("S: initial status %q, status %q; want pending, processing", s.InitialStatus, s.Status)
		}
	})
}

// TestPrepareNamesBadEvents: an event refused before its transaction is
// still named by what could be read of it — event id, name and order id, for
// the logs and the DLQ headers (§6) — and its reason speaks JSON, not Go.
func TestPrepareNamesBadEvents(t *testing.T) {
	tests := []struct {
		value               string
		id, name, orderID   string
		reason, wantInError string
	}{
		{`{"id":"p3","data":{"orderId":"o-3"}}`, "p3", "", "o-3",
			events.ReasonInvalidEnvelope, `envelope field "name" is required`},
		{`{"id":"p3","name":"OrderCreated"}`, "p3", "OrderCreated", "",
			events.ReasonInvalidEnvelope, `envelope field "data" is required`},
		{`{"id":"p3","name":"OrderCreated","data":"hello"}`, "p3", "OrderCreated", "",
			events.ReasonInvalidEnvelope, `envelope field "data" must be an object`},
		{`null`, "", "", "",
			events.ReasonInvalidEnvelope, "envelope must be a JSON object"},
		{`{"id":"p3","name":"OrderCreated","data":{"orderId":"o-3","items":{}}}`, "p3", "OrderCreated", "o-3",
			order.ReasonInvalid, "data: items must be an array, got object"},
		{`{"id":"p3","name":"OrderCancelled","data":{"orderId":7}}`, "p3", "OrderCancelled", "",
			order.ReasonInvalid, "data: orderId must be a string, got number"},
		{`{"id":"p3","name":"OrderShipped","data":{"orderId":"o-3","trackingNumber":["t"]}}`, "p3", "OrderShipped", "o-3",
			order.ReasonInvalid, "data: trackingNumber must be a string, got array"},
	}
	h := newHandler(nil, &ordertest.Notifier{})
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			meta := &delivery.Meta{EventID: "stale", EventName: "stale", OrderID: "stale"}
			pre := h.Prepare([][]byte{[]byte(tt.value)}, []*delivery.Meta{meta})
			_, errs, stop := h.Apply(context.Background(), pre, []*delivery.Meta{meta})
			if stop != nil || len(errs) != 1 {
				t.Fatalf("Apply stopped: %v", stop)
			}
			wantRefusal(t, tt.value, errs[0], tt.reason)
			if !strings.HasSuffix(errs[0].Error(), tt.wantInError) {
				t.Errorf("error %q, want it to end %q", errs[0], tt.wantInError)
			}
			if meta.EventID != tt.id || meta.EventName != tt.name || meta.OrderID != tt.orderID {
				t.Errorf("meta names event %q, name %q, order %q; want %q, %q, %q",
					meta.EventID, meta.EventName, meta.OrderID, tt.id, tt.name, tt.orderID)
			}
		})
	}
}
