package order

import "context"

// Notification is a message to a customer about their order.
type Notification struct {
	CustomerID string
	OrderID    string
	Message    string
}

// Notifier tells customers about their orders. It is called inside the use
// case's transaction, so a notification may be sent again if that transaction
// is retried: customers hear at least once, like events are handled.
type Notifier interface {
	Notify(ctx context.Context, n Notification) error
}
