package events_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"

	"github.com/orderd/orderd/internal/delivery"
	"github.com/orderd/orderd/internal/events"
	"github.com/orderd/orderd/internal/notifylog"
	"github.com/orderd/orderd/internal/sqlstore"
	"github.com/orderd/orderd/internal/sqlstore/sqlstoretest"
)

// sampleProducts is how many product ids events.SampleOrderCreated draws from
// (prod-000 … prod-099).
const sampleProducts = 100

// BenchmarkDecode measures the envelope checks and decoding of one typical
// OrderCreated record (the data object stays raw here).
func BenchmarkDecode(b *testing.B) {
	_, value := events.SampleOrderCreated("bench-decode", 0, rand.New(rand.NewPCG(1, 2)))
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := events.Decode(value); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandle measures Handler.Handle end to end for new OrderCreated
// events, each with its own event and order id: decode, inbox insert, order
// insert, ProcessOrder (stock reads, reservations, update) and the commit.
func BenchmarkHandle(b *testing.B) {
	for _, dialect := range sqlstoretest.Dialects(b) {
		b.Run(dialect, func(b *testing.B) {
			h := benchHandler(b, dialect)
			ctx := b.Context()
			src := newSampleSource(b, "bench-handle-"+dialect)
			b.ReportAllocs()
			for b.Loop() {
				if res, err := h.Handle(ctx, src.next()); err != nil || res != delivery.Applied {
					b.Fatalf("handle: %v, %v; want applied", res, err)
				}
			}
		})
	}
}

// BenchmarkHandleBatch measures Handler.HandleBatch, the consumer's group
// commit: 256 new OrderCreated events decoded, then applied in one
// transaction, each under its own savepoint. One op is one batch; ns/event is
// the figure to compare with BenchmarkHandle.
func BenchmarkHandleBatch(b *testing.B) {
	const size = 256
	for _, dialect := range sqlstoretest.Dialects(b) {
		b.Run(dialect, func(b *testing.B) {
			h := benchHandler(b, dialect)
			ctx := b.Context()
			src := newSampleSource(b, "bench-batch-"+dialect)
			values := make([][]byte, size)
			metas := make([]*delivery.Meta, size)
			b.ReportAllocs()
			for b.Loop() {
				for i := range values {
					values[i], metas[i] = src.next(), &delivery.Meta{}
				}
				n, errs, stop := h.HandleBatch(ctx, values, metas)
				if n != size || stop != nil {
					b.Fatalf("batch: %d of %d finished, stopped by %v", n, size, stop)
				}
				for _, err := range errs {
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/event")
		})
	}
}

// BenchmarkHandleDuplicate measures Handler.Handle for a redelivered event:
// decode, then a transaction whose inbox insert finds the id and reads its
// entry back.
func BenchmarkHandleDuplicate(b *testing.B) {
	for _, dialect := range sqlstoretest.Dialects(b) {
		b.Run(dialect, func(b *testing.B) {
			h := benchHandler(b, dialect)
			ctx := b.Context()
			_, value := events.SampleOrderCreated("bench-duplicate", 0, rand.New(rand.NewPCG(1, 2)))
			if res, err := h.Handle(ctx, value); err != nil || res != delivery.Applied {
				b.Fatalf("first delivery: %v, %v; want applied", res, err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if res, err := h.Handle(ctx, value); err != nil || res != delivery.Duplicate {
					b.Fatalf("redelivery: %v, %v; want duplicate", res, err)
				}
			}
		})
	}
}

// benchHandler returns a Handler wired as the service wires it, on a fresh
// store of dialect whose sample products all have ample stock. Logging is
// discarded, so only the level checks are paid.
func benchHandler(b *testing.B, dialect string) *events.Handler {
	b.Helper()
	st := sqlstoretest.Open(b, dialect)
	stockSampleProducts(b, st)
	return newHandler(st, notifylog.New(slog.New(slog.DiscardHandler)))
}

func stockSampleProducts(b *testing.B, st *sqlstore.Store) {
	b.Helper()
	ctx := context.Background()
	for i := range sampleProducts {
		if _, err := st.SetStock(ctx, fmt.Sprintf("prod-%03d", i), 1<<40); err != nil {
			b.Fatalf("set stock: %v", err)
		}
	}
}

// sampleSource hands out OrderCreated records with unique ids, generated in
// chunks with the benchmark timer stopped.
type sampleSource struct {
	b      *testing.B
	run    string
	rng    *rand.Rand
	values [][]byte
	pos    int
	made   int
}

// sampleChunk is how many records a sampleSource generates at a time.
const sampleChunk = 1024

func newSampleSource(b *testing.B, run string) *sampleSource {
	s := &sampleSource{b: b, run: run, rng: rand.New(rand.NewPCG(1, 2)), values: make([][]byte, sampleChunk)}
	s.fill()
	return s
}

func (s *sampleSource) fill() {
	for i := range s.values {
		_, s.values[i] = events.SampleOrderCreated(s.run, s.made, s.rng)
		s.made++
	}
	s.pos = 0
}

func (s *sampleSource) next() []byte {
	if s.pos == len(s.values) {
		s.b.StopTimer()
		s.fill()
		s.b.StartTimer()
	}
	v := s.values[s.pos]
	s.pos++
	return v
}
