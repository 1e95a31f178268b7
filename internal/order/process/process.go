// Package process is the ProcessOrder use case (the seed's USECASE_ProcessOrder):
// validate an order, price its shipping and discount, reserve its stock, move
// it to processing and tell the customer — in one transaction.
package process

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/orderd/orderd/internal/order"
)

// Input names the order to process.
type Input struct {
	OrderID string
	// Order, when set, is the order OrderID names as this transaction has
	// just created or loaded it, so Run does not load it again. Run works
	// on a copy: Order itself is left as it is.
	Order *order.Order
}

// Output is the seed's OUTPUT_ProcessOrder.
type Output struct {
	Order           *order.Order
	ShippingCost    order.Money
	DiscountApplied order.Money
	FinalTotal      order.Money
	Message         string
	Success         bool
}

// Store is what processing needs from the transaction.
type Store interface {
	Order(ctx context.Context, id string) (*order.Order, error)
	UpdateOrder(ctx context.Context, o *order.Order) error
	Stocks(ctx context.Context, productIDs []string) (map[string]order.Stock, error)
	Reserve(ctx context.Context, productID string, qty int64) (bool, error)
}

// UseCase processes orders under Rules.
type UseCase struct {
	Rules    order.Rules
	Notifier order.Notifier
	Now      func() time.Time
}

// New returns a UseCase that reads the clock from time.Now.
func New(rules order.Rules, n order.Notifier) *UseCase {
	return &UseCase{Rules: rules, Notifier: n, Now: time.Now}
}

// Run executes the seed's seven steps inside tx. A rule that refuses the order
// returns an *order.RuleError and changes nothing (the caller rolls tx back).
func (uc *UseCase) Run(ctx context.Context, tx Store, in Input) (Output, error) {
	// 1. Load.
	var o *order.Order
	if in.Order != nil && in.Order.ID == in.OrderID {
		o = in.Order.Clone()
	} else {
		var err error
		if o, err = tx.Order(ctx, in.OrderID); err != nil {
			return Output{}, err
		}
	}
	// 2. Validate, first failure rejects.
	tracked, err := uc.validate(ctx, tx, o)
	if err != nil {
		return Output{}, err
	}
	// 3. Shipping.
	shipping, err := uc.shipping(o)
	if err != nil {
		return Output{}, err
	}
	// 4. Discount.
	discount := order.ApplyRate(o.TotalAmount, uc.Rules.DiscountRate)
	// 5. Final total.
	final := o.TotalAmount + shipping - discount
	// 6. Reserve stock and move to processing. Rows are taken in product
	// order, as every transaction takes them, so two orders sharing products
	// never wait on each other in a cycle (a deadlock on PostgreSQL).
	for _, i := range o.ByProduct() {
		it := o.Items[i]
		if !tracked[i] {
			continue
		}
		ok, err := tx.Reserve(ctx, it.ProductID, it.Quantity)
		if err != nil {
			return Output{}, err
		}
		if !ok {
			return Output{}, order.Reject(order.ReasonOutOfStock, fmt.Sprintf("product %s: fewer than %d available", it.ProductID, it.Quantity))
		}
		o.Items[i].Reserved = true
	}
	if err := o.MoveTo(order.StatusProcessing, uc.Now().UTC()); err != nil {
		return Output{}, err
	}
	o.ShippingCost, o.Discount, o.FinalTotal = &shipping, &discount, &final
	if err := tx.UpdateOrder(ctx, o); err != nil {
		return Output{}, err
	}
	// 7. Notify.
	msg := "Your order #" + o.ID + " is now being processed. Total: " + o.Money(final).String() +
		" (includes " + o.Money(shipping).String() + " shipping)"
	if err := uc.Notifier.Notify(ctx, order.Notification{CustomerID: o.CustomerID, OrderID: o.ID, Message: msg}); err != nil {
		return Output{}, fmt.Errorf("notify customer: %w", err)
	}
	return Output{
		Order:           o,
		ShippingCost:    o.Money(shipping),
		DiscountApplied: o.Money(discount),
		FinalTotal:      o.Money(final),
		Message:         msg,
		Success:         true,
	}, nil
}

// validate applies the rules of step 2 and reports, per item, whether its
// product has a stock record.
func (uc *UseCase) validate(ctx context.Context, tx Store, o *order.Order) ([]bool, error) {
	if o.Status != order.StatusNew && o.Status != order.StatusPending {
		return nil, order.Reject(order.ReasonInvalidStatus, fmt.Sprintf("order %s is %s; only new or pending orders can be processed", o.ID, o.Status))
	}
	if o.TotalAmount <= 0 {
		return nil, order.Reject(order.ReasonInvalidAmount, fmt.Sprintf("order %s total %s must be greater than zero", o.ID, o.Money(o.TotalAmount)))
	}
	if o.TotalAmount > o.Currency.FloorMinor(uc.Rules.FraudThreshold) {
		return nil, order.Reject(order.ReasonFraudReview, fmt.Sprintf("order %s total %s exceeds %s %s; flagged for fraud review",
			o.ID, o.Money(o.TotalAmount), uc.Rules.FraudThreshold, o.Currency.Code))
	}
	ids := make([]string, len(o.Items))
	for i, it := range o.Items {
		ids[i] = it.ProductID
	}
	stock, err := tx.Stocks(ctx, ids)
	if err != nil {
		return nil, err
	}
	tracked := make([]bool, len(o.Items))
	for i, it := range o.Items {
		s, ok := stock[it.ProductID]
		if ok {
			if want := wanted(o.Items, it.ProductID); s.Available < want {
				return nil, order.Reject(order.ReasonOutOfStock, fmt.Sprintf("product %s: %d requested, %d available", it.ProductID, want, s.Available))
			}
		}
		tracked[i] = ok
	}
	return tracked, nil
}

// wanted is what an order's lines ask of a product in all: two lines of 3
// need 6. (A loop rather than a map: an order has a few lines, and this
// runs for every event, on SQLite in its one writer.)
func wanted(items []order.Item, productID string) int64 {
	var n int64
	for _, it := range items {
		if it.ProductID == productID {
			if it.Quantity > math.MaxInt64-n {
				return math.MaxInt64 // more than any stock
			}
			n += it.Quantity
		}
	}
	return n
}

func (uc *UseCase) shipping(o *order.Order) (int64, error) {
	if o.ShippingRegion != "" && !uc.Rules.RegionSupported(o.ShippingRegion) {
		return 0, order.Reject(order.ReasonUnsupportedRegion, fmt.Sprintf("order %s: no shipping to %s", o.ID, o.ShippingRegion))
	}
	if o.TotalAmount >= o.Currency.CeilMinor(uc.Rules.FreeShippingThreshold) {
		return 0, nil
	}
	if o.ShippingMethod == order.ShippingExpress {
		return o.Currency.FromMajor(uc.Rules.ExpressShipping), nil
	}
	return o.Currency.FromMajor(uc.Rules.StandardShipping), nil
}
