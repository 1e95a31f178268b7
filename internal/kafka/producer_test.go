package kafka_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderd/orderd/internal/fault"
	"github.com/orderd/orderd/internal/kafka"
)

// prodNew builds a producer for brokers, closed when the test ends.
func prodNew(t *testing.T, brokers []string, opts ...kgo.Opt) *kafka.Producer {
	t.Helper()
	p, err := kafka.NewProducer(kafka.Config{Brokers: brokers}, nil, opts...)
	if err != nil {
		t.Fatalf("NewProducer: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// javaMurmur2 is Kafka's org.apache.kafka.common.utils.Utils.murmur2,
// written out independently of franz-go so the test checks that keys land
// where a Java producer would put them.
func javaMurmur2(data []byte) int32 {
	const (
		seed = uint32(0x9747b28c)
		m    = uint32(0x5bd1e995)
		r    = 24
	)
	length := len(data)
	h := seed ^ uint32(length)
	for i := 0; i+4 <= length; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[length&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

func TestJavaMurmur2Vectors(t *testing.T) {
	// From Kafka's UtilsTest.testMurmur2.
	vectors := map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	}
	for in, want := range vectors {
		if got := javaMurmur2([]byte(in)); got != want {
			t.Errorf("murmur2(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestProducerPublish(t *testing.T) {
	const partitions = 6
	e := embStart(t, kafka.EmbeddedConfig{Addr: "127.0.0.1:0", Partitions: partitions, Topics: []string{"orders"}})
	p := prodNew(t, []string{e.Addr()})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	if err := p.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	t.Run("key partitions like the Java client", func(t *testing.T) {
		for i := range 20 {
			key := fmt.Appendf(nil, "order-%d", i)
			want := (javaMurmur2(key) & 0x7fffffff) % partitions
			for range 2 {
				part, _, err := p.Publish(ctx, "orders", key, []byte("v"), nil)
				if err != nil {
					t.Fatalf("Publish: %v", err)
				}
				if part != want {
					t.Errorf("key %s went to partition %d, want %d", key, part, want)
				}
			}
		}
	})

	t.Run("record round trip", func(t *testing.T) {
		headers := map[string]string{"correlation_id": "c-1", "b": "2", "a": "1"}
		part, off, err := p.Publish(ctx, "orders", []byte("k-rt"), []byte(`{"x":1}`), headers)
		if err != nil {
			t.Fatalf("Publish: %v", err)
		}
		cl := embClient(t, e.Addr(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
			"orders": {part: kgo.NewOffset().At(off)},
		}))
		got := embConsume(t, cl, 1)[0]
		if got.Offset != off || string(got.Key) != "k-rt" || string(got.Value) != `{"x":1}` {
			t.Errorf("read %s/%d@%d key %q value %q", got.Topic, got.Partition, got.Offset, got.Key, got.Value)
		}
		wantHeaders := []kgo.RecordHeader{
			{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}, {Key: "correlation_id", Value: []byte("c-1")},
		}
		if diff := cmp.Diff(wantHeaders, got.Headers); diff != "" {
			t.Errorf("headers (-want +got):\n%s", diff)
		}
	})

	// An event may have up to 1 MiB (§2): franz-go's default batch limit,
	// 1,000,012 bytes, refused the largest.
	t.Run("an event of 1 MiB", func(t *testing.T) {
		value := bytes.Repeat([]byte("x"), 1<<20)
		if _, _, err := p.Publish(ctx, "orders", []byte("big"), value, map[string]string{"correlation_id": "c-big"}); err != nil {
			t.Fatalf("Publish of 1 MiB: %v", err)
		}
	})

	t.Run("offsets increase", func(t *testing.T) {
		_, first, err := p.Publish(ctx, "orders", []byte("same"), []byte("1"), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, second, err := p.Publish(ctx, "orders", []byte("same"), []byte("2"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if second != first+1 {
			t.Errorf("offsets %d then %d, want consecutive", first, second)
		}
	})
}

func TestProducerPublishBatch(t *testing.T) {
	const (
		partitions = 3
		n          = 60_000
	)
	e := embStart(t, kafka.EmbeddedConfig{Addr: "127.0.0.1:0", Partitions: partitions, Topics: []string{"bulk"}})
	// A buffer far smaller than the batch: publishing must block and
	// resume rather than fail or hold everything at once.
	p := prodNew(t, []string{e.Addr()}, kgo.MaxBufferedRecords(500))
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "bulk", Key: fmt.Appendf(nil, "k%d", i%997), Value: fmt.Appendf(nil, "v%d", i)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := p.PublishBatch(ctx, recs); err != nil {
		t.Fatalf("PublishBatch: %v", err)
	}
	var total int64
	for _, pi := range e.Cluster().PartitionInfos("bulk") {
		total += pi.HighWatermark
	}
	if total != n {
		t.Errorf("broker holds %d records, want %d", total, n)
	}
	for _, r := range recs[:100] {
		if want := (javaMurmur2(r.Key) & 0x7fffffff) % partitions; r.Partition != want {
			t.Errorf("key %s in partition %d, want %d", r.Key, r.Partition, want)
		}
	}
}

func TestProducerPublishAllStopsAtFirstError(t *testing.T) {
	e := embStart(t, kafka.EmbeddedConfig{Addr: "127.0.0.1:0", Partitions: 1, Topics: []string{"ok"}})
	p := prodNew(t, []string{e.Addr()}, kgo.UnknownTopicRetries(1))
	taken := 0
	seq := iter.Seq[*kgo.Record](func(yield func(*kgo.Record) bool) {
		for i := 0; i < 1_000_000; i++ {
			topic := "ok"
			if i == 10 {
				topic = "no-such-topic"
			}
			if i > 10 {
				// After the bad record, records come slower than the
				// failure takes to be known (a metadata round trip or two):
				// otherwise a fast machine publishes all of them first.
				time.Sleep(time.Millisecond)
			}
			taken++
			if !yield(&kgo.Record{Topic: topic, Value: []byte("x")}) {
				return
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	acked, err := p.PublishAll(ctx, seq)
	if !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("PublishAll = %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
	if taken == 1_000_000 {
		t.Error("PublishAll kept taking records after the first failure")
	}
	if hw := e.Cluster().PartitionInfos("ok")[0].HighWatermark; int64(acked) != hw {
		t.Errorf("PublishAll reported %d acked, broker holds %d", acked, hw)
	}
}

func TestProducerErrorClasses(t *testing.T) {
	e := embStart(t, kafka.EmbeddedConfig{Addr: "127.0.0.1:0", Partitions: 1, Topics: []string{"t"}})
	live := prodNew(t, []string{e.Addr()})
	closed := prodNew(t, []string{e.Addr()})
	closed.Close()
	// Nothing listens on port 1; every attempt is refused at once.
	down := prodNew(t, []string{"127.0.0.1:1"}, kgo.RequestTimeoutOverhead(time.Second), kgo.RetryTimeout(time.Second))
	downNoDeadline := prodNew(t, []string{"127.0.0.1:1"}, kgo.RecordDeliveryTimeout(time.Second))

	tests := []struct {
		name   string
		ctx    time.Duration // 0: no deadline
		call   func(context.Context) error
		want   fault.Kind
		wantIs error
	}{
		{"publish to unreachable broker", 2 * time.Second, func(ctx context.Context) error {
			_, _, err := down.Publish(ctx, "t", nil, []byte("x"), nil)
			return err
		}, fault.Transient, nil},
		{"batch to unreachable broker", 2 * time.Second, func(ctx context.Context) error {
			return down.PublishBatch(ctx, []*kgo.Record{{Topic: "t", Value: []byte("x")}})
		}, fault.Transient, nil},
		{"ping unreachable broker", 2 * time.Second, down.Ping, fault.Transient, nil},
		{"delivery timeout without deadline", 0, func(ctx context.Context) error {
			_, _, err := downNoDeadline.Publish(ctx, "t", nil, []byte("x"), nil)
			return err
		}, fault.Transient, kgo.ErrRecordTimeout},
		{"publish after close", 2 * time.Second, func(ctx context.Context) error {
			_, _, err := closed.Publish(ctx, "t", nil, []byte("x"), nil)
			return err
		}, fault.Transient, kgo.ErrClientClosed},
		{"record too large", 10 * time.Second, func(ctx context.Context) error {
			_, _, err := live.Publish(ctx, "t", nil, make([]byte, 2<<20), nil)
			return err
		}, fault.Permanent, kerr.MessageTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.ctx > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctx)
				defer cancel()
			}
			done := make(chan error, 1)
			go func() { done <- tt.call(ctx) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("call did not return: hung on the broker")
			}
			if err == nil {
				t.Fatal("no error")
			}
			if got := fault.KindOf(err); got != tt.want {
				t.Errorf("error %v classified %v, want %v", err, got, tt.want)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v is not %v", err, tt.wantIs)
			}
		})
	}
}
