package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/orderd/orderd/internal/fault"
	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/sqlstore"
	"github.com/orderd/orderd/internal/sqlstore/sqlstoretest"
)

// TestUnstorableTextIsInvalid: a NUL character in an id or a reason is text
// PostgreSQL refuses (SQLSTATE 22021). That refusal is permanent invalid
// data — dead-lettered at once, 400 over HTTP — not an unclassified error
// retried MAX_ATTEMPTS times. SQLite stores such text as it is.
func TestUnstorableTextIsInvalid(t *testing.T) {
	for _, dialect := range sqlstoretest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			st := sqlstoretest.Open(t, dialect)
			ctx := context.Background()
			now := time.Date(2026, 1, 5, 11, 34, 53, 0, time.UTC)
			usd, _ := order.LookupCurrency("USD")
			o := &order.Order{ID: "n\x00ul", CustomerID: "c", Status: order.StatusNew, Currency: usd, TotalAmount: 100,
				Items:          []order.Item{{ProductID: "p", Quantity: 1, UnitPrice: 100, TotalPrice: 100}},
				ShippingMethod: order.ShippingStandard, CreatedAt: now, UpdatedAt: now}
			err := st.InTx(ctx, func(tx order.Tx) error { return tx.CreateOrder(ctx, o) })
			_, getErr := st.GetOrder(ctx, o.ID)
			switch dialect {
			case sqlstore.DialectPostgres:
				for name, err := range map[string]error{"CreateOrder": err, "GetOrder": getErr} {
					if kind, reason := fault.Of(err); kind != fault.Permanent || reason != order.ReasonInvalid {
						t.Errorf("%s: %v is %s/%s, want permanent %s", name, err, kind, reason, order.ReasonInvalid)
					}
				}
			default:
				if err != nil || getErr != nil {
					t.Errorf("SQLite refused a NUL: %v, %v", err, getErr)
				}
			}
		})
	}
}
