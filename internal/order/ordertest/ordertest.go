// Package ordertest provides in-memory adapters for unit tests of the use
// cases: a Store implementing order.Tx and order.Transactor, and a Notifier
// that records what it was asked to send. Adapters are tested against the
// real databases elsewhere; these exist so the rules can be tested alone.
package ordertest

import (
	"context"
	"maps"
	"sync"

	"github.com/orderd/orderd/internal/order"
)

// Store is an in-memory order.Transactor. InTx works on a copy of the state
// and keeps it only when the function succeeds, so rollbacks are real.
type Store struct {
	mu     sync.Mutex
	orders map[string]*order.Order
	stock  map[string]order.Stock
	events map[order.EventKey]order.InboxEntry
}

// NewStore returns an empty Store.
func NewStore() *Store {
	return &Store{orders: map[string]*order.Order{}, stock: map[string]order.Stock{}, events: map[order.EventKey]order.InboxEntry{}}
}

// InTx runs fn against a snapshot and commits it when fn returns nil.
func (s *Store) InTx(ctx context.Context, fn func(order.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx := &tx{orders: map[string]*order.Order{}, stock: map[string]order.Stock{}, events: map[order.EventKey]order.InboxEntry{}}
	for k, v := range s.orders {
		tx.orders[k] = clone(v)
	}
	for k, v := range s.stock {
		tx.stock[k] = v
	}
	for k, v := range s.events {
		tx.events[k] = v
	}
	if err := fn(tx); err != nil {
		return err
	}
	s.orders, s.stock, s.events = tx.orders, tx.stock, tx.events
	return nil
}

// Put stores an order directly (test setup).
func (s *Store) Put(o *order.Order) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.orders[o.ID] = clone(o)
}

// Get returns a copy of an order, or nil.
func (s *Store) Get(id string) *order.Order {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.orders[id]; ok {
		return clone(o)
	}
	return nil
}

// SetStock sets a product's available stock (test setup).
func (s *Store) SetStock(productID string, available int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stock[productID]
	st.ProductID, st.Available = productID, available
	s.stock[productID] = st
}

// Stock returns a product's stock record.
func (s *Store) Stock(productID string) (order.Stock, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.stock[productID]
	return st, ok
}

func clone(o *order.Order) *order.Order { return o.Clone() }

type tx struct {
	orders map[string]*order.Order
	stock  map[string]order.Stock
	events map[order.EventKey]order.InboxEntry
}

func (t *tx) Order(_ context.Context, id string) (*order.Order, error) {
	o, ok := t.orders[id]
	if !ok {
		return nil, order.NotFound("order " + id)
	}
	return clone(o), nil
}

func (t *tx) CreateOrder(_ context.Context, o *order.Order) error {
	if _, ok := t.orders[o.ID]; ok {
		return order.Reject(order.ReasonConflict, "order "+o.ID+" exists")
	}
	t.orders[o.ID] = clone(o)
	return nil
}

func (t *tx) UpdateOrder(_ context.Context, o *order.Order) error {
	if _, ok := t.orders[o.ID]; !ok {
		return order.NotFound("order " + o.ID)
	}
	t.orders[o.ID] = clone(o)
	return nil
}

func (t *tx) Stocks(_ context.Context, productIDs []string) (map[string]order.Stock, error) {
	out := make(map[string]order.Stock, len(productIDs))
	for _, id := range productIDs {
		if s, ok := t.stock[id]; ok {
			out[id] = s
		}
	}
	return out, nil
}

func (t *tx) Reserve(_ context.Context, productID string, qty int64) (bool, error) {
	s, ok := t.stock[productID]
	if !ok || s.Available < qty {
		return false, nil
	}
	s.Available -= qty
	s.Reserved += qty
	t.stock[productID] = s
	return true, nil
}

func (t *tx) Release(_ context.Context, productID string, qty int64) error {
	s := t.stock[productID]
	s.Available += qty
	s.Reserved -= qty
	t.stock[productID] = s
	return nil
}

func (t *tx) MarkProcessed(_ context.Context, k order.EventKey, eventName string) (bool, error) {
	if _, ok := t.entry(k); ok {
		return false, nil
	}
	t.events[k] = order.InboxEntry{Name: eventName}
	return true, nil
}

func (t *tx) MarkRefused(_ context.Context, k order.EventKey, eventName string, r order.Refusal) (bool, error) {
	if _, ok := t.entry(k); ok {
		return false, nil
	}
	t.events[k] = order.InboxEntry{Name: eventName, Refused: true, Refusal: r}
	return true, nil
}

// entry is what the inbox holds for k: its own entry, or the one under no
// order (see order.EventKey).
func (t *tx) entry(k order.EventKey) (order.InboxEntry, bool) {
	if e, ok := t.events[k]; ok {
		return e, true
	}
	e, ok := t.events[order.EventKey{ID: k.ID}]
	return e, ok
}

// Preload has nothing to do: everything is in memory.
func (t *tx) Preload(context.Context, order.Keys) error { return nil }

func (t *tx) Savepoint(_ context.Context, fn func() error) error {
	orders := make(map[string]*order.Order, len(t.orders))
	for k, v := range t.orders {
		orders[k] = clone(v)
	}
	stock, events := maps.Clone(t.stock), maps.Clone(t.events)
	if err := fn(); err != nil {
		t.orders, t.stock, t.events = orders, stock, events
		return err
	}
	return nil
}

func (t *tx) Inbox(_ context.Context, k order.EventKey) (order.InboxEntry, bool, error) {
	e, ok := t.entry(k)
	return e, ok, nil
}

// Notifier records notifications; Err, when set, is returned instead.
type Notifier struct {
	mu   sync.Mutex
	Sent []order.Notification
	Err  error
}

// Notify records n.
func (n *Notifier) Notify(_ context.Context, msg order.Notification) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.Err != nil {
		return n.Err
	}
	n.Sent = append(n.Sent, msg)
	return nil
}
