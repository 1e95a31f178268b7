// Package order is the domain: orders, their items, money and the status
// machine, plus the transaction port the use cases run against. It does no I/O
// and imports nothing of ours but the error classes.
package order

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Status is where an order is in its life.
type Status string

// The statuses an order moves through.
const (
	StatusNew        Status = "new"
	StatusPending    Status = "pending"
	StatusProcessing Status = "processing"
	StatusShipped    Status = "shipped"
	StatusDelivered  Status = "delivered"
	StatusCancelled  Status = "cancelled"
)

// Statuses lists every status, in life order.
var Statuses = []Status{StatusNew, StatusPending, StatusProcessing, StatusShipped, StatusDelivered, StatusCancelled}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	for _, k := range Statuses {
		if s == k {
			return true
		}
	}
	return false
}

// transitions is the one place that says which status may follow which.
var transitions = map[Status][]Status{
	StatusNew:        {StatusProcessing, StatusCancelled},
	StatusPending:    {StatusProcessing, StatusCancelled},
	StatusProcessing: {StatusShipped, StatusCancelled},
	StatusShipped:    {StatusDelivered},
}

// CanMove reports whether an order in status from may move to status to.
func CanMove(from, to Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// ShippingMethod is how an order travels.
type ShippingMethod string

// The shipping methods.
const (
	ShippingStandard ShippingMethod = "standard"
	ShippingExpress  ShippingMethod = "express"
)

// Item is one line of an order. Amounts are in the order's minor units.
type Item struct {
	ProductID  string
	Quantity   int64
	UnitPrice  int64
	TotalPrice int64
	// Reserved is true once stock was reserved for this line, so that a
	// cancellation releases exactly what processing took.
	Reserved bool
}

// Order is a customer's order. Amounts are minor units of Currency; the
// pointers are nil until the step that computes them has run.
type Order struct {
	ID                 string
	CustomerID         string
	CustomerName       string
	Status             Status
	InitialStatus      Status // new or pending, as created; "" when not known (stored before it was kept)
	Currency           Currency
	TotalAmount        int64
	Items              []Item
	ShippingRegion     string
	ShippingMethod     ShippingMethod
	ShippingCost       *int64
	Discount           *int64
	FinalTotal         *int64
	RefundAmount       *int64
	CancellationReason string
	TrackingNumber     string
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

// Money returns minor units of the order's currency as Money.
func (o *Order) Money(minor int64) Money { return Money{Minor: minor, Currency: o.Currency} }

// Clone returns a deep copy of o: its items and amounts are its own.
func (o *Order) Clone() *Order {
	c := *o
	c.Items = slices.Clone(o.Items)
	c.CopyAmounts(o)
	return &c
}

// CopyAmounts sets o's computed amounts (shipping cost, discount, final
// total, refund) to copies of from's: o shares no pointer with from.
func (o *Order) CopyAmounts(from *Order) {
	o.ShippingCost, o.Discount, o.FinalTotal, o.RefundAmount =
		copyAmount(from.ShippingCost), copyAmount(from.Discount), copyAmount(from.FinalTotal), copyAmount(from.RefundAmount)
}

func copyAmount(p *int64) *int64 {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// ByProduct returns the indexes of o's items ordered by product id (lines of
// one product in their own order). Stock rows are always locked in this
// order, so that transactions sharing products cannot deadlock.
func (o *Order) ByProduct() []int {
	idx := make([]int, len(o.Items))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return strings.Compare(o.Items[a].ProductID, o.Items[b].ProductID) })
	return idx
}

// MoveTo changes the order's status if the status machine allows it, and
// returns a *RuleError of kind ReasonInvalidTransition (or ReasonNotCancellable)
// otherwise.
func (o *Order) MoveTo(to Status, now time.Time) error {
	if !CanMove(o.Status, to) {
		reason := ReasonInvalidTransition
		if to == StatusCancelled {
			reason = ReasonNotCancellable
		}
		return &RuleError{Reason: reason, Detail: "order " + o.ID + " is " + string(o.Status) + ", cannot become " + string(to)}
	}
	o.Status = to
	o.UpdatedAt = now
	return nil
}

// SameContent reports whether two orders were created from the same data:
// the fields an OrderCreated event carries, ignoring everything computed later.
func SameContent(a, b *Order) bool {
	if a.ID != b.ID || a.CustomerID != b.CustomerID || a.CustomerName != b.CustomerName ||
		a.Currency != b.Currency || a.TotalAmount != b.TotalAmount ||
		(a.InitialStatus != b.InitialStatus && a.InitialStatus != "" && b.InitialStatus != "") ||
		a.ShippingRegion != b.ShippingRegion || a.ShippingMethod != b.ShippingMethod ||
		!a.CreatedAt.Equal(b.CreatedAt) || len(a.Items) != len(b.Items) {
		return false
	}
	for i := range a.Items {
		x, y := a.Items[i], b.Items[i]
		if x.ProductID != y.ProductID || x.Quantity != y.Quantity || x.UnitPrice != y.UnitPrice || x.TotalPrice != y.TotalPrice {
			return false
		}
	}
	return true
}

// MaxTextBytes bounds every text of an order or event — ids, names, a
// cancellation reason, a tracking number — in bytes of UTF-8 (§2: strings
// ≤ 1 KiB), not in characters: 1,024 "€" are 3,072 bytes.
const MaxTextBytes = 1024

// CheckText refuses (invalid_data) a text over MaxTextBytes, naming it as
// field.
func CheckText(field, s string) error {
	if len(s) > MaxTextBytes {
		return Reject(ReasonInvalid, fmt.Sprintf("%s is %d bytes, at most %d allowed", field, len(s), MaxTextBytes))
	}
	return nil
}

// MaxUnits bounds a product's units, available and reserved together. Only
// setting the stock adds units (reserving and releasing move them), so with
// the bound kept there, no sum of units can overflow.
const MaxUnits int64 = 1_000_000_000_000_000

// Stock is the inventory of one product.
type Stock struct {
	ProductID string
	Available int64
	Reserved  int64
}

// Tx is one database transaction as the use cases see it. Every use case runs
// inside exactly one; the store commits it only if the use case returns nil.
type Tx interface {
	// Order loads an order and locks it until the transaction ends; a missing
	// order is ErrNotFound.
	Order(ctx context.Context, id string) (*Order, error)
	// CreateOrder inserts a new order with its items.
	CreateOrder(ctx context.Context, o *Order) error
	// UpdateOrder saves an order's status and computed fields.
	UpdateOrder(ctx context.Context, o *Order) error
	// Stocks loads the stock records of several products at once, locking
	// them until the transaction ends; products without one are absent from
	// the map.
	Stocks(ctx context.Context, productIDs []string) (map[string]Stock, error)
	// Reserve moves qty from available to reserved; it reports false, and
	// changes nothing, when fewer than qty are available.
	Reserve(ctx context.Context, productID string, qty int64) (bool, error)
	// Release moves qty from reserved back to available.
	Release(ctx context.Context, productID string, qty int64) error
	// MarkProcessed records an event in the inbox as applied; it reports
	// false, and changes nothing, when the inbox holds the event already.
	MarkProcessed(ctx context.Context, k EventKey, eventName string) (bool, error)
	// MarkRefused records an event in the inbox as refused, with the
	// refusal's reason code and message; it reports false, and changes
	// nothing, when the inbox holds the event already.
	MarkRefused(ctx context.Context, k EventKey, eventName string, r Refusal) (bool, error)
	// Inbox returns what the inbox holds for an event; ok is false when it
	// holds nothing.
	Inbox(ctx context.Context, k EventKey) (e InboxEntry, ok bool, err error)
	// Savepoint runs fn inside a savepoint: when fn fails, what it did is
	// undone and the transaction goes on as before it; fn's error is
	// returned. Several events share one transaction this way.
	Savepoint(ctx context.Context, fn func() error) error
	// Preload reads, in a few queries, the rows a batch of events is about
	// to touch, so that the calls above find them at hand: it is a hint,
	// never needed for correctness. On PostgreSQL it also takes the rows'
	// locks up front in one fixed order (orders, then stock, each by id),
	// so that batches sharing products queue instead of deadlocking.
	Preload(ctx context.Context, k Keys) error
}

// Keys names the rows a batch of events will read or write.
type Keys struct {
	Events     []EventKey
	OrderIDs   []string
	ProductIDs []string
}

// EventKey names an event in the idempotency inbox: its id, under the order
// the event is about. The id is the idempotency key among the events of one
// order. A redelivery carries the same order, so it is always found; an id
// that a producer reuses for another order's event does not make that event
// a duplicate. OrderID is "" for an event that names no order. An entry the
// inbox holds under "" (such an event's, or one recorded before the inbox
// was keyed by order) is found for the same id under any order.
type EventKey struct {
	OrderID string
	ID      string
}

// InboxEntry is what the idempotency inbox holds for one event id: the event
// was either applied, or refused under the rules. A refusal is kept so that a
// redelivery of the event is refused again, the same way, even when later
// events have changed the state it was judged on.
type InboxEntry struct {
	Name    string // the event's name, as recorded with its id
	Refused bool
	Refusal Refusal // when Refused
}

// Refusal is why an event was refused: a reason code (RuleError reasons,
// invalid_data…) and a message for people.
type Refusal struct {
	Reason string
	Detail string
}

// Transactor runs a function inside one transaction, committing when it
// returns nil and rolling back otherwise. It may roll back a run of the
// function that returned nil and run it again in a new transaction (the
// PostgreSQL store does when stock it read without a lock was taken
// meanwhile): only the last run's effects are committed, so the function
// must report what its last run found, not add to what an earlier run did.
type Transactor interface {
	InTx(ctx context.Context, fn func(tx Tx) error) error
}
