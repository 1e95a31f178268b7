package events

import (
	"context"

	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/order/fulfil"
)

type shippedData struct {
	ID             string `json:"orderId"`
	TrackingNumber string `json:"trackingNumber"`
}

// OrderID is the order the event is about.
func (d *shippedData) OrderID() string { return d.ID }

// OrderShipped moves data.orderId from processing to shipped.
func OrderShipped(uc *fulfil.UseCase) Processor {
	return func(ctx context.Context, tx order.Tx, ev Envelope) (string, error) {
		d, err := dataOf[shippedData](ev)
		if err != nil {
			return "", err
		}
		if _, err := uc.Run(ctx, tx, fulfil.Input{OrderID: d.ID, To: order.StatusShipped, TrackingNumber: d.TrackingNumber}); err != nil {
			return "", err
		}
		return "order shipped", nil
	}
}
