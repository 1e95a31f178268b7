// Package kafkatest runs an in-process Kafka-protocol broker (franz-go's
// kfake) on a random 127.0.0.1 port for tests, with helpers to produce,
// read back, and inspect committed offsets. Everything it starts is closed
// by t.Cleanup.
package kafkatest

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// MaxMessageBytes is the broker's message.max.bytes in clusters started by
// New: large enough for the multi-MiB records that tests dead-letter.
const MaxMessageBytes = 32 << 20

// Cluster is a running single-broker kfake cluster.
type Cluster struct {
	*kfake.Cluster
	t     testing.TB
	admin *kadm.Client

	mu   sync.Mutex
	prod *kgo.Client
}

// New starts a one-broker cluster with topics of the given partition count;
// extra kfake options are applied last.
func New(t testing.TB, partitions int32, topics []string, opts ...kfake.Opt) *Cluster {
	t.Helper()
	all := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.SeedTopics(partitions, topics...),
		kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(MaxMessageBytes)}),
	}
	kc, err := kfake.NewCluster(append(all, opts...)...)
	if err != nil {
		t.Fatalf("kafkatest: start kfake: %v", err)
	}
	t.Cleanup(kc.Close)
	c := &Cluster{Cluster: kc, t: t}
	c.admin = kadm.NewClient(c.Client())
	return c
}

// Addrs returns the broker addresses (host:port).
func (c *Cluster) Addrs() []string { return c.ListenAddrs() }

// Client returns a client for the cluster, closed at cleanup. It produces
// records of up to MaxMessageBytes.
func (c *Cluster) Client(opts ...kgo.Opt) *kgo.Client {
	c.t.Helper()
	all := []kgo.Opt{
		kgo.SeedBrokers(c.Addrs()...),
		kgo.ProducerBatchMaxBytes(MaxMessageBytes),
		kgo.ProducerLinger(0),
	}
	cl, err := kgo.NewClient(append(all, opts...)...)
	if err != nil {
		c.t.Fatalf("kafkatest: client: %v", err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

// Produce writes recs synchronously, each to the partition in its Partition
// field, and fails the test on any error. The records' Offset fields are
// filled in. Call it from the test's goroutine.
func (c *Cluster) Produce(recs ...*kgo.Record) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := c.producer()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		c.t.Fatalf("kafkatest: produce: %v", err)
	}
}

func (c *Cluster) producer() *kgo.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.prod == nil {
		c.prod = c.Client(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	return c.prod
}

// ReadAll reads topic from the start until it has read want records or the
// timeout passes, and returns what it read.
func (c *Cluster) ReadAll(topic string, want int, timeout time.Duration) []*kgo.Record {
	c.t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(c.Addrs()...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxPartitionBytes(MaxMessageBytes),
	)
	if err != nil {
		c.t.Fatalf("kafkatest: reader: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		out = append(out, fs.Records()...)
	}
	return out
}

// Committed returns the group's committed offset per partition of topic;
// partitions without a commit are absent, and an unknown group has none.
func (c *Cluster) Committed(group, topic string) map[int32]int64 {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.admin.FetchOffsetsForTopics(ctx, group, topic)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return map[int32]int64{}
	}
	if err != nil {
		c.t.Fatalf("kafkatest: fetch offsets: %v", err)
	}
	out := make(map[int32]int64)
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil && o.Topic == topic && o.At >= 0 {
			out[o.Partition] = o.At
		}
	})
	return out
}

// EndOffsets returns the high watermark of each partition of topic.
func (c *Cluster) EndOffsets(topic string) map[int32]int64 {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	listed, err := c.admin.ListEndOffsets(ctx, topic)
	if err != nil {
		c.t.Fatalf("kafkatest: list end offsets: %v", err)
	}
	out := make(map[int32]int64)
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			out[o.Partition] = o.Offset
		}
	})
	return out
}

// GroupMembers returns the number of members the group has now.
func (c *Cluster) GroupMembers(group string) int {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	described, err := c.admin.DescribeGroups(ctx, group)
	if err != nil {
		c.t.Fatalf("kafkatest: describe group: %v", err)
	}
	g, ok := described[group]
	if !ok {
		return 0
	}
	return len(g.Members)
}

// Eventually polls cond every 10ms until it holds, and fails the test with
// msg if it does not within timeout.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("kafkatest: timed out after %s: "+msg, append([]any{timeout}, args...)...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
