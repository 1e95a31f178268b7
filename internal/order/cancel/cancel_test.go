package cancel_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/order/cancel"
	"github.com/orderd/orderd/internal/order/ordertest"
)

var now = time.Date(2026, 1, 5, 11, 34, 53, 0, time.UTC)

func seed(st *ordertest.Store, status order.Status, final *int64, reserved bool) {
	inr, _ := order.LookupCurrency("INR")
	st.Put(&order.Order{
		ID: "o-1", CustomerID: "c-1", Status: status, Currency: inr, TotalAmount: 15000, FinalTotal: final,
		Items:     []order.Item{{ProductID: "p-1", Quantity: 2, UnitPrice: 7500, TotalPrice: 15000, Reserved: reserved}},
		CreatedAt: now, UpdatedAt: now,
	})
}

func run(t *testing.T, st *ordertest.Store, n order.Notifier, reason string) (cancel.Output, error) {
	t.Helper()
	uc := cancel.New(order.DefaultRules(), n)
	uc.Now = func() time.Time { return now.Add(time.Hour) }
	var out cancel.Output
	err := st.InTx(context.Background(), func(tx order.Tx) error {
		var err error
		out, err = uc.Run(context.Background(), tx, cancel.Input{OrderID: "o-1", Reason: reason})
		return err
	})
	return out, err
}

func TestCancelRefund(t *testing.T) {
	final := int64(13500)
	tests := []struct {
		name   string
		status order.Status
		final  *int64
		refund string
	}{
		{"processed: refund is final total less 5%", order.StatusProcessing, &final, "128.25"},
		{"new: refund is total amount less 5%", order.StatusNew, nil, "142.50"},
		{"pending", order.StatusPending, nil, "142.50"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := ordertest.NewStore()
			seed(st, tt.status, tt.final, false)
			n := &ordertest.Notifier{}
			out, err := run(t, st, n, "changed my mind")
			if err != nil {
				t.Fatal(err)
			}
			if got := out.RefundAmount.Currency.Format(out.RefundAmount.Minor); got != tt.refund {
				t.Errorf("refund = %s, want %s", got, tt.refund)
			}
			o := st.Get("o-1")
			if o.Status != order.StatusCancelled || o.CancellationReason != "changed my mind" || o.RefundAmount == nil {
				t.Errorf("saved = %+v", o)
			}
			want := "Your order #o-1 has been cancelled. Reason: changed my mind. Refund of " + tt.refund + " INR will be processed within 5-7 business days."
			if len(n.Sent) != 1 || n.Sent[0].Message != want || out.Message != want {
				t.Errorf("notification = %+v, want %q", n.Sent, want)
			}
		})
	}
}

func TestCancelNotCancellable(t *testing.T) {
	for _, s := range []order.Status{order.StatusShipped, order.StatusDelivered, order.StatusCancelled} {
		t.Run(string(s), func(t *testing.T) {
			st := ordertest.NewStore()
			seed(st, s, nil, false)
			_, err := run(t, st, &ordertest.Notifier{}, "")
			if order.ReasonOf(err) != order.ReasonNotCancellable {
				t.Fatalf("err = %v, want not_cancellable", err)
			}
			if st.Get("o-1").Status != s {
				t.Error("status changed")
			}
		})
	}
}

func TestCancelReleasesReservedStock(t *testing.T) {
	st := ordertest.NewStore()
	final := int64(13500)
	seed(st, order.StatusProcessing, &final, true)
	st.SetStock("p-1", 8)
	// Mirror the reservation processing made.
	_ = st.InTx(context.Background(), func(tx order.Tx) error {
		_, err := tx.Reserve(context.Background(), "p-1", 2)
		return err
	})
	out, err := run(t, st, &ordertest.Notifier{}, "")
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := st.Stock("p-1"); s.Available != 8 || s.Reserved != 0 {
		t.Errorf("stock = %+v, want 8 available, 0 reserved", s)
	}
	if out.Order.CancellationReason != cancel.DefaultReason {
		t.Errorf("reason = %q", out.Order.CancellationReason)
	}
	if st.Get("o-1").Items[0].Reserved {
		t.Error("item still marked reserved")
	}
}

// TestCancelReasonLimit: a reason is at most 1 KiB of UTF-8 (§2), counted
// in bytes, whether it comes from the HTTP API or an OrderCancelled event.
func TestCancelReasonLimit(t *testing.T) {
	tests := []struct {
		name   string
		reason string
		ok     bool
	}{
		{"1,024 bytes", strings.Repeat("€", 341) + "x", true},
		{"1,000 characters, 3,000 bytes", strings.Repeat("€", 1000), false},
		{"1,025 bytes", strings.Repeat("x", 1025), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := ordertest.NewStore()
			seed(st, order.StatusNew, nil, false)
			_, err := run(t, st, &ordertest.Notifier{}, tt.reason)
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if order.ReasonOf(err) != order.ReasonInvalid {
				t.Fatalf("err = %v, want invalid_data", err)
			}
			if st.Get("o-1").Status != order.StatusNew {
				t.Error("status changed")
			}
		})
	}
}

func TestCancelNotFound(t *testing.T) {
	if _, err := run(t, ordertest.NewStore(), &ordertest.Notifier{}, ""); !errors.Is(err, order.ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
}
