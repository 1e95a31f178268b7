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
// (group commit across partitions). Batches handed in while a call runs
// queue, and the next worker allowed to start a call applies them together,
// with one commit. Under load this makes transactions larger and
// fewer; at a steady, lower rate it takes the per-transaction cost (the
// commit's fsync, the round trips, the server's work per transaction) off
// each partition's latency.
//
// With spill 0 one call runs at a time: SQLite's one writer takes
// transactions in turn anyway. With spill > 0 (PostgreSQL, which works on
// several transactions in parallel) a further call starts as soon as spill
// records are queued, so that one call never becomes the bottleneck: a
// drain's full batches each start their own at once, as if there were no
// combiner, while a steady trickle of small ones is merged.
//
// Each partition's records stay in their order within the merged batch; what
// the workers get back is what apply returned for their own records.
type combiner[T any] struct {
	apply batchFunc[T]
	max   int // most values in one merged call
	spill int // queued values that start a further call; 0: one call at a time

	mu      sync.Mutex
	cond    *sync.Cond
	running int // calls being applied
	queued  int // values in pending
	pending []*combined[T]
}

// combined is one worker's batch in a merged call, and its result.
type combined[T any] struct {
	values []T
	metas  []*delivery.Meta
	taken  bool // in a call, by whichever worker started it
	done   bool
	n      int
	errs   []error
	stop   error
}

func newCombiner[T any](apply batchFunc[T], max, spill int) *combiner[T] {
	c := &combiner[T]{apply: apply, max: max, spill: spill}
	c.cond = sync.NewCond(&c.mu)
	return c
}

// do applies values, merged with what other workers hand in meanwhile, and
// returns apply's result for values alone.
func (c *combiner[T]) do(ctx context.Context, values []T, metas []*delivery.Meta) (int, []error, error) {
	me := &combined[T]{values: values, metas: metas}
	c.mu.Lock()
	c.pending = append(c.pending, me)
	c.queued += len(values)
	// A batch another worker took is waited for until its call is done,
	// even should a further call be allowed to start meanwhile (it is not:
	// what stays queued is always fewer than spill values, since the worker
	// whose batch brings it to spill starts a call), so that no batch is
	// ever applied twice.
	for !me.done && (me.taken || !c.mayStart()) {
		c.cond.Wait()
	}
	if me.done {
		c.mu.Unlock()
		return me.n, me.errs, me.stop
	}
	// A call may start: apply what queued, me first, up to max values and,
	// with spill, no more batches once it has spill values.
	batch, size := []*combined[T]{me}, len(me.values)
	rest := c.pending[:0]
	for _, b := range c.pending {
		switch {
		case b == me:
		case size+len(b.values) <= c.max && (c.spill == 0 || size < c.spill):
			batch, size = append(batch, b), size+len(b.values)
		default:
			rest = append(rest, b)
		}
	}
	for _, b := range batch {
		b.taken = true
	}
	clear(c.pending[len(rest):])
	c.pending = rest
	c.queued -= size
	c.running++
	c.mu.Unlock()

	c.run(ctx, batch, size)

	c.mu.Lock()
	c.running--
	c.cond.Broadcast()
	c.mu.Unlock()
	return me.n, me.errs, me.stop
}

// mayStart reports whether a worker with a queued batch may start a call:
// when none runs, or, with spill, when spill values are queued. c.mu is held.
func (c *combiner[T]) mayStart() bool {
	return c.running == 0 || (c.spill > 0 && c.queued >= c.spill)
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
