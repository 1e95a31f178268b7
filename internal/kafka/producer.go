package kafka

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderd/orderd/internal/fault"
)

// Producer defaults; options passed to NewProducer override them.
const (
	// producerMaxBufferedRecords bounds the records held in memory while
	// they wait for the broker, so publishing a huge stream blocks
	// instead of growing without limit.
	producerMaxBufferedRecords = 10_000
	// producerMaxBufferedBytes bounds the same buffer by size.
	producerMaxBufferedBytes = 64 << 20
	// producerBatchMaxBytes is the largest batch the producer sends.
	producerBatchMaxBytes = 2 << 20
	// producerDeliveryTimeout fails a record that could not be delivered
	// in time, so a publish never hangs on a broker that is down.
	producerDeliveryTimeout = 30 * time.Second
	// producerCloseTimeout bounds how long Close waits for buffered
	// records before failing them.
	producerCloseTimeout = 10 * time.Second
)

// Producer publishes records with acks from all in-sync replicas and
// idempotent writes, partitioning by key (murmur2, as the Java client does,
// so one key always lands on one partition).
type Producer struct {
	client *kgo.Client
	logger *slog.Logger
	once   sync.Once
}

// NewProducer builds a producer from cfg's brokers and security settings.
// Extra options are applied last and override the defaults. No connection
// is made until the first publish or Ping.
func NewProducer(cfg Config, logger *slog.Logger, opts ...kgo.Opt) (*Producer, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	base, err := cfg.ClientOpts()
	if err != nil {
		return nil, err
	}
	all := append(base,
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.MaxBufferedRecords(producerMaxBufferedRecords),
		kgo.MaxBufferedBytes(producerMaxBufferedBytes),
		// Room for an event of up to 1 MiB (§2) with its headers: franz-go's
		// default batch limit, 1,000,012 bytes, refused the largest with
		// MESSAGE_TOO_LARGE. The broker's limit is MaxRecordBytes.
		kgo.ProducerBatchMaxBytes(producerBatchMaxBytes),
		kgo.RecordDeliveryTimeout(producerDeliveryTimeout),
		// Without it, an idempotent producer waits for ever for the answer
		// to a request a broker took and never answered (it died): the
		// delivery timeout and ctx do not end the wait, so POST /events
		// hung and orderd produce ignored its signals. With it, such a
		// record fails in time, and may still have been stored: one
		// published again can land twice, which the consumer's inbox of
		// event ids makes harmless.
		kgo.AllowIdempotentProduceCancellation(),
		kgo.WithLogger(ClientLogger(logger)),
	)
	all = append(all, opts...)
	client, err := kgo.NewClient(all...)
	if err != nil {
		return nil, fmt.Errorf("kafka producer: %w", err)
	}
	return &Producer{client: client, logger: logger}, nil
}

// Publish writes one record and waits for the broker's acknowledgement,
// returning where the record landed. Headers are written sorted by name.
func (p *Producer) Publish(ctx context.Context, topic string, key, value []byte, headers map[string]string) (partition int32, offset int64, err error) {
	rec := &kgo.Record{Topic: topic, Key: key, Value: value, Headers: recordHeaders(headers)}
	if err := p.client.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return 0, 0, classifyProduceErr(fmt.Errorf("kafka publish to %s: %w", topic, err))
	}
	return rec.Partition, rec.Offset, nil
}

// PublishBatch writes all recs and waits until each one is acknowledged or
// failed, returning the first error. Memory stays bounded: producing blocks
// while the client's buffer is full.
func (p *Producer) PublishBatch(ctx context.Context, recs []*kgo.Record) error {
	_, err := p.PublishAll(ctx, slices.Values(recs))
	return err
}

// PublishAll is PublishBatch for a stream of records that need not be in
// memory at once, such as lines read from a file. It stops taking records
// after the first failure, waits for those already handed over, and returns
// how many were acknowledged and the first error.
func (p *Producer) PublishAll(ctx context.Context, recs iter.Seq[*kgo.Record]) (int, error) {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		acked    int
	)
	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return firstErr != nil
	}
	promise := func(r *kgo.Record, err error) {
		mu.Lock()
		if err == nil {
			acked++
		} else if firstErr == nil {
			firstErr = fmt.Errorf("kafka publish to %s: %w", r.Topic, err)
		}
		mu.Unlock()
		wg.Done()
	}
	for r := range recs {
		if r == nil {
			continue
		}
		if failed() || ctx.Err() != nil {
			break
		}
		wg.Add(1)
		p.client.Produce(ctx, r, promise)
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = fmt.Errorf("kafka publish: %w", ctx.Err())
	}
	return acked, classifyProduceErr(firstErr)
}

// Ping reports whether a broker answers a metadata request.
func (p *Producer) Ping(ctx context.Context) error {
	if err := p.client.Ping(ctx); err != nil {
		return fault.AsTransient(fmt.Errorf("kafka ping: %w", err))
	}
	return nil
}

// Client returns the underlying franz-go client, for callers such as the
// DLQ publisher that need options this type does not expose.
func (p *Producer) Client() *kgo.Client { return p.client }

// Close waits up to 10s for buffered records to be delivered, fails the
// rest and closes the connections. Calling it again does nothing.
func (p *Producer) Close() {
	p.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), producerCloseTimeout)
		defer cancel()
		if err := p.client.Flush(ctx); err != nil {
			p.logger.Warn("kafka producer: closing with undelivered records", "err", err)
		}
		p.client.Close()
	})
}

func recordHeaders(h map[string]string) []kgo.RecordHeader {
	if len(h) == 0 {
		return nil
	}
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]kgo.RecordHeader, 0, len(keys))
	for _, k := range keys {
		out = append(out, kgo.RecordHeader{Key: k, Value: []byte(h[k])})
	}
	return out
}

// classifyProduceErr marks produce failures. Only a record the broker can
// never accept (too large, invalid) is permanent; everything else — broker
// unreachable, timeouts, authentication, unknown topic, cancellation — is an
// outage of the broker or its configuration, not a fault of the record, so
// it is transient and the caller keeps trying.
func classifyProduceErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return fault.AsPermanent("message_too_large", err)
	case errors.Is(err, kerr.InvalidRecord), errors.Is(err, kerr.CorruptMessage):
		return fault.AsPermanent("invalid_record", err)
	default:
		return fault.AsTransient(err)
	}
}
