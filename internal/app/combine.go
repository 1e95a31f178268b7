package app

import (
	"context"
	"sync"

	"github.com/orderd/orderd/internal/delivery"
)

// batchFunc applies decoded records in one transaction: events.Handler's
// Apply.
type batchFunc[T any] func(ctx context.Context, values []T, metas []*delivery.Meta) (n int, errs []error, stop error)

// combiner merges the batches that partition workers hand in at the same
// time into one call of apply — one transaction for several partitions
// (group commit across partitions). One call runs at a time — SQLite's one
// writer takes transactions in turn anyway — and batches handed in meanwhile
// queue; the first worker to find the writer free applies all that queued,
// with one commit. Under load this makes
// transactions larger and fewer; at a steady, lower rate it takes the
// per-transaction cost (the commit's fsync) off each partition's latency.
//
// Each partition's records stay in their order within the merged batch; what
// the workers get back is what apply returned for their own records.
type combiner[T any] struct {
	apply batchFunc[T]
	max   int // most values in one merged call

	mu      sync.Mutex
	cond    *sync.Cond
	busy    bool // a worker is applying
	pending []*combined[T]
}

// combined is one worker's batch in a merged call, and its result.
type combined[T any] struct {
	values []T
	metas  []*delivery.Meta
	done   bool
	n      int
	errs   []error
	stop   error
}

func newCombiner[T any](apply batchFunc[T], max int) *combiner[T] {
	c := &combiner[T]{apply: apply, max: max}
	c.cond = sync.NewCond(&c.mu)
	return c
}

// do applies values, merged with what other workers hand in meanwhile, and
// returns apply's result for values alone.
func (c *combiner[T]) do(ctx context.Context, values []T, metas []*delivery.Meta) (int, []error, error) {
	me := &combined[T]{values: values, metas: metas}
	c.mu.Lock()
	c.pending = append(c.pending, me)
	for !me.done && c.busy {
		c.cond.Wait()
	}
	if me.done {
		c.mu.Unlock()
		return me.n, me.errs, me.stop
	}
	// The writer is free: apply what queued, me first.
	batch, size := []*combined[T]{me}, len(me.values)
	rest := c.pending[:0]
	for _, b := range c.pending {
		switch {
		case b == me:
		case size+len(b.values) <= c.max:
			batch, size = append(batch, b), size+len(b.values)
		default:
			rest = append(rest, b)
		}
	}
	clear(c.pending[len(rest):])
	c.pending = rest
	c.busy = true
	c.mu.Unlock()

	c.run(ctx, batch, size)

	c.mu.Lock()
	c.busy = false
	c.cond.Broadcast()
	c.mu.Unlock()
	return me.n, me.errs, me.stop
}

// run makes one apply call of batch and hands each its share of the result:
// apply finishes a prefix of the merged values, so a batch wholly inside it
// is finished, the one it stopped in is finished up to there, and those
// after it are not started; all but the finished get the stop error.
func (c *combiner[T]) run(ctx context.Context, batch []*combined[T], size int) {
	if len(batch) == 1 {
		b := batch[0]
		b.n, b.errs, b.stop = c.apply(ctx, b.values, b.metas)
		b.done = true
		return
	}
	values := make([]T, 0, size)
	metas := make([]*delivery.Meta, 0, size)
	for _, b := range batch {
		values = append(values, b.values...)
		metas = append(metas, b.metas...)
	}
	n, errs, stop := c.apply(ctx, values, metas)
	c.mu.Lock()
	defer c.mu.Unlock()
	at := 0
	for _, b := range batch {
		b.n = min(max(n-at, 0), len(b.values))
		if b.n > 0 {
			b.errs = errs[at : at+b.n]
		}
		if b.n < len(b.values) {
			b.stop = stop
		}
		at += len(b.values)
		b.done = true
	}
}
