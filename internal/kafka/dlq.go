package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderd/orderd/internal/delivery"
)

// Headers the DLQ adds to a dead-lettered record, after the original's.
const (
	HeaderCorrelationID     = "correlation_id"
	HeaderErrorReason       = "error_reason"
	HeaderErrorKind         = "error_kind"
	HeaderOriginalTopic     = "original_topic"
	HeaderOriginalPartition = "original_partition"
	HeaderOriginalOffset    = "original_offset"
	HeaderOriginalTimestamp = "original_timestamp"
	HeaderEventID           = "event_id"
	HeaderEventName         = "event_name"
	HeaderAttempts          = "attempts"
	HeaderFailedAt          = "failed_at"
)

// ErrorKindExhausted is the error_kind of a record dead-lettered because an
// unclassified error persisted for MaxAttempts attempts.
const ErrorKindExhausted = "exhausted"

// MaxErrorReasonBytes bounds the error_reason header.
const MaxErrorReasonBytes = 500

// MaxRecordBytes is the largest record the consumer fetches and the DLQ
// writes. It is far above the 1 MiB an event may have, so that an oversized
// record can still be dead-lettered whole instead of blocking its partition.
// The DLQ topic's max.message.bytes must allow it too.
const MaxRecordBytes = 16 << 20

// dlqAttemptTimeout bounds one produce attempt to the DLQ topic, so that a
// broker outage shows up in the logs as failed attempts instead of silence.
const dlqAttemptTimeout = 15 * time.Second

// DLQProducerOpts returns the producer options a DLQ client needs on top of
// Config.ClientOpts: acks from all in-sync replicas, batches big enough for
// MaxRecordBytes, and a bounded time per attempt — also for a request a
// broker took and never answered (see NewProducer), which otherwise held
// the attempt, its error line and a revoked partition's release for ever.
// A record whose attempt failed so may have been stored: the next attempt
// can leave a second copy on the DLQ, never none.
func DLQProducerOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchMaxBytes(MaxRecordBytes + 1<<20), // room for the added headers
		kgo.RecordDeliveryTimeout(dlqAttemptTimeout),
		kgo.AllowIdempotentProduceCancellation(),
		kgo.ProducerLinger(0),
	}
}

// DLQ writes records that cannot be processed to the dead-letter topic:
// key, value and headers unchanged, plus headers saying what went wrong.
type DLQ struct {
	client  *kgo.Client
	topic   string
	logger  *slog.Logger
	initial time.Duration
	max     time.Duration
	now     func() time.Time
	failed  func(rec *kgo.Record, err error) // each failed attempt's; the consumer's
}

// NewDLQ returns a DLQ producing with client (which should carry
// DLQProducerOpts) to cfg.DLQTopic, retrying failed writes with cfg's
// backoff settings. The DLQ does not own client and never closes it.
func NewDLQ(client *kgo.Client, cfg Config, logger *slog.Logger) (*DLQ, error) {
	if client == nil {
		return nil, errors.New("kafka dlq: nil client")
	}
	if cfg.DLQTopic == "" {
		return nil, errors.New("KAFKA_DLQ_TOPIC: empty")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.consumerDefaults()
	return &DLQ{
		client:  client,
		topic:   cfg.DLQTopic,
		logger:  logger,
		initial: cfg.RetryInitial,
		max:     cfg.RetryMax,
		now:     time.Now,
	}, nil
}

// Topic returns the dead-letter topic.
func (d *DLQ) Topic() string { return d.topic }

// Publish writes the dead-letter copy of rec and returns once the broker has
// acknowledged it. A failed write is logged at error level and retried with
// backoff until it succeeds or ctx is done; it is never skipped. errorKind is
// the error_kind header (a fault reason code, or ErrorKindExhausted); meta may
// be nil.
func (d *DLQ) Publish(ctx context.Context, rec *kgo.Record, meta *delivery.Meta, err error, errorKind string, attempts int) error {
	return d.publish(ctx, nil, rec, meta, err, errorKind, attempts, nil)
}

// publish is Publish that also gives up between attempts when stop closes,
// which the consumer uses when a partition is revoked: the source offset is
// then left uncommitted and the record comes back.
func (d *DLQ) publish(ctx context.Context, stop <-chan struct{}, rec *kgo.Record, meta *delivery.Meta, cause error, errorKind string, attempts int, blocked *atomic.Bool) error {
	if meta == nil {
		meta = &delivery.Meta{}
	}
	dl := d.deadLetter(rec, meta, cause, errorKind, attempts)
	bo := newBackoff(d.initial, d.max)
	for try := 1; ; try++ {
		// A fresh record per try: franz-go stamps a record when it is
		// first produced and measures its delivery timeout from that.
		res := d.client.ProduceSync(ctx, &kgo.Record{Topic: dl.Topic, Key: dl.Key, Value: dl.Value, Headers: dl.Headers})
		err := res.FirstErr()
		if err == nil {
			r := res[0].Record
			d.logger.LogAttrs(ctx, slog.LevelDebug, "dead-letter record written",
				append(meta.LogAttrs(),
					slog.String("dlq_topic", d.topic),
					slog.Int("dlq_partition", int(r.Partition)),
					slog.Int64("dlq_offset", r.Offset))...)
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("kafka dlq: write to %s abandoned: %w", d.topic, ctx.Err())
		}
		if blocked != nil {
			blocked.Store(true)
		}
		if d.failed != nil {
			d.failed(rec, err)
		}
		wait := bo.NextBackOff()
		d.logger.LogAttrs(ctx, slog.LevelError, "dead-letter write failed; retrying",
			append(meta.LogAttrs(),
				slog.String("dlq_topic", d.topic),
				slog.String("topic", rec.Topic),
				slog.Int("partition", int(rec.Partition)),
				slog.Int64("offset", rec.Offset),
				slog.Int("try", try),
				slog.Duration("retry_in", wait),
				slog.String("error", err.Error()))...)
		if !pause(ctx, stop, wait) {
			if ctx.Err() != nil {
				return fmt.Errorf("kafka dlq: write to %s abandoned: %w", d.topic, ctx.Err())
			}
			return fmt.Errorf("kafka dlq: write to %s abandoned: %w", d.topic, errStopped)
		}
	}
}

// errStopped reports that work was given up because the partition was
// revoked or the consumer is stopping.
var errStopped = errors.New("partition released")

// deadLetter builds the DLQ copy of rec. Key and value are the original
// slices (a nil key stays nil); the original headers come first, in order,
// but for those this copy sets itself: a record sent back from the DLQ to
// be tried again that fails again carries this failure's error_reason,
// attempts and so on, not the last one's first, where a reader taking the
// first header of a name would find them; and an empty correlation_id is
// replaced by the one the service used.
func (d *DLQ) deadLetter(rec *kgo.Record, meta *delivery.Meta, cause error, errorKind string, attempts int) *kgo.Record {
	headers := make([]kgo.RecordHeader, 0, len(rec.Headers)+11)
	for _, h := range rec.Headers {
		if !dlqHeaders[h.Key] && (h.Key != HeaderCorrelationID || len(h.Value) > 0 || meta.CorrelationID == "") {
			headers = append(headers, h)
		}
	}
	add := func(k, v string) { headers = append(headers, kgo.RecordHeader{Key: k, Value: []byte(v)}) }

	if !hasHeader(rec.Headers, HeaderCorrelationID) && meta.CorrelationID != "" {
		add(HeaderCorrelationID, meta.CorrelationID)
	}
	reason := "unknown error"
	if cause != nil {
		reason = cause.Error()
	}
	// Error texts may quote the bad input; the header is for people, so it
	// is always valid UTF-8.
	add(HeaderErrorReason, CutUTF8(strings.ToValidUTF8(reason, "\uFFFD"), MaxErrorReasonBytes))
	add(HeaderErrorKind, errorKind)
	add(HeaderOriginalTopic, rec.Topic)
	add(HeaderOriginalPartition, strconv.FormatInt(int64(rec.Partition), 10))
	add(HeaderOriginalOffset, strconv.FormatInt(rec.Offset, 10))
	add(HeaderOriginalTimestamp, rec.Timestamp.UTC().Format(time.RFC3339Nano))
	if meta.EventID != "" {
		add(HeaderEventID, meta.EventID)
	}
	if meta.EventName != "" {
		add(HeaderEventName, meta.EventName)
	}
	add(HeaderAttempts, strconv.Itoa(attempts))
	add(HeaderFailedAt, d.now().UTC().Format(time.RFC3339Nano))

	return &kgo.Record{
		Topic:   d.topic,
		Key:     rec.Key,
		Value:   rec.Value,
		Headers: headers,
	}
}

// dlqHeaders are the headers deadLetter sets, besides correlation_id.
var dlqHeaders = map[string]bool{
	HeaderErrorReason: true, HeaderErrorKind: true, HeaderOriginalTopic: true, HeaderOriginalPartition: true,
	HeaderOriginalOffset: true, HeaderOriginalTimestamp: true, HeaderEventID: true, HeaderEventName: true,
	HeaderAttempts: true, HeaderFailedAt: true,
}

// hasHeader reports whether hs has a header key with a non-empty value.
func hasHeader(hs []kgo.RecordHeader, key string) bool {
	for _, h := range hs {
		if h.Key == key && len(h.Value) > 0 {
			return true
		}
	}
	return false
}

// CutUTF8 returns s cut to at most max bytes without splitting a UTF-8
// sequence. Invalid bytes in s count as one-byte runes and are kept as they
// are.
func CutUTF8(s string, max int) string {
	if max <= 0 {
		return ""
	}
	if len(s) <= max {
		return s
	}
	cut := max
	// Step back over continuation bytes to the start of the rune that
	// straddles the limit, then check that it really is one whole rune.
	for cut > 0 && cut > max-utf8.UTFMax && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if r, size := utf8.DecodeRuneInString(s[cut:]); (r != utf8.RuneError || size > 1) && cut+size > max {
		// A valid rune starts at cut and does not fit: cut before it.
		return s[:cut]
	}
	// The byte at max starts a rune, or is a stray byte of no rune:
	// cutting at max splits nothing.
	return s[:max]
}
