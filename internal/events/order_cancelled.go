package events

import (
	"context"
	"encoding/json"

	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/order/cancel"
)

type cancelledData struct {
	OrderID string `json:"orderId"`
	Reason  string `json:"reason"`
}

// OrderCancelled runs CancelOrder for data.orderId with data.reason.
func OrderCancelled(uc *cancel.UseCase) Processor {
	return func(ctx context.Context, tx order.Tx, ev Envelope) (string, error) {
		var d cancelledData
		if err := decodeData(ev.Data, &d); err != nil {
			return "", err
		}
		out, err := uc.Run(ctx, tx, cancel.Input{OrderID: d.OrderID, Reason: d.Reason})
		if err != nil {
			return "", err
		}
		return "order cancelled: refund " + out.RefundAmount.String(), nil
	}
}

// decodeData unmarshals event data into dst and requires a non-empty orderId
// of at most 1 KiB.
func decodeData(raw json.RawMessage, dst interface{ orderID() string }) error {
	if err := json.Unmarshal(raw, dst); err != nil {
		return order.Reject(order.ReasonInvalid, "data: "+err.Error())
	}
	id := dst.orderID()
	if id == "" {
		return order.Reject(order.ReasonInvalid, "data.orderId is required")
	}
	if len(id) > 1024 {
		return order.Reject(order.ReasonInvalid, "data.orderId is longer than 1 KiB")
	}
	return nil
}

func (d *cancelledData) orderID() string { return d.OrderID }
