// Package fulfil is the shipping and delivery use case: it moves a processing
// order to shipped (with its tracking number) and a shipped one to delivered.
package fulfil

import (
	"context"
	"time"

	"github.com/orderd/orderd/internal/order"
)

// Input names the order, the status it should reach (shipped or delivered),
// and for shipping the carrier's tracking number.
type Input struct {
	OrderID        string
	To             order.Status
	TrackingNumber string
}

// Output is the order after the move.
type Output struct {
	Order   *order.Order
	Message string
	Success bool
}

// Store is what fulfilment needs from the transaction.
type Store interface {
	Order(ctx context.Context, id string) (*order.Order, error)
	UpdateOrder(ctx context.Context, o *order.Order) error
}

// UseCase moves orders along the fulfilment part of the status machine.
type UseCase struct {
	Now func() time.Time
}

// New returns a UseCase that reads the clock from time.Now.
func New() *UseCase { return &UseCase{Now: time.Now} }

// Run moves the order to in.To. Only shipped and delivered are fulfilment
// targets; the status machine decides whether the move is allowed.
func (uc *UseCase) Run(ctx context.Context, tx Store, in Input) (Output, error) {
	if in.To != order.StatusShipped && in.To != order.StatusDelivered {
		return Output{}, order.Reject(order.ReasonInvalidTransition, "fulfilment moves orders to shipped or delivered, not "+string(in.To))
	}
	if err := order.CheckText("tracking number", in.TrackingNumber); err != nil {
		return Output{}, err
	}
	o, err := tx.Order(ctx, in.OrderID)
	if err != nil {
		return Output{}, err
	}
	if err := o.MoveTo(in.To, uc.Now().UTC()); err != nil {
		return Output{}, err
	}
	if in.To == order.StatusShipped && in.TrackingNumber != "" {
		o.TrackingNumber = in.TrackingNumber
	}
	if err := tx.UpdateOrder(ctx, o); err != nil {
		return Output{}, err
	}
	return Output{Order: o, Message: "Order #" + o.ID + " is " + string(o.Status), Success: true}, nil
}
