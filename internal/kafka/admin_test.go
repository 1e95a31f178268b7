package kafka_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/orderd/orderd/internal/fault"
	"github.com/orderd/orderd/internal/kafka"
)

// adminNew builds an Admin for brokers, closed when the test ends.
func adminNew(t *testing.T, brokers ...string) *kafka.Admin {
	t.Helper()
	a, err := kafka.NewAdmin(kafka.Config{Brokers: brokers}, nil)
	if err != nil {
		t.Fatalf("NewAdmin: %v", err)
	}
	t.Cleanup(a.Close)
	return a
}

func TestAdminEnsureTopics(t *testing.T) {
	e := embStart(t, kafka.EmbeddedConfig{Addr: "127.0.0.1:0", Partitions: 2, Topics: []string{"existing"}})
	a := adminNew(t, e.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	for range 2 { // the second round finds every topic existing
		if err := a.EnsureTopics(ctx, 4, "existing", "fresh_a", "fresh-b"); err != nil {
			t.Fatalf("EnsureTopics: %v", err)
		}
	}
	for topic, want := range map[string]int{"existing": 2, "fresh_a": 4, "fresh-b": 4} {
		if n := len(e.Cluster().PartitionInfos(topic)); n != want {
			t.Errorf("topic %s has %d partitions, want %d", topic, n, want)
		}
	}
	if err := a.EnsureTopics(ctx, 1); err != nil {
		t.Errorf("EnsureTopics with no topics: %v", err)
	}
	// Kafka refuses names that differ from an existing one only in '.'
	// versus '_'; that is an error, not "already exists".
	if err := a.EnsureTopics(ctx, 1, "fresh.a"); !errors.Is(err, kerr.InvalidTopicException) {
		t.Errorf("EnsureTopics(fresh.a) = %v, want INVALID_TOPIC_EXCEPTION", err)
	}
}

func TestAdminLag(t *testing.T) {
	e := embStart(t, kafka.EmbeddedConfig{Addr: "127.0.0.1:0", Partitions: 3, Topics: []string{"lag", "other"}})
	a := adminNew(t, e.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Five records on each partition of "lag", three on each of "other".
	embProduce(t, e.Addr(), "lag", 3, 5)
	embProduce(t, e.Addr(), "other", 3, 3)
	// Partition 2 lost its first record to retention: a group that never
	// committed there has 4 records to read, not 5.
	if err := e.Cluster().DeleteRecords("lag", 2, 1); err != nil {
		t.Fatal(err)
	}
	commits := kadm.Offsets{}
	commits.AddOffset("lag", 0, 2, -1)
	commits.AddOffset("lag", 1, 5, -1)
	commits.AddOffset("other", 0, 1, -1)
	resp, err := kadm.NewClient(embClient(t, e.Addr())).CommitOffsets(ctx, "g", commits)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("commit: %v", err)
	}

	tests := []struct {
		name   string
		group  string
		topics []string
		want   map[string]map[int32]int64
	}{
		{"committed and uncommitted partitions", "g", []string{"lag"},
			map[string]map[int32]int64{"lag": {0: 3, 1: 0, 2: 4}}},
		{"two topics", "g", []string{"lag", "other"},
			map[string]map[int32]int64{"lag": {0: 3, 1: 0, 2: 4}, "other": {0: 2, 1: 3, 2: 3}}},
		{"group that never committed", "nobody", []string{"lag"},
			map[string]map[int32]int64{"lag": {0: 5, 1: 5, 2: 4}}},
		{"no topics", "g", nil, map[string]map[int32]int64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			offs, err := a.GroupOffsets(ctx, tt.group, tt.topics...)
			if err != nil {
				t.Fatalf("GroupOffsets: %v", err)
			}
			got := map[string]map[int32]int64{}
			for topic, ps := range offs {
				got[topic] = map[int32]int64{}
				for p, o := range ps {
					got[topic][p] = o.Lag()
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("lag (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("offsets of a partition", func(t *testing.T) {
		offs, err := a.GroupOffsets(ctx, "g", "lag")
		if err != nil {
			t.Fatal(err)
		}
		want := map[int32]kafka.PartitionOffsets{0: {Start: 0, End: 5, Committed: 2}, 2: {Start: 1, End: 5, Committed: -1}}
		for p, w := range want {
			if got := offs["lag"][p]; got != w {
				t.Errorf("partition %d: %+v, want %+v", p, got, w)
			}
		}
	})

	t.Run("unknown topic", func(t *testing.T) {
		_, err := a.GroupOffsets(ctx, "g", "lag", "no-such-topic")
		if !errors.Is(err, kerr.UnknownTopicOrPartition) {
			t.Errorf("GroupOffsets = %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
		}
	})
}

// TestAdminMissingTopics: MissingTopics names the topics the cluster lacks,
// and asking creates none.
func TestAdminMissingTopics(t *testing.T) {
	e := embStart(t, kafka.EmbeddedConfig{Addr: "127.0.0.1:0", Partitions: 1, Topics: []string{"orders"}})
	a := adminNew(t, e.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for range 2 { // the second round finds the missing topic still missing
		missing, err := a.MissingTopics(ctx, "orders", "no-such-dlq")
		if err != nil {
			t.Fatalf("MissingTopics: %v", err)
		}
		if diff := cmp.Diff([]string{"no-such-dlq"}, missing); diff != "" {
			t.Errorf("MissingTopics (-want +got):\n%s", diff)
		}
	}
	if n := len(e.Cluster().PartitionInfos("no-such-dlq")); n != 0 {
		t.Errorf("the missing topic was created, with %d partitions", n)
	}
}

func TestAdminUnreachableBrokerIsTransient(t *testing.T) {
	a := adminNew(t, "127.0.0.1:1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for name, err := range map[string]error{
		"ping":   a.Ping(ctx),
		"ensure": a.EnsureTopics(ctx, 1, "t"),
		"missing": func() error {
			_, err := a.MissingTopics(ctx, "t")
			return err
		}(),
		"lag": func() error {
			_, err := a.GroupOffsets(ctx, "g", "t")
			return err
		}(),
	} {
		if err == nil || fault.KindOf(err) != fault.Transient {
			t.Errorf("%s = %v (%v), want a transient error", name, err, fault.KindOf(err))
		}
	}
	a.Close()
	a.Close() // idempotent
}
