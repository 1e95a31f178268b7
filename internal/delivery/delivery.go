// Package delivery carries what is known about the message being handled
// (correlation id, event id and name, order id, attempt) through a context,
// and names what handling it came to (Outcome), so that the consumer, the
// event processors, the metrics and the logs all describe a message the same
// way without importing each other.
package delivery

import (
	"context"
	"log/slog"
)

// Meta describes one message in flight. The consumer creates it; the event
// decoder fills in what it learns (event id, name, order id).
type Meta struct {
	CorrelationID string
	EventID       string
	EventName     string
	OrderID       string
	Attempt       int
	// Duplicate is set when the event was already in the inbox: the record
	// was acknowledged without a second effect.
	Duplicate bool
	// Summary is the processor's one line on what applying the event did,
	// for the consumer's line about the handled record; "" when nothing
	// was applied.
	Summary string
}

type metaKey struct{}

// WithMeta returns a context carrying m.
func WithMeta(ctx context.Context, m *Meta) context.Context {
	return context.WithValue(ctx, metaKey{}, m)
}

// MetaFrom returns the message's Meta, or a throwaway one when ctx has none,
// so callers can always write to it.
func MetaFrom(ctx context.Context) *Meta {
	if m, ok := ctx.Value(metaKey{}).(*Meta); ok {
		return m
	}
	return &Meta{}
}

// HasMeta reports whether ctx carries a Meta.
func HasMeta(ctx context.Context) bool {
	_, ok := ctx.Value(metaKey{}).(*Meta)
	return ok
}

// LogAttrs returns the attributes every log record about the message carries.
func (m *Meta) LogAttrs() []slog.Attr {
	return []slog.Attr{
		slog.String("correlation_id", m.CorrelationID),
		slog.String("event_id", m.EventID),
		slog.String("order_id", m.OrderID),
	}
}

// Outcome is what handling one record came to, in the words of the
// consumer's "record handled" log line (its outcome attribute) and of the
// outcome label of orders_events_total: one list for both.
type Outcome string

// The outcomes of handling a record.
const (
	// Applied means the event's effect was committed.
	Applied Outcome = "applied"
	// Duplicate means the event had been applied before; nothing was done.
	Duplicate Outcome = "duplicate"
	// DeadLettered means the record failed and was acknowledged on the DLQ
	// topic.
	DeadLettered Outcome = "dead_lettered"
	// Retried means the call failed and the record stays unfinished: it is
	// tried again (or, if its partition was released meanwhile, delivered
	// again).
	Retried Outcome = "retried"
)

// Outcomes lists every Outcome, for metrics that create their series ahead.
func Outcomes() []Outcome { return []Outcome{Applied, Duplicate, DeadLettered, Retried} }
