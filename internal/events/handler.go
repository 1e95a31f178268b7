package events

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/orderd/orderd/internal/delivery"
	"github.com/orderd/orderd/internal/fault"
	"github.com/orderd/orderd/internal/order"
)

// Result is what handling one event came to.
type Result string

// The results of Handle that are not errors.
const (
	Applied   Result = "applied"   // the effect was committed now
	Duplicate Result = "duplicate" // the event id was in the inbox: nothing done
)

// Handler decodes record values and applies them through the registry.
type Handler struct {
	registry *Registry
	tx       order.Transactor
	logger   *slog.Logger
}

// NewHandler returns a Handler applying events from r inside transactions of tx.
func NewHandler(r *Registry, tx order.Transactor, logger *slog.Logger) *Handler {
	return &Handler{registry: r, tx: tx, logger: logger}
}

// Handle applies one record value. It returns nil only once the effect and the
// event id are committed together, or the id was already committed (a
// redelivery). Errors carry their class (internal/fault): decoding and rule
// errors are permanent, store outages transient.
func (h *Handler) Handle(ctx context.Context, value []byte) (Result, error) {
	start := time.Now()
	meta := delivery.MetaFrom(ctx)
	ev, err := Decode(value)
	if err != nil {
		return "", err
	}
	meta.EventID, meta.EventName, meta.OrderID = ev.ID, ev.Name, ev.OrderID()
	p, ok := h.registry.Lookup(ev.Name)
	if !ok {
		return "", fault.Permanentf(ReasonUnknownEvent, "no processor for event %q (known: %v)", ev.Name, h.registry.Names())
	}
	var summary string
	result := Applied
	err = h.tx.InTx(ctx, func(tx order.Tx) error {
		first, err := tx.MarkProcessed(ctx, ev.ID, ev.Name)
		if err != nil {
			return err
		}
		if !first {
			result = Duplicate
			return nil
		}
		summary, err = p(ctx, tx, ev)
		return err
	})
	var k *KeepOrder
	if errors.As(err, &k) && fault.KindOf(k.Err) == fault.Permanent {
		if kerr := keep(ctx, h.tx, k); kerr != nil {
			return "", kerr
		}
		h.logger.LogAttrs(ctx, slog.LevelDebug, "order kept unprocessed for review", meta.LogAttrs()...)
	}
	if err != nil {
		return "", err
	}
	if h.logger.Enabled(ctx, slog.LevelDebug) {
		msg := "event " + string(result)
		if result == Applied {
			msg += ": " + summary
		}
		h.logger.LogAttrs(ctx, slog.LevelDebug, msg, append(meta.LogAttrs(),
			slog.String("event_name", ev.Name),
			slog.Duration("took", time.Since(start)))...)
	}
	return result, nil
}
