package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/orderd/orderd/internal/delivery"
	"github.com/orderd/orderd/internal/fault"
	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/order/create"
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
//
// A rule refusal is recorded in the inbox too (see refuse), so a redelivered
// refused event is refused again with the same reason, never applied late.
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
	var prior order.InboxEntry
	result := Applied
	err = h.tx.InTx(ctx, func(tx order.Tx) error {
		first, err := tx.MarkProcessed(ctx, ev.ID, ev.Name)
		if err != nil {
			return err
		}
		if !first {
			result = Duplicate
			prior, _, err = tx.Inbox(ctx, ev.ID)
			return err
		}
		summary, err = p(ctx, tx, ev)
		return err
	})
	if err != nil && fault.KindOf(err) == fault.Permanent {
		result, prior, err = h.refuse(ctx, ev, err)
	}
	if err != nil {
		return "", err
	}
	if prior.Refused {
		return "", refusedBefore(prior.Refusal)
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

// refuse records in the inbox that ev was refused for cause (a permanent
// error of its processor) and, for a refused OrderCreated, keeps its order
// unprocessed for review — both in one transaction. It returns cause, so the
// event goes to the dead-letter topic. When ev's id reached the inbox in the
// meantime (another delivery of the event), the inbox wins: Duplicate for an
// applied event, prior.Refused for a refused one.
func (h *Handler) refuse(ctx context.Context, ev Envelope, cause error) (Result, order.InboxEntry, error) {
	_, reason := fault.Of(cause)
	refusal := order.Refusal{Reason: reason, Detail: cause.Error()}
	var prior order.InboxEntry
	dup := false
	k, keepOrder := errors.AsType[*KeepOrder](cause)
	err := h.tx.InTx(ctx, func(tx order.Tx) error {
		first, err := tx.MarkRefused(ctx, ev.ID, ev.Name, refusal)
		if err != nil {
			return err
		}
		if !first {
			dup = true
			prior, _, err = tx.Inbox(ctx, ev.ID)
			return err
		}
		if keepOrder {
			_, err = create.Run(ctx, tx, k.Order)
		}
		return err
	})
	meta := delivery.MetaFrom(ctx)
	switch {
	case err != nil && fault.KindOf(err) != fault.Permanent:
		return "", order.InboxEntry{}, err // retried: the refusal is decided again
	case err != nil:
		// The refusal cannot be stored (an id the database refuses to hold):
		// such an event fails this way on every delivery anyway.
		h.logger.LogAttrs(ctx, slog.LevelWarn, "refusal not recorded in the inbox",
			append(meta.LogAttrs(), slog.String("error", err.Error()))...)
		return "", order.InboxEntry{}, cause
	case dup && !prior.Refused:
		return Duplicate, prior, nil
	case dup:
		return "", prior, nil
	}
	if keepOrder {
		h.logger.LogAttrs(ctx, slog.LevelDebug, "order kept unprocessed for review", meta.LogAttrs()...)
	}
	return "", order.InboxEntry{}, cause
}

// refusedBefore is the error of a redelivered event that the inbox records
// as refused.
func refusedBefore(r order.Refusal) error {
	return fault.AsPermanent(r.Reason, fmt.Errorf("%s (refused on an earlier delivery: the inbox keeps the refusal)", r.Detail))
}
