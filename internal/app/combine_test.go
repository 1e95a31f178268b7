package app

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/orderd/orderd/internal/delivery"
	"github.com/orderd/orderd/internal/kafka"
)

// TestCombinerMergesQueuedBatches: batches handed in while another is being
// applied are applied together in one call, each in its own order, and each
// worker gets back exactly its own share of the result — also when the call
// stops part way, in the second worker's batch.
func TestCombinerMergesQueuedBatches(t *testing.T) {
	outage := errors.New("database down")
	for _, tc := range []struct {
		name   string
		stopAt int // merged call finishes this many; -1: all
	}{{"all finished", -1}, {"stopped in the second batch", 5}, {"stopped in the first batch", 2}, {"stopped at the second batch's first record", 4}, {"nothing finished", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				mu       sync.Mutex
				calls    [][]string
				release  = make(chan struct{})
				inFirst  = make(chan struct{})
				firstRun sync.Once
			)
			apply := func(_ context.Context, values [][]byte, metas []*delivery.Meta) (int, []error, error) {
				var names []string
				for _, v := range values {
					names = append(names, string(v))
				}
				mu.Lock()
				calls = append(calls, names)
				first := len(calls) == 1
				mu.Unlock()
				if first {
					firstRun.Do(func() { close(inFirst) })
					<-release
					return len(values), make([]error, len(values)), nil
				}
				errs := make([]error, len(values))
				for i, v := range values {
					if string(v) == "b2" {
						errs[i] = fmt.Errorf("refused %s", v)
					}
				}
				if tc.stopAt >= 0 {
					return tc.stopAt, errs[:tc.stopAt], outage
				}
				return len(values), errs, nil
			}
			c := newCombiner[[]byte](apply, 100, 0)
			batch := func(prefix string, n int) [][]byte {
				var out [][]byte
				for i := range n {
					out = append(out, fmt.Appendf(nil, "%s%d", prefix, i))
				}
				return out
			}
			type result struct {
				n    int
				errs []error
				stop error
			}
			do := func(values [][]byte) result {
				r := result{}
				r.n, r.errs, r.stop = c.do(context.Background(), values, make([]*delivery.Meta, len(values)))
				return r
			}
			first := make(chan result)
			go func() { first <- do(batch("x", 2)) }()
			<-inFirst
			var wg sync.WaitGroup
			results := make([]result, 2)
			for i, p := range []string{"a", "b"} {
				wg.Go(func() { results[i] = do(batch(p, 4)) })
			}
			// Both queue behind the first call before it ends.
			for {
				c.mu.Lock()
				queued := len(c.pending)
				c.mu.Unlock()
				if queued == 2 {
					break
				}
				runtime.Gosched()
			}
			close(release)
			if r := <-first; r.n != 2 || r.stop != nil {
				t.Errorf("first batch: %+v", r)
			}
			wg.Wait()
			if len(calls) != 2 || len(calls[1]) != 8 {
				t.Fatalf("calls %v, want the two queued batches merged into one second call", calls)
			}
			a, b := slices.Index(calls[1], "a0"), slices.Index(calls[1], "b0")
			if !slices.Equal(calls[1][a:a+4], []string{"a0", "a1", "a2", "a3"}) || !slices.Equal(calls[1][b:b+4], []string{"b0", "b1", "b2", "b3"}) {
				t.Fatalf("merged call %v does not keep each batch in order", calls[1])
			}
			byPrefix := map[byte]result{'a': results[0], 'b': results[1]}
			firstPrefix := calls[1][0][0]
			for p, r := range byPrefix {
				want := 4
				if tc.stopAt >= 0 {
					done := tc.stopAt
					if p != firstPrefix {
						done -= 4
					}
					want = min(max(done, 0), 4)
				}
				if r.n != want || len(r.errs) < r.n {
					t.Errorf("batch %c: n %d (errs %d), want %d", p, r.n, len(r.errs), want)
				}
				if (r.n < 4) != (r.stop != nil) || (r.stop != nil && !errors.Is(r.stop, outage)) {
					t.Errorf("batch %c: n %d, stop %v", p, r.n, r.stop)
				}
				// The batch after the one the call stopped in was not reached.
				notReached := tc.stopAt >= 0 && p != firstPrefix && tc.stopAt < 4
				if errors.Is(r.stop, kafka.ErrNotReached) != notReached {
					t.Errorf("batch %c: stop %v, want not reached: %v", p, r.stop, notReached)
				}
				for i := range r.n {
					if wantErr := p == 'b' && i == 2; (r.errs[i] != nil) != wantErr {
						t.Errorf("batch %c record %d: error %v", p, i, r.errs[i])
					}
				}
			}
		})
	}
}

// TestCombinerSpillStartsFurtherCalls: with spill, a batch that brings the
// queue to spill values starts a call of its own while another runs (a
// drain's full batches run side by side, as on PostgreSQL without merging),
// while smaller batches queue behind the merging call and are merged into
// one.
func TestCombinerSpillStartsFurtherCalls(t *testing.T) {
	g, c, wg := spillCombiner(t, "xb")
	handIn(t, wg, c, "x", 2)
	g.waitStart(t, "the first batch")
	handIn(t, wg, c, "big", 4) // four queued: starts a second call beside the first
	if first := g.waitStart(t, "a batch of spill values did not start a call of its own while another ran"); first != "big0" {
		t.Fatalf("call of %s started, want the four-value batch's", first)
	}
	handIn(t, wg, c, "a", 1)
	handIn(t, wg, c, "c", 2) // three queued: wait for the merging call to end
	waitQueued(t, c, 3)
	g.openAll()
	wg.Wait()
	if len(g.calls) != 3 || len(g.calls[2]) != 3 {
		t.Fatalf("calls %v, want the two small batches merged into one third call", g.calls)
	}
}

// spillCombiner returns a combiner with spill 4 over a gatedApply holding
// the calls of gates' prefixes, and the group its test's workers join; when
// the test ends every gate opens and the workers are waited for.
func spillCombiner(t *testing.T, gates string) (*gatedApply, *combiner[[]byte], *sync.WaitGroup) {
	g := newGatedApply(gates)
	wg := &sync.WaitGroup{}
	t.Cleanup(func() {
		g.openAll()
		wg.Wait()
	})
	return g, newCombiner[[]byte](g.apply, 100, 4), wg
}

// gatedApply is an apply that records each call's values and holds a call
// whose first value starts with a prefix in gates until that gate closes.
type gatedApply struct {
	mu      sync.Mutex
	calls   [][]string
	gates   map[byte]chan struct{}
	started chan string // each call's first value, as it starts
}

func newGatedApply(prefixes string) *gatedApply {
	g := &gatedApply{gates: map[byte]chan struct{}{}, started: make(chan string, 16)}
	for _, p := range []byte(prefixes) {
		g.gates[p] = make(chan struct{})
	}
	return g
}

func (g *gatedApply) apply(_ context.Context, values [][]byte, _ []*delivery.Meta) (int, []error, error) {
	var names []string
	for _, v := range values {
		names = append(names, string(v))
	}
	g.mu.Lock()
	g.calls = append(g.calls, names)
	g.mu.Unlock()
	g.started <- names[0]
	if gate, ok := g.gates[names[0][0]]; ok {
		<-gate
	}
	return len(values), make([]error, len(values)), nil
}

// waitStart waits for the next call to start and returns its first value.
func (g *gatedApply) waitStart(t *testing.T, what string) string {
	t.Helper()
	select {
	case first := <-g.started:
		return first
	case <-time.After(10 * time.Second):
		t.Fatalf("no call started: %s", what)
		return ""
	}
}

// openAll lets every held call end.
func (g *gatedApply) openAll() {
	for _, gate := range g.gates {
		select {
		case <-gate:
		default:
			close(gate)
		}
	}
}

// handIn hands c a batch of n values named prefix0, prefix1, … from a
// worker of its own, which checks that the batch is finished.
func handIn(t *testing.T, wg *sync.WaitGroup, c *combiner[[]byte], prefix string, n int) {
	values := make([][]byte, n)
	for i := range values {
		values[i] = fmt.Appendf(nil, "%s%d", prefix, i)
	}
	wg.Go(func() {
		if got, _, stop := c.do(context.Background(), values, make([]*delivery.Meta, n)); got != n || stop != nil {
			t.Errorf("batch %s: %d of %d finished, stop %v", prefix, got, n, stop)
		}
	})
}

// waitQueued waits until c holds n values queued.
func waitQueued[T any](t *testing.T, c *combiner[T], n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		queued := c.queued
		c.mu.Unlock()
		if queued == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d values queued, want %d", queued, n)
		}
		runtime.Gosched()
	}
}

// callsWith counts the calls that applied value v.
func (g *gatedApply) callsWith(v string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, c := range g.calls {
		if slices.Contains(c, v) {
			n++
		}
	}
	return n
}

// TestCombinerSmallBatchesWaitForOneCallOnly: with spill, a small batch
// waits for the merging call to end, not for full batches' calls, which
// may keep running one after another on a busy store.
func TestCombinerSmallBatchesWaitForOneCallOnly(t *testing.T) {
	g, c, wg := spillCombiner(t, "mf")
	handIn(t, wg, c, "m", 1) // the merging call
	g.waitStart(t, "the first batch")
	handIn(t, wg, c, "f", 4) // a full batch: a call of its own, held
	g.waitStart(t, "the full batch")
	handIn(t, wg, c, "s", 1) // small: waits for the merging call only
	waitQueued(t, c, 1)
	close(g.gates['m'])
	if first := g.waitStart(t, "the small batch waited for the full batch's call too"); first != "s0" {
		t.Fatalf("call of %s started, want the small batch's", first)
	}
}

// TestCombinerAppliesATakenBatchOnce: a worker whose batch another worker
// took into its call waits for that call, even when it could start one of
// its own meanwhile.
func TestCombinerAppliesATakenBatchOnce(t *testing.T) {
	g, c, wg := spillCombiner(t, "mb")
	handIn(t, wg, c, "m", 1) // the merging call, held
	g.waitStart(t, "the first batch")
	handIn(t, wg, c, "a", 1) // queued below spill: waits
	waitQueued(t, c, 1)
	handIn(t, wg, c, "b", 3) // brings the queue to spill: a call of b's and a's batches, held
	if first := g.waitStart(t, "the batch reaching spill"); first != "b0" {
		t.Fatalf("call of %s started, want b's", first)
	}
	close(g.gates['m']) // the merging call ends: a's worker wakes, its batch in b's call
	select {
	case first := <-g.started:
		t.Fatalf("a call of %s started while a's batch was in b's call", first)
	case <-time.After(100 * time.Millisecond):
	}
	g.openAll()
	wg.Wait()
	if n := g.callsWith("a0"); n != 1 {
		t.Fatalf("a's batch applied in %d calls (%v), want 1", n, g.calls)
	}
}

// TestCombinerSurvivesAPanickingApply: when apply panics in a merged call,
// the panic reaches the worker that started the call, every other batch in
// it comes back with none finished and errPanicked instead of waiting for
// ever, and later batches are applied as before, on SQLite's one call at a
// time (spill 0) and with PostgreSQL's spill.
func TestCombinerSurvivesAPanickingApply(t *testing.T) {
	for _, spill := range []int{0, 4} {
		t.Run(fmt.Sprintf("spill %d", spill), func(t *testing.T) {
			g := newGatedApply("x")
			apply := func(ctx context.Context, values [][]byte, metas []*delivery.Meta) (int, []error, error) {
				for _, v := range values {
					if string(v) == "p0" {
						panic("a bug in a processor")
					}
				}
				return g.apply(ctx, values, metas)
			}
			c := newCombiner[[]byte](apply, 100, spill)
			type result struct {
				prefix   string
				n        int
				stop     error
				panicked any
			}
			results := make(chan result, 3)
			hand := func(prefix string) {
				go func() {
					r := result{prefix: prefix}
					defer func() {
						r.panicked = recover()
						results <- r
					}()
					values := [][]byte{fmt.Appendf(nil, "%s0", prefix)}
					r.n, _, r.stop = c.do(context.Background(), values, make([]*delivery.Meta, 1))
				}()
			}
			hand("x") // the merging call, held
			g.waitStart(t, "the first batch")
			hand("p") // queued below spill behind x's call, then merged with b's
			hand("b")
			waitQueued(t, c, 2)
			g.openAll()
			got := map[string]result{}
			for range 3 {
				select {
				case r := <-results:
					got[r.prefix] = r
				case <-time.After(10 * time.Second):
					t.Fatalf("a worker never returned after the panic; returned: %v", got)
				}
			}
			if r := got["x"]; r.n != 1 || r.stop != nil || r.panicked != nil {
				t.Errorf("x: %+v, want its one value finished", r)
			}
			// p's and b's batches were one call; whichever worker started it
			// got the panic, the other errPanicked.
			starter, other := got["p"], got["b"]
			if starter.panicked == nil {
				starter, other = other, starter
			}
			if starter.panicked != "a bug in a processor" {
				t.Errorf("the call's starter: %+v, want the panic", starter)
			}
			if other.panicked != nil || other.n != 0 || !errors.Is(other.stop, errPanicked) {
				t.Errorf("the other batch in the call: %+v, want none finished and errPanicked", other)
			}
			hand("a") // the combiner still works
			select {
			case r := <-results:
				if r.n != 1 || r.stop != nil || r.panicked != nil {
					t.Errorf("a batch after the panic: %+v, want it finished", r)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("a batch after the panic was never applied: the combiner is stuck")
			}
		})
	}
}
