package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// retentionCluster is a kfake cluster with topics "in" and "dlq" of two
// partitions holding ten records each, and an admin client of it.
func retentionCluster(t *testing.T) (*kfake.Cluster, *kadm.Client) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for _, topic := range []string{"in", "dlq"} {
		if err := c.CreateTopic(topic, 2, nil); err != nil {
			t.Fatal(err)
		}
		for p := range int32(2) {
			for i := range 10 {
				recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "%s-%d-%d", topic, p, i)})
			}
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	return c, kadm.NewClient(cl)
}

// commit commits offset at on topic's partition p for group g.
func commit(t testing.TB, adm *kadm.Client, g, topic string, p int32, at int64) {
	t.Helper()
	var o kadm.Offsets
	o.Add(kadm.Offset{Topic: topic, Partition: p, At: at, LeaderEpoch: -1})
	resp, err := adm.CommitOffsets(context.Background(), g, o)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("commit %s/%d at %d: %v", topic, p, at, err)
	}
}

// logStarts returns the first offset of each partition of "in" and "dlq".
func logStarts(c *kfake.Cluster) map[string][2]int64 {
	out := map[string][2]int64{}
	for _, topic := range []string{"in", "dlq"} {
		var s [2]int64
		for p := range int32(2) {
			s[p] = c.PartitionInfo(topic, p).LogStartOffset
		}
		out[topic] = s
	}
	return out
}

// TestRetainerDeletesWhatTheGroupCommittedLongAgo: records are deleted only
// below an offset the group committed at least After before, never on a
// partition the group has not committed, never on a topic not named (the
// DLQ), and never past where the group has since been moved back to.
func TestRetainerDeletesWhatTheGroupCommittedLongAgo(t *testing.T) {
	t.Parallel()
	c, adm := retentionCluster(t)
	const after = time.Hour
	r := &retainer{cluster: c, cfg: EmbeddedRetention{After: after, Group: "g", Topics: []string{"in"}}, logger: slog.New(slog.DiscardHandler)}
	untouched := map[string][2]int64{"in": {0, 0}, "dlq": {0, 0}}

	commit(t, adm, "g", "in", 0, 6)
	commit(t, adm, "g", "dlq", 0, 6) // the group's commit on a topic not trimmed
	t0 := time.Now()
	r.check(t0)
	if got := logStarts(c); got["in"] != untouched["in"] || got["dlq"] != untouched["dlq"] {
		t.Fatalf("right after the commit: log starts %v, want %v", got, untouched)
	}
	r.check(t0.Add(after - time.Millisecond))
	if got := logStarts(c); got["in"] != untouched["in"] || got["dlq"] != untouched["dlq"] {
		t.Fatalf("before the retention period: log starts %v, want %v", got, untouched)
	}
	commit(t, adm, "g", "in", 0, 9) // committed later: not old enough yet
	r.check(t0.Add(after))
	want := map[string][2]int64{"in": {6, 0}, "dlq": {0, 0}}
	if got := logStarts(c); got["in"] != want["in"] || got["dlq"] != want["dlq"] {
		t.Fatalf("after the retention period: log starts %v, want %v", got, want)
	}

	// Partition 1: committed at 8, then moved back to 3 to be read again.
	commit(t, adm, "g", "in", 1, 8)
	t1 := t0.Add(2 * after)
	r.check(t1)
	commit(t, adm, "g", "in", 1, 3)
	r.check(t1.Add(after))
	// Partition 0's 9 was sampled at t0+after, an hour before: now old.
	want = map[string][2]int64{"in": {9, 3}, "dlq": {0, 0}}
	if got := logStarts(c); got["in"] != want["in"] || got["dlq"] != want["dlq"] {
		t.Fatalf("after the group moved back: log starts %v, want %v", got, want)
	}
}

// TestRetainerAfterRestartWaits: a retainer that has not itself seen when an
// offset was committed (a restarted broker) deletes nothing until After has
// passed since it first saw it.
func TestRetainerAfterRestartWaits(t *testing.T) {
	t.Parallel()
	c, adm := retentionCluster(t)
	const after = time.Hour
	commit(t, adm, "g", "in", 0, 5)
	r := &retainer{cluster: c, cfg: EmbeddedRetention{After: after, Group: "g", Topics: []string{"in"}}, logger: slog.New(slog.DiscardHandler)}
	now := time.Now().Add(10 * after) // the commit is long past, but r never saw it
	r.check(now)
	if got := logStarts(c)["in"]; got != [2]int64{0, 0} {
		t.Fatalf("first check: log starts %v, want nothing deleted", got)
	}
	r.check(now.Add(after))
	if got := logStarts(c)["in"]; got != [2]int64{5, 0} {
		t.Fatalf("After later: log starts %v, want [5 0]", got)
	}
}

// TestRetainerSamplesStayBounded: an idle group's checks keep one sample,
// however long it stays idle, and still delete what it committed once After
// has passed since it was first seen; a group that commits between every
// two checks keeps at most one sample per check in After.
func TestRetainerSamplesStayBounded(t *testing.T) {
	t.Parallel()
	c, adm := retentionCluster(t)
	const after, every = 50 * time.Minute, 5 * time.Minute
	r := &retainer{cluster: c, cfg: EmbeddedRetention{After: after, Group: "g", Topics: []string{"in"}}, logger: slog.New(slog.DiscardHandler)}
	commit(t, adm, "g", "in", 0, 4)
	t0 := time.Now()
	for i := range 40 {
		now := t0.Add(time.Duration(i) * every)
		r.check(now)
		if len(r.samples) != 1 {
			t.Fatalf("idle check %d: %d samples kept, want 1", i, len(r.samples))
		}
		want := [2]int64{0, 0}
		if now.Sub(t0) >= after {
			want[0] = 4
		}
		if got := logStarts(c)["in"]; got != want {
			t.Fatalf("idle check %d (%v after the commit was seen): log starts %v, want %v", i, now.Sub(t0), got, want)
		}
	}

	t1 := t0.Add(40 * every)
	most := 0
	for i := range 40 {
		commit(t, adm, "g", "in", 1, int64(i%10)+1)
		r.check(t1.Add(time.Duration(i) * every))
		most = max(most, len(r.samples))
	}
	if limit := int(after/every) + 1; most != limit {
		t.Fatalf("busy group: up to %d samples kept, want %d (one per check in After, and the one old enough)", most, limit)
	}
}

// BenchmarkRetainerSample: what one sample of a topic of six partitions
// costs to take (ns/op, B/op), and what a kept one holds (B/kept, the live
// heap of 2,017 of them over 2,017): the retainer keeps at most
// EMBEDDED_KAFKA_RETENTION / DefaultRetentionCheck + 1 samples (2,017 for
// the default 168h), and one while the group commits nothing.
func BenchmarkRetainerSample(b *testing.B) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(6, "in"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for p := range int32(6) {
		commit(b, adm, "g", "in", p, 1_000_000+int64(p))
	}
	r := &retainer{cluster: c, cfg: EmbeddedRetention{After: time.Hour, Group: "g", Topics: []string{"in"}}, logger: slog.New(slog.DiscardHandler)}
	if s := r.sample(time.Now()); len(s.offsets["in"]) != 6 {
		b.Fatalf("sample %v, want six partitions", s.offsets)
	}

	const kept = int(168*time.Hour/DefaultRetentionCheck) + 1
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	samples := make([]commitSample, kept)
	for i := range samples {
		samples[i] = r.sample(time.Now())
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(samples)

	b.ReportAllocs()
	for b.Loop() {
		r.sample(time.Now())
	}
	// As signed numbers: a heap smaller after would be a negative figure,
	// not a wrapped-around huge one.
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(kept), "B/kept")
}
