package kafka_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderd/orderd/internal/kafka"
)

// TestEmbeddedAcceptsOversizedRecords: a record over the 1 MiB an event may
// have must reach the consumer (which dead-letters it as record_too_large)
// instead of being refused at produce time, and its DLQ copy, headers added,
// must fit too. Random bytes, uncompressed, so that compression cannot make
// it small.
func TestEmbeddedAcceptsOversizedRecords(t *testing.T) {
	e := embStart(t, kafka.EmbeddedConfig{Addr: "127.0.0.1:0", Partitions: 1, Topics: []string{"in", "dlq"}})
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Addr()), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(kafka.EmbeddedMaxMessageBytes), kgo.FetchMaxPartitionBytes(kafka.EmbeddedMaxMessageBytes),
		kgo.ConsumeTopics("dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	cases := []struct {
		topic string
		size  int
	}{
		{"in", 1<<20 + 4096},              // just over the event limit
		{"dlq", kafka.MaxRecordBytes + 1}, // the largest record the DLQ writes, with headers
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, c := range cases {
		value := make([]byte, c.size)
		_, _ = rand.Read(value)
		r := &kgo.Record{Topic: c.topic, Value: value, Headers: []kgo.RecordHeader{{Key: "error_reason", Value: bytes.Repeat([]byte("x"), 500)}}}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Errorf("%d-byte record to %s refused: %v", c.size, c.topic, err)
		}
	}
	var got int
	for got == 0 && ctx.Err() == nil {
		got += len(cl.PollFetches(ctx).Records())
	}
	if got != 1 {
		t.Errorf("read %d records back from dlq, want 1", got)
	}
}
