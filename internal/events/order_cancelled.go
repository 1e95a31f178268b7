package events

import (
	"context"
	"encoding/json"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/order/cancel"
	"github.com/orderd/orderd/internal/order/create"
)

type cancelledData struct {
	ID     string `json:"orderId"`
	Reason string `json:"reason"`
}

// OrderCancelled runs CancelOrder for data.orderId with data.reason.
func OrderCancelled(uc *cancel.UseCase) Processor {
	return func(ctx context.Context, tx order.Tx, ev Envelope) (string, error) {
		d, err := dataOf[cancelledData](ev)
		if err != nil {
			return "", err
		}
		out, err := uc.Run(ctx, tx, cancel.Input{OrderID: d.ID, Reason: d.Reason})
		if err != nil {
			return "", err
		}
		return "order cancelled: refund " + out.RefundAmount.String(), nil
	}
}

// orderData is the data of an event about one existing order, whose id
// it names.
type orderData[T any] interface {
	*T
	OrderID() string
}

// dataOf returns ev's data as a T: what its decoder (DecodeData) made of it
// ahead of the transaction, or, without one, decoded now.
func dataOf[T any, PT orderData[T]](ev Envelope) (PT, error) {
	if d, ok := ev.Decoded.(PT); ok {
		return d, nil
	}
	d := PT(new(T))
	if err := decodeData(ev.Data, d); err != nil {
		return nil, err
	}
	return d, nil
}

// DecodeData is the Decoder of an event whose data is a T. The order id
// the batch reads (order.Keys), logs and names in DLQ headers is then the
// one its processor acts on: names match whatever their case, and a name
// given twice is refused, where a look for "orderId" in the raw data could
// find another than a decoder keeping the last ({"orderId":"A","OrderId":"B"}).
func DecodeData[T any, PT orderData[T]](ev Envelope) (any, error) {
	return dataOf[T, PT](ev)
}

// decodeData unmarshals event data into dst and requires a non-empty orderId
// of at most 1 KiB.
func decodeData(raw json.RawMessage, dst interface{ OrderID() string }) error {
	if err := jsonv2.Unmarshal(raw, dst, dataOptions); err != nil {
		return order.Reject(order.ReasonInvalid, "data: "+create.DescribeJSONError(err))
	}
	id := dst.OrderID()
	if id == "" {
		return order.Reject(order.ReasonInvalid, "data.orderId is required")
	}
	return order.CheckText("data.orderId", id)
}

// OrderID is the order the event is about.
func (d *cancelledData) OrderID() string { return d.ID }
