// Package cancel is the CancelOrder use case (the seed's USECASE_CancelOrder):
// refund the charged amount less the cancellation fee, release reserved stock,
// move the order to cancelled and tell the customer — in one transaction.
package cancel

import (
	"context"
	"fmt"
	"time"

	"github.com/orderd/orderd/internal/order"
)

// Input names the order to cancel and why.
type Input struct {
	OrderID string
	Reason  string
}

// Output is the seed's OUTPUT_CancelOrder.
type Output struct {
	Order        *order.Order
	RefundAmount order.Money
	Message      string
	Success      bool
}

// Store is what cancelling needs from the transaction.
type Store interface {
	Order(ctx context.Context, id string) (*order.Order, error)
	UpdateOrder(ctx context.Context, o *order.Order) error
	Release(ctx context.Context, productID string, qty int64) error
}

// DefaultReason is used when the request gives none.
const DefaultReason = "Customer request"

// UseCase cancels orders under Rules.
type UseCase struct {
	Rules    order.Rules
	Notifier order.Notifier
	Now      func() time.Time
}

// New returns a UseCase that reads the clock from time.Now.
func New(rules order.Rules, n order.Notifier) *UseCase {
	return &UseCase{Rules: rules, Notifier: n, Now: time.Now}
}

// Run executes the seed's five steps inside tx.
func (uc *UseCase) Run(ctx context.Context, tx Store, in Input) (Output, error) {
	if err := order.CheckText("reason", in.Reason); err != nil {
		return Output{}, err
	}
	// 1. Load.
	o, err := tx.Order(ctx, in.OrderID)
	if err != nil {
		return Output{}, err
	}
	// 2. Validate cancellable (the status machine owns the rule).
	if err := o.MoveTo(order.StatusCancelled, uc.Now().UTC()); err != nil {
		return Output{}, err
	}
	// 3. Refund: what was charged, less the fee.
	charged := o.TotalAmount
	if o.FinalTotal != nil {
		charged = *o.FinalTotal
	}
	refund := charged - order.ApplyRate(charged, uc.Rules.CancellationFeeRate)
	// 4. Release reserved stock; store refund and reason.
	for _, i := range o.ByProduct() { // in product order, like Reserve
		it := o.Items[i]
		if !it.Reserved {
			continue
		}
		if err := tx.Release(ctx, it.ProductID, it.Quantity); err != nil {
			return Output{}, err
		}
		o.Items[i].Reserved = false
	}
	reason := in.Reason
	if reason == "" {
		reason = DefaultReason
	}
	o.RefundAmount, o.CancellationReason = &refund, reason
	if err := tx.UpdateOrder(ctx, o); err != nil {
		return Output{}, err
	}
	// 5. Notify.
	msg := fmt.Sprintf("Your order #%s has been cancelled. Reason: %s. Refund of %s will be processed within 5-7 business days.",
		o.ID, reason, o.Money(refund))
	if err := uc.Notifier.Notify(ctx, order.Notification{CustomerID: o.CustomerID, OrderID: o.ID, Message: msg}); err != nil {
		return Output{}, fmt.Errorf("notify customer: %w", err)
	}
	return Output{Order: o, RefundAmount: o.Money(refund), Message: msg, Success: true}, nil
}
