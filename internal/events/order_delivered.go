package events

import (
	"context"

	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/order/fulfil"
)

type deliveredData struct {
	ID string `json:"orderId"`
}

// OrderID is the order the event is about.
func (d *deliveredData) OrderID() string { return d.ID }

// OrderDelivered moves data.orderId from shipped to delivered.
func OrderDelivered(uc *fulfil.UseCase) Processor {
	return func(ctx context.Context, tx order.Tx, ev Envelope) (string, error) {
		d, err := dataOf[deliveredData](ev)
		if err != nil {
			return "", err
		}
		if _, err := uc.Run(ctx, tx, fulfil.Input{OrderID: d.ID, To: order.StatusDelivered}); err != nil {
			return "", err
		}
		return "order delivered", nil
	}
}
