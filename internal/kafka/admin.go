package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderd/orderd/internal/fault"
)

// Admin runs cluster administration requests: topic creation and consumer
// lag, for start-up, readiness and metrics.
type Admin struct {
	client *kgo.Client
	adm    *kadm.Client
	once   sync.Once
}

// NewAdmin builds an admin client from cfg's brokers and security settings.
// No connection is made until the first request.
func NewAdmin(cfg Config, logger *slog.Logger) (*Admin, error) {
	opts, err := cfg.ClientOpts()
	if err != nil {
		return nil, err
	}
	opts = append(opts, kgo.WithLogger(ClientLogger(logger)))
	client, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka admin: %w", err)
	}
	return &Admin{client: client, adm: kadm.NewClient(client)}, nil
}

// EnsureTopics creates the topics that do not exist yet with the given
// partition count and the broker's default replication factor. Existing
// topics are left as they are.
func (a *Admin) EnsureTopics(ctx context.Context, partitions int32, topics ...string) error {
	if len(topics) == 0 {
		return nil
	}
	resps, err := a.adm.CreateTopics(ctx, partitions, -1, nil, topics...)
	if err != nil {
		return fault.AsTransient(fmt.Errorf("kafka create topics: %w", err))
	}
	var errs []error
	for _, r := range resps.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("kafka create topic %q: %w", r.Topic, r.Err))
		}
	}
	return errors.Join(errs...)
}

// MissingTopics returns those of topics the cluster does not have (a
// metadata request, which creates none). An error, transient, means no
// broker answered: nothing is known then.
func (a *Admin) MissingTopics(ctx context.Context, topics ...string) ([]string, error) {
	if len(topics) == 0 {
		return nil, nil
	}
	md, err := a.adm.Metadata(ctx, topics...)
	if err != nil {
		return nil, fault.AsTransient(fmt.Errorf("kafka metadata: %w", err))
	}
	var missing []string
	for _, t := range topics {
		if d, ok := md.Topics[t]; !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			missing = append(missing, t)
		}
	}
	return missing, nil
}

// PartitionOffsets are a partition's log start and end offsets and the
// offset a group committed on it (-1: none).
type PartitionOffsets struct {
	Start, End, Committed int64
}

// Lag is how many records the group has not committed: from its commit,
// or, without one, from the log start (see app's lagReckoner for a group
// that starts at the latest offset).
func (o PartitionOffsets) Lag() int64 {
	from := o.Start
	if o.Committed >= 0 {
		from = o.Committed
	}
	return max(o.End-from, 0)
}

// GroupOffsets returns, per topic and partition, the log's start and end
// offsets and group's committed offset. Unknown topics are an error.
func (a *Admin) GroupOffsets(ctx context.Context, group string, topics ...string) (map[string]map[int32]PartitionOffsets, error) {
	if len(topics) == 0 {
		return map[string]map[int32]PartitionOffsets{}, nil
	}
	ends, err := a.listOffsets(ctx, a.adm.ListEndOffsets, "end", topics)
	if err != nil {
		return nil, err
	}
	starts, err := a.listOffsets(ctx, a.adm.ListStartOffsets, "start", topics)
	if err != nil {
		return nil, err
	}
	commits, err := a.adm.FetchOffsets(ctx, group)
	if err == nil {
		err = commits.Error()
	}
	switch {
	case errors.Is(err, kerr.GroupIDNotFound):
		// A group that never committed: newer brokers say so
		// explicitly, older ones answer with no offsets.
		commits = nil
	case err != nil:
		return nil, fault.AsTransient(fmt.Errorf("kafka fetch offsets of group %q: %w", group, err))
	}

	offs := make(map[string]map[int32]PartitionOffsets, len(topics))
	ends.Each(func(end kadm.ListedOffset) {
		o := PartitionOffsets{End: end.Offset, Committed: -1}
		if start, ok := starts.Lookup(end.Topic, end.Partition); ok {
			o.Start = start.Offset
		}
		if c, ok := commits.Lookup(end.Topic, end.Partition); ok && c.At >= 0 {
			o.Committed = c.At
		}
		if offs[end.Topic] == nil {
			offs[end.Topic] = make(map[int32]PartitionOffsets)
		}
		offs[end.Topic][end.Partition] = o
	})
	return offs, nil
}

func (a *Admin) listOffsets(ctx context.Context, list func(context.Context, ...string) (kadm.ListedOffsets, error), which string, topics []string) (kadm.ListedOffsets, error) {
	offsets, err := list(ctx, topics...)
	if err != nil {
		return nil, fault.AsTransient(fmt.Errorf("kafka list %s offsets: %w", which, err))
	}
	if err := offsets.Error(); err != nil {
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			return nil, fmt.Errorf("kafka list %s offsets: %w", which, err)
		}
		return nil, fault.AsTransient(fmt.Errorf("kafka list %s offsets: %w", which, err))
	}
	for _, t := range topics {
		if _, ok := offsets[t]; !ok {
			return nil, fmt.Errorf("kafka list %s offsets: topic %q: %w", which, t, kerr.UnknownTopicOrPartition)
		}
	}
	return offsets, nil
}

// Ping reports whether a broker answers a metadata request.
func (a *Admin) Ping(ctx context.Context) error {
	if err := a.client.Ping(ctx); err != nil {
		return fault.AsTransient(fmt.Errorf("kafka ping: %w", err))
	}
	return nil
}

// Close closes the connections. Calling it again does nothing.
func (a *Admin) Close() {
	a.once.Do(a.client.Close)
}
