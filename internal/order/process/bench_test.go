package process_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/order/ordertest"
	"github.com/orderd/orderd/internal/order/process"
)

// benchPool is how many new orders BenchmarkProcessRules keeps ready; they
// are put back to new, with the timer stopped, each time all were processed.
const benchPool = 1024

// benchCreated is when the benchmark's orders were created.
var benchCreated = time.Date(2026, 1, 5, 11, 34, 53, 0, time.UTC)

// BenchmarkProcessRules measures ProcessOrder's rules without I/O: load,
// validation with stock checks, shipping, discount, three reservations, the
// status move, the update and the notification, against the in-memory store.
//
// Every iteration runs inside one ordertest transaction, because
// ordertest.Store.InTx copies the whole store: a transaction per iteration
// would measure that copy rather than the rules.
func BenchmarkProcessRules(b *testing.B) {
	ctx := context.Background()
	st := ordertest.NewStore()
	orders := make([]*order.Order, benchPool)
	for i := range orders {
		orders[i] = benchOrder(b, fmt.Sprintf("ord-%04d", i))
		st.Put(orders[i])
	}
	for _, it := range orders[0].Items {
		st.SetStock(it.ProductID, 1<<40)
	}
	notifier := &ordertest.Notifier{}
	uc := process.New(order.DefaultRules(), notifier)
	b.ReportAllocs()
	err := st.InTx(ctx, func(tx order.Tx) error {
		next := 0
		for b.Loop() {
			if next == len(orders) {
				b.StopTimer()
				if err := renew(ctx, tx, orders); err != nil {
					return err
				}
				notifier.Sent = notifier.Sent[:0]
				next = 0
				b.StartTimer()
			}
			if _, err := uc.Run(ctx, tx, process.Input{OrderID: orders[next].ID}); err != nil {
				return fmt.Errorf("process %s: %w", orders[next].ID, err)
			}
			next++
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// renew puts processed orders back as they were created.
func renew(ctx context.Context, tx order.Tx, orders []*order.Order) error {
	for _, o := range orders {
		if err := tx.UpdateOrder(ctx, o); err != nil {
			return fmt.Errorf("renew %s: %w", o.ID, err)
		}
	}
	return nil
}

// benchOrder returns a new INR order of three tracked items, below the free
// shipping threshold so that shipping is priced.
func benchOrder(b *testing.B, id string) *order.Order {
	b.Helper()
	inr, err := order.LookupCurrency("INR")
	if err != nil {
		b.Fatal(err)
	}
	items := []order.Item{
		{ProductID: "prod-007", Quantity: 2, UnitPrice: 1975, TotalPrice: 3950},
		{ProductID: "prod-031", Quantity: 1, UnitPrice: 2500, TotalPrice: 2500},
		{ProductID: "prod-088", Quantity: 3, UnitPrice: 500, TotalPrice: 1500},
	}
	return &order.Order{
		ID:             id,
		CustomerID:     "cust-42",
		Status:         order.StatusNew,
		Currency:       inr,
		TotalAmount:    7950,
		Items:          items,
		ShippingMethod: order.ShippingStandard,
		CreatedAt:      benchCreated,
		UpdatedAt:      benchCreated,
	}
}
