package events

import (
	"context"
	"sort"

	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/order/cancel"
	"github.com/orderd/orderd/internal/order/fulfil"
	"github.com/orderd/orderd/internal/order/process"
)

// Processor applies one event's effect inside tx and returns a one-line
// summary for the log. A rule that refuses the event returns an
// *order.RuleError; the transaction is then rolled back and the record goes to
// the dead-letter topic.
type Processor func(ctx context.Context, tx order.Tx, ev Envelope) (summary string, err error)

// A Decoder checks and decodes an event's data ahead of its transaction:
// outside the database's write lock, so that on SQLite, whose one writer
// takes transactions in turn, it runs in parallel with another partition's
// transaction. Its result reaches the processor as Envelope.Decoded; its
// error, permanent, sends the event to the dead-letter topic. A result with a
// ProductIDs() []string method names the products whose stock the event
// touches, so that a batch reads them all in one query (order.Keys); one with
// an OrderID() string method saves a second pass over the data for its order
// id.
type Decoder func(ev Envelope) (any, error)

// Registry maps event names to processors and, optionally, decoders.
type Registry struct {
	processors map[string]Processor
	decoders   map[string]Decoder
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	return &Registry{processors: map[string]Processor{}, decoders: map[string]Decoder{}}
}

// Register adds the processor for an event name, replacing any before it.
func (r *Registry) Register(name string, p Processor) { r.processors[name] = p }

// RegisterDecoder adds a decoder for an event name (see Decoder).
func (r *Registry) RegisterDecoder(name string, d Decoder) { r.decoders[name] = d }

// Lookup returns the processor for name.
func (r *Registry) Lookup(name string) (Processor, bool) {
	p, ok := r.processors[name]
	return p, ok
}

// Names lists the registered event names, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.processors))
	for n := range r.processors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// UseCases are the use cases the processors drive.
type UseCases struct {
	Process *process.UseCase
	Cancel  *cancel.UseCase
	Fulfil  *fulfil.UseCase
}

// DefaultRegistry registers one processor per event the service understands.
// Adding an event type is one file with its processor and two lines here:
// the processor and its data's decoder (README: Adding an event processor).
func DefaultRegistry(uc UseCases) *Registry {
	r := NewRegistry()
	r.Register("OrderCreated", OrderCreated(uc.Process))
	r.RegisterDecoder("OrderCreated", DecodeOrderCreated(uc.Process))
	r.Register("OrderCancelled", OrderCancelled(uc.Cancel))
	r.RegisterDecoder("OrderCancelled", DecodeData[cancelledData])
	r.Register("OrderShipped", OrderShipped(uc.Fulfil))
	r.RegisterDecoder("OrderShipped", DecodeData[shippedData])
	r.Register("OrderDelivered", OrderDelivered(uc.Fulfil))
	r.RegisterDecoder("OrderDelivered", DecodeData[deliveredData])
	return r
}
