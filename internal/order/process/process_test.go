package process_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/order/ordertest"
	"github.com/orderd/orderd/internal/order/process"
)

var now = time.Date(2026, 1, 5, 11, 34, 53, 0, time.UTC)

func newOrder(t *testing.T, code, total string) *order.Order {
	t.Helper()
	cur, err := order.LookupCurrency(code)
	if err != nil {
		t.Fatal(err)
	}
	minor, err := cur.ParseAmount(total)
	if err != nil {
		t.Fatal(err)
	}
	return &order.Order{
		ID: "o-1", CustomerID: "c-1", Status: order.StatusNew, Currency: cur, TotalAmount: minor,
		Items:          []order.Item{{ProductID: "p-1", Quantity: 1, UnitPrice: minor, TotalPrice: minor}},
		ShippingMethod: order.ShippingStandard, CreatedAt: now, UpdatedAt: now,
	}
}

func run(t *testing.T, st *ordertest.Store, n order.Notifier) (process.Output, error) {
	t.Helper()
	return runWith(t, order.DefaultRules(), st, n)
}

func runWith(t *testing.T, rules order.Rules, st *ordertest.Store, n order.Notifier) (process.Output, error) {
	t.Helper()
	uc := process.New(rules, n)
	uc.Now = func() time.Time { return now.Add(time.Minute) }
	var out process.Output
	err := st.InTx(context.Background(), func(tx order.Tx) error {
		var err error
		out, err = uc.Run(context.Background(), tx, process.Input{OrderID: "o-1"})
		return err
	})
	return out, err
}

func TestProcessPricing(t *testing.T) {
	tests := []struct {
		name, code, total, method string
		shipping, discount, final string
	}{
		{"seed sample INR 150", "INR", "150.00", "standard", "0.00", "15.00", "135.00"},
		{"free shipping at exactly 100.00", "USD", "100.00", "standard", "0.00", "10.00", "90.00"},
		{"standard shipping at 99.99", "USD", "99.99", "standard", "5.99", "10.00", "95.98"},
		{"express shipping", "USD", "50.00", "express", "12.99", "5.00", "57.99"},
		{"fraud threshold 10000.00 accepted", "USD", "10000.00", "standard", "0.00", "1000.00", "9000.00"},
		{"JPY rounds shipping and discount to whole yen", "JPY", "99", "standard", "6", "10", "95"},
		{"JPY half away from zero", "JPY", "95", "express", "13", "10", "98"},
		{"KWD three digits", "KWD", "10.005", "standard", "5.990", "1.001", "14.994"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := ordertest.NewStore()
			o := newOrder(t, tt.code, tt.total)
			o.ShippingMethod = order.ShippingMethod(tt.method)
			st.Put(o)
			n := &ordertest.Notifier{}
			out, err := run(t, st, n)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				name string
				got  order.Money
				want string
			}{{"shipping", out.ShippingCost, tt.shipping}, {"discount", out.DiscountApplied, tt.discount}, {"final", out.FinalTotal, tt.final}} {
				if got := c.got.Currency.Format(c.got.Minor); got != c.want {
					t.Errorf("%s = %s, want %s", c.name, got, c.want)
				}
			}
			saved := st.Get("o-1")
			if saved.Status != order.StatusProcessing || *saved.FinalTotal != out.FinalTotal.Minor || !saved.UpdatedAt.Equal(now.Add(time.Minute)) {
				t.Errorf("saved order = %+v", saved)
			}
			if !out.Success || len(n.Sent) != 1 || n.Sent[0].Message != out.Message {
				t.Fatalf("notifications = %+v, output %+v", n.Sent, out)
			}
			want := "Your order #o-1 is now being processed. Total: " + tt.final + " " + tt.code + " (includes " + tt.shipping + " " + tt.code + " shipping)"
			if out.Message != want {
				t.Errorf("message = %q, want %q", out.Message, want)
			}
		})
	}
}

func TestProcessRejections(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(*order.Order, *ordertest.Store)
		reason string
	}{
		{"fraud threshold 10000.01 flagged", func(o *order.Order, _ *ordertest.Store) {
			o.TotalAmount, o.Items[0].UnitPrice, o.Items[0].TotalPrice = 1000001, 1000001, 1000001
		}, order.ReasonFraudReview},
		{"zero total", func(o *order.Order, _ *ordertest.Store) { o.TotalAmount = 0 }, order.ReasonInvalidAmount},
		{"unsupported region", func(o *order.Order, _ *ordertest.Store) { o.ShippingRegion = "mars colony" }, order.ReasonUnsupportedRegion},
		{"out of stock", func(_ *order.Order, s *ordertest.Store) { s.SetStock("p-1", 0) }, order.ReasonOutOfStock},
		{"status processing", func(o *order.Order, _ *ordertest.Store) { o.Status = order.StatusProcessing }, order.ReasonInvalidStatus},
		{"status shipped", func(o *order.Order, _ *ordertest.Store) { o.Status = order.StatusShipped }, order.ReasonInvalidStatus},
		{"status delivered", func(o *order.Order, _ *ordertest.Store) { o.Status = order.StatusDelivered }, order.ReasonInvalidStatus},
		{"status cancelled", func(o *order.Order, _ *ordertest.Store) { o.Status = order.StatusCancelled }, order.ReasonInvalidStatus},
		{"status checked before amount", func(o *order.Order, _ *ordertest.Store) {
			o.Status, o.TotalAmount = order.StatusShipped, 0
		}, order.ReasonInvalidStatus},
		{"fraud checked before stock", func(o *order.Order, s *ordertest.Store) {
			o.TotalAmount = 2000000
			s.SetStock("p-1", 0)
		}, order.ReasonFraudReview},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := ordertest.NewStore()
			o := newOrder(t, "USD", "150.00")
			st.SetStock("p-1", 5)
			tt.setup(o, st)
			st.Put(o)
			n := &ordertest.Notifier{}
			_, err := run(t, st, n)
			if got := order.ReasonOf(err); got != tt.reason {
				t.Fatalf("reason = %q (%v), want %q", got, err, tt.reason)
			}
			if got := st.Get("o-1"); got.Status != o.Status || got.FinalTotal != nil {
				t.Errorf("order changed: %+v", got)
			}
			if len(n.Sent) != 0 {
				t.Errorf("notified on rejection: %+v", n.Sent)
			}
		})
	}
}

func TestProcessPendingAccepted(t *testing.T) {
	st := ordertest.NewStore()
	o := newOrder(t, "USD", "150.00")
	o.Status = order.StatusPending
	st.Put(o)
	if _, err := run(t, st, &ordertest.Notifier{}); err != nil {
		t.Fatal(err)
	}
}

func TestProcessNotFound(t *testing.T) {
	_, err := run(t, ordertest.NewStore(), &ordertest.Notifier{})
	if !errors.Is(err, order.ErrNotFound) {
		t.Fatalf("err = %v, want not found", err)
	}
}

func TestProcessReservesTrackedStockOnly(t *testing.T) {
	st := ordertest.NewStore()
	o := newOrder(t, "USD", "150.00")
	o.Items = []order.Item{
		{ProductID: "tracked", Quantity: 3, UnitPrice: 2500, TotalPrice: 7500},
		{ProductID: "untracked", Quantity: 1, UnitPrice: 7500, TotalPrice: 7500},
	}
	st.Put(o)
	st.SetStock("tracked", 3)
	if _, err := run(t, st, &ordertest.Notifier{}); err != nil {
		t.Fatal(err)
	}
	s, _ := st.Stock("tracked")
	if s.Available != 0 || s.Reserved != 3 {
		t.Errorf("stock = %+v, want 0 available, 3 reserved", s)
	}
	if _, ok := st.Stock("untracked"); ok {
		t.Error("untracked product got a stock record")
	}
	items := st.Get("o-1").Items
	if !items[0].Reserved || items[1].Reserved {
		t.Errorf("reserved flags = %v, %v", items[0].Reserved, items[1].Reserved)
	}
}

func TestProcessNotifierFailureRollsBack(t *testing.T) {
	st := ordertest.NewStore()
	st.Put(newOrder(t, "USD", "150.00"))
	st.SetStock("p-1", 1)
	_, err := run(t, st, &ordertest.Notifier{Err: errors.New("smtp down")})
	if err == nil || !strings.Contains(err.Error(), "smtp down") {
		t.Fatalf("err = %v", err)
	}
	if s, _ := st.Stock("p-1"); s.Available != 1 || st.Get("o-1").Status != order.StatusNew {
		t.Errorf("effects kept after failure: stock %+v", s)
	}
}

// TestProcessThresholdsCompareExactly: a threshold with more decimals than
// the currency is compared as it is (§3: total ≤ FRAUD_THRESHOLD passes,
// total ≥ FREE_SHIPPING_THRESHOLD ships free), not rounded to the
// currency's unit first.
func TestProcessThresholdsCompareExactly(t *testing.T) {
	rules := order.DefaultRules()
	rules.FraudThreshold = order.MustDecimal("9999.99")
	rules.FreeShippingThreshold = order.MustDecimal("49.49")
	for _, tt := range []struct {
		total  string
		reason string // "" when processed
		free   bool
	}{
		{"10000", order.ReasonFraudReview, false}, // over 9999.99, though 9999.99 rounds to 10000
		{"9999", "", true},
		{"49", "", false}, // under 49.49, though 49.49 rounds to 49
		{"50", "", true},
	} {
		st := ordertest.NewStore()
		st.Put(newOrder(t, "JPY", tt.total))
		out, err := runWith(t, rules, st, &ordertest.Notifier{})
		if got := order.ReasonOf(err); got != tt.reason {
			t.Errorf("JPY %s: reason %q (%v), want %q", tt.total, got, err, tt.reason)
			continue
		}
		if err == nil && (out.ShippingCost.Minor == 0) != tt.free {
			t.Errorf("JPY %s: shipping %v, want free: %v", tt.total, out.ShippingCost, tt.free)
		}
	}
}

// TestProcessStockOfAProductOnTwoLines: the stock check of step 2 counts
// all of an order's lines of a product, so that a shortfall is refused as
// out of stock there, before the region check of step 3.
func TestProcessStockOfAProductOnTwoLines(t *testing.T) {
	st := ordertest.NewStore()
	o := newOrder(t, "USD", "60.00")
	o.Items = []order.Item{
		{ProductID: "p-1", Quantity: 3, UnitPrice: 1000, TotalPrice: 3000},
		{ProductID: "p-1", Quantity: 3, UnitPrice: 1000, TotalPrice: 3000},
	}
	o.ShippingRegion = "Mars Colony"
	st.Put(o)
	st.SetStock("p-1", 5)
	_, err := run(t, st, &ordertest.Notifier{})
	if order.ReasonOf(err) != order.ReasonOutOfStock || !strings.Contains(err.Error(), "6 requested, 5 available") {
		t.Errorf("err = %v, want out_of_stock for 6 requested of 5", err)
	}
}
