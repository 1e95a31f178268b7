package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderd/orderd/internal/events"
)

// preload produces n generated OrderCreated events to topic as fast as the
// broker takes them, keyed by order id (so spread over the partitions by
// key), and returns how long it took.
func preload(ctx context.Context, brokerAddr, topic, run string, n int) (time.Duration, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokerAddr),
		kgo.DefaultProduceTopic(topic),
		kgo.MaxBufferedRecords(100000),
	)
	if err != nil {
		return 0, fmt.Errorf("preload producer: %w", err)
	}
	defer cl.Close()
	var mu sync.Mutex
	var firstErr error
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Now()
	for i := range n {
		key, value := events.SampleOrderCreated(run, i, rng)
		cl.Produce(ctx, &kgo.Record{Key: key, Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				firstErr = keepFirst(firstErr, err)
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, fmt.Errorf("preload flush: %w", err)
	}
	elapsed := time.Since(start)
	if firstErr != nil {
		return 0, fmt.Errorf("preload produce: %w", firstErr)
	}
	return elapsed, nil
}

// keepFirst returns first, or err when first is nil: the first error wins.
func keepFirst(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// producePaced produces generated OrderCreated events to topic at rate per
// second for d, without lingering, and returns each record's produce time
// (taken just before Produce) with its partition and offset.
func producePaced(ctx context.Context, brokerAddr, topic, run string, rate int, d time.Duration) ([]produced, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokerAddr),
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(0),
	)
	if err != nil {
		return nil, fmt.Errorf("latency producer: %w", err)
	}
	defer cl.Close()
	total := int(float64(rate) * d.Seconds())
	var mu sync.Mutex
	recs := make([]produced, 0, total)
	var firstErr error
	rng := rand.New(rand.NewPCG(3, 4))
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for sent := 0; sent < total; {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("latency producer: %w", ctx.Err())
		case <-tick.C:
		}
		// Everything due by now, so that a late tick does not lower the rate.
		due := min(int(time.Since(start).Seconds()*float64(rate)), total)
		for ; sent < due; sent++ {
			key, value := events.SampleOrderCreated(run, sent, rng)
			at := time.Now()
			cl.Produce(ctx, &kgo.Record{Key: key, Value: value}, func(r *kgo.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					firstErr = keepFirst(firstErr, err)
					return
				}
				recs = append(recs, produced{partition: r.Partition, offset: r.Offset, at: at})
			})
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return nil, fmt.Errorf("latency producer flush: %w", err)
	}
	if firstErr != nil {
		return nil, fmt.Errorf("latency producer: %w", firstErr)
	}
	return recs, nil
}
