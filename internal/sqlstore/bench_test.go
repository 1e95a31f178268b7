package sqlstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/sqlstore"
	"github.com/orderd/orderd/internal/sqlstore/sqlstoretest"
)

// benchProducts is how many products the benchmark orders draw from. Each
// order takes three neighbours in turn, so a batch of 100 orders updates each
// stock row about three times, as a batch of real orders would: not 100 times
// the same row, whose version chain would grow within the transaction on
// PostgreSQL and make the batch look slower than it is.
const benchProducts = 100

func benchProduct(i int) string { return fmt.Sprintf("prod-%03d", i%benchProducts) }

// BenchmarkStore measures the SQL an OrderCreated event's effect costs, one
// transaction per order: insert the order and its items, reserve the stock
// of each item, update the order. ns/order equals ns/op here.
func BenchmarkStore(b *testing.B) { benchmarkStore(b, 1) }

// BenchmarkStoreBatch is BenchmarkStore with 100 orders per transaction, the
// gain group commit could bring; one op is one transaction, compare ns/order.
func BenchmarkStoreBatch(b *testing.B) { benchmarkStore(b, 100) }

func benchmarkStore(b *testing.B, perTx int) {
	for _, dialect := range sqlstoretest.Dialects(b) {
		b.Run(dialect, func(b *testing.B) {
			st := sqlstoretest.Open(b, dialect)
			ctx := b.Context()
			for i := range benchProducts {
				if _, err := st.SetStock(ctx, benchProduct(i), 1<<40); err != nil {
					b.Fatalf("set stock: %v", err)
				}
			}
			src, err := newOrderSource(b, perTx)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				batch := src.next()
				if err := storeBatch(ctx, st, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perTx), "ns/order")
		})
	}
}

// storeBatch applies the effect of OrderCreated to every order of batch in
// one transaction.
func storeBatch(ctx context.Context, st *sqlstore.Store, batch []*order.Order) error {
	return st.InTx(ctx, func(tx order.Tx) error {
		for _, o := range batch {
			if err := storeOne(ctx, tx, o); err != nil {
				return err
			}
		}
		return nil
	})
}

// storeOne does what ProcessOrder writes for a new order: the insert, one
// reservation per item in product order, and the update to processing.
func storeOne(ctx context.Context, tx order.Tx, o *order.Order) error {
	if err := tx.CreateOrder(ctx, o); err != nil {
		return err
	}
	for _, i := range o.ByProduct() {
		it := &o.Items[i]
		ok, err := tx.Reserve(ctx, it.ProductID, it.Quantity)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("reserve %d of %s: out of stock", it.Quantity, it.ProductID)
		}
		it.Reserved = true
	}
	if err := o.MoveTo(order.StatusProcessing, time.Now()); err != nil {
		return err
	}
	shipping, discount := int64(599), int64(795)
	final := o.TotalAmount + shipping - discount
	o.ShippingCost, o.Discount, o.FinalTotal = &shipping, &discount, &final
	return tx.UpdateOrder(ctx, o)
}

// orderSource hands out batches of new orders with unique ids, built in
// chunks with the benchmark timer stopped.
type orderSource struct {
	b       *testing.B
	inr     order.Currency
	perTx   int
	batches [][]*order.Order
	pos     int
	made    int
}

// orderChunk is about how many orders an orderSource builds at a time.
const orderChunk = 1024

func newOrderSource(b *testing.B, perTx int) (*orderSource, error) {
	inr, err := order.LookupCurrency("INR")
	if err != nil {
		return nil, err
	}
	s := &orderSource{b: b, inr: inr, perTx: perTx, batches: make([][]*order.Order, max(1, orderChunk/perTx))}
	s.fill()
	return s, nil
}

func (s *orderSource) fill() {
	now := time.Now()
	for i := range s.batches {
		batch := make([]*order.Order, s.perTx)
		for j := range batch {
			batch[j] = s.order(s.made, now)
			s.made++
		}
		s.batches[i] = batch
	}
	s.pos = 0
}

// order returns the n-th new INR order, of three items.
func (s *orderSource) order(n int, now time.Time) *order.Order {
	return &order.Order{
		ID:          fmt.Sprintf("bench-%d", n),
		CustomerID:  "cust-42",
		Status:      order.StatusNew,
		Currency:    s.inr,
		TotalAmount: 7950,
		Items: []order.Item{
			{ProductID: benchProduct(3 * n), Quantity: 2, UnitPrice: 1975, TotalPrice: 3950},
			{ProductID: benchProduct(3*n + 1), Quantity: 1, UnitPrice: 2500, TotalPrice: 2500},
			{ProductID: benchProduct(3*n + 2), Quantity: 3, UnitPrice: 500, TotalPrice: 1500},
		},
		ShippingMethod: order.ShippingStandard,
		CreatedAt:      now,
		UpdatedAt:      now,
	}
}

func (s *orderSource) next() []*order.Order {
	if s.pos == len(s.batches) {
		s.b.StopTimer()
		s.fill()
		s.b.StartTimer()
	}
	batch := s.batches[s.pos]
	s.pos++
	return batch
}
