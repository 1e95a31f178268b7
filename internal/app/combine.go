package app

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/orderd/orderd/internal/delivery"
	"github.com/orderd/orderd/internal/kafka"
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
// several transactions in parallel) a batch that brings what is queued to
// spill values starts a call of its own at once, taking queued batches only
// until it has spill values; batches that queue below that wait for the
// one merging call to end and go together in the next. So a drain's full
// batches each start their own call, side by side as if there were no
// combiner, while a steady trickle of small ones is merged — and small ones
// never wait behind more than one call, however many full ones run.
//
// Each partition's records stay in their order within the merged batch; what
// the workers get back is what apply returned for their own records.
type combiner[T any] struct {
	apply batchFunc[T]
	max   int // most values in one merged call
	spill int // queued values that start a call at once; 0: one call at a time

	mu      sync.Mutex
	cond    *sync.Cond
	merging bool // the call that takes what queued below spill is running
	queued  int  // values in pending
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
	// even once this worker could start a call: never applied twice.
	for !me.done && (me.taken || !c.mayStart()) {
		c.cond.Wait()
	}
	if me.done {
		c.mu.Unlock()
		return me.n, me.errs, me.stop
	}
	// Apply what queued, me first: up to max values, or with spill reached,
	// no more batches once the call has spill values.
	spilled := c.spill > 0 && c.queued >= c.spill
	batch, size := []*combined[T]{me}, len(me.values)
	rest := c.pending[:0]
	for _, b := range c.pending {
		switch {
		case b == me:
		case size+len(b.values) <= c.max && (!spilled || size < c.spill):
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
	if !spilled {
		c.merging = true
	}
	c.mu.Unlock()

	defer c.end(batch, spilled)
	c.run(ctx, batch, size)
	return me.n, me.errs, me.stop
}

// end ends a call of batch and lets the waiting workers go on. When apply
// panicked (a bug in a processor, the store or a driver), the batches it
// took have no result: each is done with none of its values finished and
// errPanicked, so that its worker tries its records again instead of
// waiting for ever, and the panic goes on up to the worker that started
// the call, whose consumer recovers it. Without this, the batches another
// worker took would never be done and, merging left set, no call would
// start again: every partition would stall.
func (c *combiner[T]) end(batch []*combined[T], spilled bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range batch {
		if !b.done {
			b.n, b.errs, b.stop = 0, nil, errPanicked
			b.done = true
		}
	}
	if !spilled {
		c.merging = false
	}
	c.cond.Broadcast()
}

// errPanicked is the result of the batches in a call whose apply panicked.
var errPanicked = errors.New("the transaction this batch was merged into panicked (see the batch handler's panic log); its records are tried again")

// mayStart reports whether a worker with a queued batch may start a call:
// when the merging call is not running, or, with spill, when spill values
// are queued. c.mu is held.
func (c *combiner[T]) mayStart() bool {
	return !c.merging || (c.spill > 0 && c.queued >= c.spill)
}

// run makes one apply call of batch and hands each its share of the result:
// apply finishes a prefix of the merged values, so a batch wholly inside it
// is finished, the one it stopped in is finished up to there and gets the
// stop error, and those after it were not reached (kafka.ErrNotReached,
// wrapping the stop error): their workers try their next record alone,
// as its first attempt, without reporting another batch's failure as theirs.
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
		switch {
		case b.n == len(b.values):
		case at > n && stop != nil:
			// apply stopped before it got here: the record it stopped at
			// is another batch's, whose worker reports it.
			b.stop = fmt.Errorf("%w (%w)", kafka.ErrNotReached, stop)
		default:
			b.stop = stop
		}
		at += len(b.values)
		b.done = true
	}
}
