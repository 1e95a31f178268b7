package events

import (
	"context"

	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/order/create"
	"github.com/orderd/orderd/internal/order/process"
)

// OrderCreated stores the order carried by the event (unless the same order
// exists already) and runs ProcessOrder on it.
func OrderCreated(uc *process.UseCase) Processor {
	decode := DecodeOrderCreated(uc)
	return func(ctx context.Context, tx order.Tx, ev Envelope) (string, error) {
		in, ok := ev.Decoded.(create.Input)
		if !ok {
			d, err := decode(ev)
			if err != nil {
				return "", err
			}
			in = d.(create.Input)
		}
		created, err := create.Run(ctx, tx, in)
		if err != nil {
			return "", err
		}
		out, err := uc.Run(ctx, tx, process.Input{OrderID: in.Order.ID, Order: created.Order})
		if err != nil {
			return "", &KeepOrder{Order: in, Err: err}
		}
		// Concatenated rather than fmt.Sprintf: this runs for every event, in
		// the transaction (on SQLite, the one writer).
		return "order processed: final total " + out.FinalTotal.String() + ", shipping " +
			out.ShippingCost.String() + ", discount " + out.DiscountApplied.String(), nil
	}
}

// DecodeOrderCreated checks an OrderCreated event's data (§2) and builds its
// order, a create.Input.
func DecodeOrderCreated(uc *process.UseCase) Decoder {
	return func(ev Envelope) (any, error) {
		in, err := create.Decode(ev.Data, uc.Now())
		if err != nil {
			return nil, err
		}
		return in, nil
	}
}

// KeepOrder is returned when an OrderCreated event's order is valid but
// ProcessOrder refuses it (fraud review, no stock, unsupported region…). The
// event still goes to the dead-letter topic, but the order itself is kept,
// unprocessed, so that someone can review it and process it by hand.
type KeepOrder struct {
	Order create.Input
	Err   error
}

func (k *KeepOrder) Error() string { return k.Err.Error() }
func (k *KeepOrder) Unwrap() error { return k.Err }
