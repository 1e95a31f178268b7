package app

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/orderd/orderd/internal/delivery"
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
	}{{"all finished", -1}, {"stopped in the second batch", 5}, {"nothing finished", 0}} {
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
			c := newCombiner[[]byte](apply, 100)
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
				for i := range r.n {
					if wantErr := p == 'b' && i == 2; (r.errs[i] != nil) != wantErr {
						t.Errorf("batch %c record %d: error %v", p, i, r.errs[i])
					}
				}
			}
		})
	}
}
