package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/orderd/orderd/internal/delivery"
	"github.com/orderd/orderd/internal/fault"
	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/order/create"
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

// Handle applies one record value in a transaction of its own. It returns
// nil only once the effect and the event id are committed together, or the
// id was already committed (a redelivery: delivery.Duplicate). Errors carry their
// class (internal/fault): decoding and rule errors are permanent, store
// outages transient.
//
// A rule refusal is recorded in the inbox too, so a redelivered refused event
// is refused again with the same reason, never applied late.
func (h *Handler) Handle(ctx context.Context, value []byte) (delivery.Outcome, error) {
	meta := delivery.MetaFrom(ctx)
	n, errs, stop := h.HandleBatch(ctx, [][]byte{value}, []*delivery.Meta{meta})
	if n == 0 {
		return "", stop
	}
	if errs[0] != nil {
		return "", errs[0]
	}
	if meta.Duplicate {
		return delivery.Duplicate, nil
	}
	return delivery.Applied, nil
}

// HandleBatch applies the record values of one partition, in order, in one
// transaction (group commit): one commit, and on SQLite one fsync, for the
// lot. Each event runs under its own savepoint, so a refused event is undone
// alone and recorded as refused while the others stand. It returns how many
// values, from the first, are finished — each with nil (applied, or a
// duplicate: metas[i].Duplicate) or its permanent error — and stops before
// the first event that fails otherwise (a store outage), with that error
// (stop); the event is then for Handle and its retries. n is 0 when the
// transaction failed. It is a kafka.BatchHandler once given the records'
// values.
//
// HandleBatch is Prepare, then Apply.
func (h *Handler) HandleBatch(ctx context.Context, values [][]byte, metas []*delivery.Meta) (n int, errs []error, stop error) {
	return h.Apply(ctx, h.Prepare(values, metas), metas)
}

// Prepare decodes record values ahead of their transaction, filling in
// metas. It takes no lock and touches no database: the transactions of the
// order database run one at a time (SQLite's one writer), so decoding one
// batch while another's transaction runs keeps both cores busy.
func (h *Handler) Prepare(values [][]byte, metas []*delivery.Meta) []Prepared {
	pre := make([]Prepared, len(values))
	for i, v := range values {
		pre[i] = h.prepare(v, metas[i])
	}
	return pre
}

// Apply is the transaction of HandleBatch, for events Prepare decoded; pre
// and metas may hold the batches of several partitions, each in its order.
func (h *Handler) Apply(ctx context.Context, pre []Prepared, metas []*delivery.Meta) (n int, errs []error, stop error) {
	errs = make([]error, len(pre))
	run := func(tx order.Tx) error {
		// InTx may run this again after undoing a run (order.Transactor):
		// what it reports is the last run's (applyOne sets each event's
		// Duplicate anew).
		n, stop = 0, nil
		clear(errs)
		if tx != nil {
			if err := tx.Preload(ctx, keysOf(pre, metas)); err != nil {
				return err
			}
		}
		for i := range pre {
			err := pre[i].err
			if err == nil {
				err = h.applyOne(ctx, tx, pre[i], metas[i])
			}
			if err != nil && fault.KindOf(err) != fault.Permanent {
				stop = err
				break
			}
			errs[i] = err
			n = i + 1
		}
		if n == 0 {
			return stop // nothing to commit
		}
		return nil
	}
	var err error
	if slices.ContainsFunc(pre, func(p Prepared) bool { return p.err == nil }) {
		err = h.tx.InTx(ctx, run)
	} else {
		err = run(nil) // nothing decoded: no transaction, no write lock
	}
	if err != nil {
		return 0, nil, err
	}
	return n, errs, stop
}

// keysOf names the rows the decoded events of a batch will touch: their
// inbox entries, their orders and, where the decoded data lists them
// (create.Input does), the stock of their products.
func keysOf(pre []Prepared, metas []*delivery.Meta) order.Keys {
	var k order.Keys
	for i, p := range pre {
		if p.err != nil {
			continue
		}
		k.Events = append(k.Events, eventKey(p.ev, metas[i]))
		if id := metas[i].OrderID; id != "" {
			k.OrderIDs = append(k.OrderIDs, id)
		}
		if l, ok := p.ev.Decoded.(interface{ ProductIDs() []string }); ok {
			k.ProductIDs = append(k.ProductIDs, l.ProductIDs()...)
		}
	}
	return k
}

// eventKey is the inbox's key of ev: its id under the order meta names (see
// order.EventKey). The preload and the marks must use the same key, or
// each mark reads the inbox again.
func eventKey(ev Envelope, meta *delivery.Meta) order.EventKey {
	return order.EventKey{OrderID: meta.OrderID, ID: ev.ID}
}

// Prepared is one record value decoded ahead of its transaction: an event
// and its processor, or the reason it cannot be applied.
type Prepared struct {
	ev  Envelope
	p   Processor
	err error
}

// prepare decodes value — the envelope, then the data when the event has a
// Decoder — and finds its processor, filling in meta.
func (h *Handler) prepare(value []byte, meta *delivery.Meta) Prepared {
	meta.Duplicate, meta.Summary = false, ""
	ev, err := Decode(value)
	meta.EventID, meta.EventName = ev.ID, ev.Name
	if err != nil {
		// What could be read of a bad envelope still names it in the logs
		// and the DLQ headers.
		meta.OrderID = ev.OrderID()
		return Prepared{err: err}
	}
	p, ok := h.registry.Lookup(ev.Name)
	if !ok {
		err = fault.Permanentf(ReasonUnknownEvent, "no processor for event %q (known: %v)", ev.Name, h.registry.Names())
	} else if d, ok := h.registry.decoders[ev.Name]; ok {
		ev.Decoded, err = d(ev)
	}
	// Decoded data that knows its order saves a second pass over the JSON.
	if o, ok := ev.Decoded.(interface{ OrderID() string }); ok && err == nil {
		meta.OrderID = o.OrderID()
	} else {
		meta.OrderID = ev.OrderID()
	}
	if err != nil {
		return Prepared{err: err}
	}
	return Prepared{ev: ev, p: p}
}

// applyOne applies one decoded event inside tx: nil when applied or already
// applied (meta.Duplicate), a permanent error when it is refused under the
// rules (the refusal then recorded in the inbox), any other error when the
// store failed.
func (h *Handler) applyOne(ctx context.Context, tx order.Tx, pr Prepared, meta *delivery.Meta) error {
	start := time.Now()
	meta.Duplicate, meta.Summary = false, "" // this run's finding, not an undone run's
	ev, p := pr.ev, pr.p
	key := eventKey(ev, meta)
	var summary string
	var prior order.InboxEntry
	err := tx.Savepoint(ctx, func() error {
		first, err := tx.MarkProcessed(ctx, key, ev.Name)
		if err != nil {
			return err
		}
		if !first {
			meta.Duplicate = true
			prior, _, err = tx.Inbox(ctx, key)
			return err
		}
		summary, err = p(ctx, tx, ev)
		return err
	})
	if err != nil && fault.KindOf(err) == fault.Permanent {
		meta.Duplicate, prior, err = h.refuse(ctx, tx, ev, meta, err)
	}
	if err != nil {
		return err
	}
	if meta.Duplicate && prior.Name != ev.Name {
		// Not a redelivery: another event under an id already used.
		meta.Duplicate = false
		return fault.AsPermanent(order.ReasonConflict, fmt.Errorf(
			"event id %s is already recorded for a %s event; this %s event reuses it, so it is not applied", ev.ID, prior.Name, ev.Name))
	}
	if prior.Refused {
		meta.Duplicate = false
		return refusedBefore(prior.Refusal)
	}
	meta.Summary = summary
	if h.logger.Enabled(ctx, slog.LevelDebug) {
		msg := "event applied: " + summary
		if meta.Duplicate {
			msg = "event duplicate: already in the inbox"
		}
		h.logger.LogAttrs(ctx, slog.LevelDebug, msg, append(meta.LogAttrs(),
			slog.String("event_name", ev.Name),
			slog.Duration("took", time.Since(start)))...)
	}
	return nil
}

// refuse records in the inbox that ev was refused for cause (a permanent
// error of its processor) and, for a refused OrderCreated, keeps its order
// unprocessed for review — under one savepoint of tx. It returns cause, so
// the event goes to the dead-letter topic. When ev's id is in the inbox
// already (another delivery of the event, committed meanwhile), the inbox
// wins: dup with what it holds.
func (h *Handler) refuse(ctx context.Context, tx order.Tx, ev Envelope, meta *delivery.Meta, cause error) (dup bool, prior order.InboxEntry, err error) {
	_, reason := fault.Of(cause)
	refusal := order.Refusal{Reason: reason, Detail: cause.Error()}
	k, keepOrder := errors.AsType[*KeepOrder](cause)
	key := eventKey(ev, meta)
	err = tx.Savepoint(ctx, func() error {
		first, err := tx.MarkRefused(ctx, key, ev.Name, refusal)
		if err != nil {
			return err
		}
		if !first {
			dup = true
			prior, _, err = tx.Inbox(ctx, key)
			return err
		}
		if keepOrder {
			_, err = create.Run(ctx, tx, k.Order)
		}
		return err
	})
	switch {
	case err != nil && fault.KindOf(err) != fault.Permanent:
		return false, order.InboxEntry{}, err // the event is tried again
	case err != nil:
		// The refusal cannot be stored (an id the database refuses to hold):
		// such an event fails this way on every delivery anyway.
		h.logger.LogAttrs(ctx, slog.LevelWarn, "refusal not recorded in the inbox",
			append(meta.LogAttrs(), slog.String("error", err.Error()))...)
		return false, order.InboxEntry{}, cause
	case dup:
		return true, prior, nil
	}
	if keepOrder {
		h.logger.LogAttrs(ctx, slog.LevelDebug, "order kept unprocessed for review", meta.LogAttrs()...)
	}
	return false, order.InboxEntry{}, cause
}

// refusedBefore is the error of a redelivered event that the inbox records
// as refused.
func refusedBefore(r order.Refusal) error {
	return fault.AsPermanent(r.Reason, fmt.Errorf("%s (refused on an earlier delivery: the inbox keeps the refusal)", r.Detail))
}
