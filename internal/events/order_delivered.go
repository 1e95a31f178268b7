package events

import (
	"context"

	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/order/fulfil"
)

type deliveredData struct {
	OrderID string `json:"orderId"`
}

func (d *deliveredData) orderID() string { return d.OrderID }

// OrderDelivered moves data.orderId from shipped to delivered.
func OrderDelivered(uc *fulfil.UseCase) Processor {
	return func(ctx context.Context, tx order.Tx, ev Envelope) (string, error) {
		var d deliveredData
		if err := decodeData(ev.Data, &d); err != nil {
			return "", err
		}
		if _, err := uc.Run(ctx, tx, fulfil.Input{OrderID: d.OrderID, To: order.StatusDelivered}); err != nil {
			return "", err
		}
		return "order delivered", nil
	}
}
