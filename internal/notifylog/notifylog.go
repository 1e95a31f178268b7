// Package notifylog is the notifier adapter that writes customer notifications
// to the service log, as the seed does. A real channel (e-mail, SMS, push)
// would be another adapter implementing order.Notifier.
package notifylog

import (
	"context"
	"log/slog"

	"github.com/orderd/orderd/internal/delivery"
	"github.com/orderd/orderd/internal/order"
)

// Notifier logs notifications at debug level: the per-event info line already
// says what happened, and §9 keeps the step-by-step detail at debug.
type Notifier struct {
	logger *slog.Logger
}

// New returns a Notifier writing to logger.
func New(logger *slog.Logger) *Notifier { return &Notifier{logger: logger} }

// Notify logs n; it never fails.
func (n *Notifier) Notify(ctx context.Context, msg order.Notification) error {
	if !n.logger.Enabled(ctx, slog.LevelDebug) {
		return nil
	}
	attrs := []slog.Attr{slog.String("customer_id", msg.CustomerID), slog.String("order_id", msg.OrderID)}
	if delivery.HasMeta(ctx) {
		m := delivery.MetaFrom(ctx)
		attrs = append(attrs, slog.String("correlation_id", m.CorrelationID), slog.String("event_id", m.EventID))
	}
	n.logger.LogAttrs(ctx, slog.LevelDebug, "notify customer: "+msg.Message, attrs...)
	return nil
}
