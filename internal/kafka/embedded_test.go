package kafka_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/orderd/orderd/internal/kafka"
	"github.com/orderd/orderd/internal/testkit"
)

// embStart starts an embedded broker and closes it when the test ends.
func embStart(t *testing.T, cfg kafka.EmbeddedConfig) *kafka.Embedded {
	t.Helper()
	e, err := kafka.StartEmbedded(cfg)
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(e.Close)
	return e
}

// embClient is a plain kgo client of addr, closed when the test ends.
func embClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// embProduce writes perPartition records to each partition of topic; the
// value is "p<partition>-<i>".
func embProduce(t *testing.T, addr, topic string, partitions, perPartition int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl := embClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for i := range perPartition {
		for p := range partitions {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(p), Value: fmt.Appendf(nil, "p%d-%d", p, i)})
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// embConsume polls cl until want records arrived or the deadline passes.
func embConsume(t *testing.T, cl *kgo.Client, want int) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < want {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before the deadline", len(got), want)
		}
		if err := fetches.Err0(); err != nil {
			t.Fatalf("poll: %v", err)
		}
		got = append(got, fetches.Records()...)
	}
	return got
}

// embValues returns the values of recs, sorted.
func embValues(recs []*kgo.Record) []string {
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		out = append(out, string(r.Value))
	}
	slices.Sort(out)
	return out
}

// embExpected lists the values embProduce wrote from offset `from` on, sorted.
func embExpected(partitions, from, perPartition int) []string {
	var out []string
	for p := range partitions {
		for i := from; i < perPartition; i++ {
			out = append(out, fmt.Sprintf("p%d-%d", p, i))
		}
	}
	slices.Sort(out)
	return out
}

// embCommitAt consumes every record of topic in group and commits the
// offset `commitAt` on each partition, then leaves the group.
func embCommitAt(t *testing.T, addr, group, topic string, partitions, perPartition int, commitAt int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := embConsume(t, cl, partitions*perPartition)
	var upTo []*kgo.Record
	for _, r := range recs {
		if r.Offset < commitAt {
			upTo = append(upTo, r)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.CommitRecords(ctx, upTo...); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

func TestEmbeddedListensOnGivenAddr(t *testing.T) {
	e := embStart(t, kafka.EmbeddedConfig{Addr: "127.0.0.1:0", Partitions: 2, Topics: []string{"in", "dlq"}})
	host, port, err := net.SplitHostPort(e.Addr())
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("Addr() = %q, want 127.0.0.1 with a real port", e.Addr())
	}
	for _, topic := range []string{"in", "dlq"} {
		if n := len(e.Cluster().PartitionInfos(topic)); n != 2 {
			t.Errorf("topic %s has %d partitions, want 2", topic, n)
		}
	}
	embProduce(t, e.Addr(), "in", 2, 3)
	cl := embClient(t, e.Addr(), kgo.ConsumeTopics("in"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if got, want := embValues(embConsume(t, cl, 6)), embExpected(2, 0, 3); !slices.Equal(got, want) {
		t.Errorf("consumed %v, want %v", got, want)
	}
}

func TestEmbeddedPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })

	e, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Addr: ln.Addr().String()})
	if err == nil {
		e.Close()
		t.Fatal("StartEmbedded on a busy port succeeded")
	}
	if !strings.Contains(err.Error(), "EMBEDDED_KAFKA_ADDR") || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("error %q does not name EMBEDDED_KAFKA_ADDR and the address", err)
	}
}

func TestEmbeddedRejectsBadAddr(t *testing.T) {
	for _, addr := range []string{"127.0.0.1", "localhost:port"} {
		t.Run(addr, func(t *testing.T) {
			e, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Addr: addr})
			if err == nil {
				e.Close()
				t.Fatal("StartEmbedded succeeded")
			}
			if !strings.Contains(err.Error(), "EMBEDDED_KAFKA_ADDR") {
				t.Errorf("error %q does not name EMBEDDED_KAFKA_ADDR", err)
			}
		})
	}
}

func TestEmbeddedDoesNotCreateTopicsImplicitly(t *testing.T) {
	e := embStart(t, kafka.EmbeddedConfig{Addr: "127.0.0.1:0", Partitions: 1, Topics: []string{"order-events"}})
	cl := embClient(t, e.Addr(), kgo.AllowAutoTopicCreation(), kgo.UnknownTopicRetries(1))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := cl.ProduceSync(ctx, &kgo.Record{Topic: "order-event", Value: []byte("x")}).FirstErr()
	if !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("produce to a misspelt topic = %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
	if info := e.Cluster().TopicInfo("order-event"); info != nil {
		t.Errorf("misspelt topic was created: %+v", info)
	}
}

// TestEmbeddedOffersNoClientMetrics: the embedded broker does not offer the
// client-metrics APIs (KIP-714), so that its clients push none; the APIs the
// service uses are there.
func TestEmbeddedOffersNoClientMetrics(t *testing.T) {
	e := embStart(t, kafka.EmbeddedConfig{Addr: "127.0.0.1:0", Partitions: 1, Topics: []string{"t"}})
	cl := embClient(t, e.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("ApiVersions: %v", err)
	}
	offered := make(map[int16]bool)
	for _, k := range resp.ApiKeys {
		offered[k.ApiKey] = true
	}
	for _, k := range []kmsg.Key{kmsg.GetTelemetrySubscriptions, kmsg.PushTelemetry} {
		if offered[int16(k)] {
			t.Errorf("the embedded broker offers %s", kmsg.NameForKey(int16(k)))
		}
	}
	for _, k := range []kmsg.Key{kmsg.Produce, kmsg.Fetch, kmsg.ListOffsets, kmsg.Metadata, kmsg.OffsetCommit,
		kmsg.OffsetFetch, kmsg.JoinGroup, kmsg.SyncGroup, kmsg.Heartbeat, kmsg.CreateTopics, kmsg.DescribeGroups} {
		if !offered[int16(k)] {
			t.Errorf("the embedded broker does not offer %s", kmsg.NameForKey(int16(k)))
		}
	}
}

func TestEmbeddedMemoryOnlyForgets(t *testing.T) {
	e := embStart(t, kafka.EmbeddedConfig{Addr: "127.0.0.1:0", Partitions: 1, Topics: []string{"t"}})
	embProduce(t, e.Addr(), "t", 1, 2)
	e.Close()

	e2 := embStart(t, kafka.EmbeddedConfig{Addr: "127.0.0.1:0", Partitions: 1, Topics: []string{"t"}})
	if hw := e2.Cluster().PartitionInfos("t")[0].HighWatermark; hw != 0 {
		t.Errorf("memory-only broker kept %d records across a restart", hw)
	}
}

func TestEmbeddedRestartKeepsTopicsRecordsAndOffsets(t *testing.T) {
	const (
		partitions   = 3
		perPartition = 10
		commitAt     = 4
		group        = "orderd-test"
	)
	dir := filepath.Join(t.TempDir(), "kafka-data") // does not exist yet
	cfg := kafka.EmbeddedConfig{Addr: "127.0.0.1:0", DataDir: dir, Partitions: partitions, Topics: []string{"orders", "dlq"}}

	first := embStart(t, cfg)
	embProduce(t, first.Addr(), "orders", partitions, perPartition)
	embCommitAt(t, first.Addr(), group, "orders", partitions, perPartition, commitAt)
	first.Close()
	first.Close() // idempotent

	// Restart on the same directory; the partition count in the config
	// changed, which must not touch the existing topics, and a new topic
	// is added.
	cfg.Partitions = 5
	cfg.Topics = append(cfg.Topics, "new-topic")
	second := embStart(t, cfg)
	for topic, want := range map[string]int{"orders": partitions, "dlq": partitions, "new-topic": 5} {
		if n := len(second.Cluster().PartitionInfos(topic)); n != want {
			t.Errorf("after restart topic %s has %d partitions, want %d", topic, n, want)
		}
	}

	t.Run("group resumes after its commits", func(t *testing.T) {
		cl := embClient(t, second.Addr(), kgo.ConsumerGroup(group), kgo.ConsumeTopics("orders"),
			kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		recs := embConsume(t, cl, partitions*(perPartition-commitAt))
		for _, r := range recs {
			if r.Offset < commitAt {
				t.Errorf("record %s/%d@%d redelivered although committed", r.Topic, r.Partition, r.Offset)
			}
		}
		if got, want := embValues(recs), embExpected(partitions, commitAt, perPartition); !slices.Equal(got, want) {
			t.Errorf("group consumed %v, want %v", got, want)
		}
	})
	t.Run("old records still readable", func(t *testing.T) {
		cl := embClient(t, second.Addr(), kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if got, want := embValues(embConsume(t, cl, partitions*perPartition)), embExpected(partitions, 0, perPartition); !slices.Equal(got, want) {
			t.Errorf("consumed %v, want %v", got, want)
		}
	})
	t.Run("committed offsets visible to admin", func(t *testing.T) {
		adm := kadm.NewClient(embClient(t, second.Addr()))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		offsets, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		for p := range int32(partitions) {
			if o, ok := offsets.Lookup("orders", p); !ok || o.At != commitAt {
				t.Errorf("partition %d committed offset = %+v (found %v), want %d", p, o.At, ok, commitAt)
			}
		}
	})
}

func TestEmbeddedDataDirIsExclusive(t *testing.T) {
	dir := t.TempDir()
	embStart(t, kafka.EmbeddedConfig{Addr: "127.0.0.1:0", DataDir: dir})
	e, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Addr: "127.0.0.1:0", DataDir: dir})
	if err == nil {
		e.Close()
		t.Fatal("second broker on the same data directory started")
	}
	if !strings.Contains(err.Error(), "EMBEDDED_KAFKA_DIR") {
		t.Errorf("error %q does not name EMBEDDED_KAFKA_DIR", err)
	}
}

func TestEmbeddedLogsThroughSlog(t *testing.T) {
	var buf testkit.LogBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := embStart(t, kafka.EmbeddedConfig{Addr: "127.0.0.1:0", Partitions: 1, Topics: []string{"t"}, Logger: logger})
	embProduce(t, e.Addr(), "t", 1, 1)
	out := buf.String()
	if !strings.Contains(out, "level=INFO") || !strings.Contains(out, e.Addr()) {
		t.Errorf("no info line with the listen address in:\n%s", out)
	}
	if !strings.Contains(out, "level=DEBUG msg=\"embedded kafka: ") {
		t.Errorf("no kfake debug lines in:\n%s", out)
	}
}

// TestEmbeddedSurvivesKill runs the broker in a child process, produces
// and commits, kills the child with SIGKILL (no clean shutdown, no final
// save) and restarts on the same directory: everything acknowledged must
// still be there. This is what running without kfake.SyncWrites relies on:
// kfake writes every batch and every commit to its files before answering,
// so only an operating-system crash can lose them.
func TestEmbeddedSurvivesKill(t *testing.T) {
	if os.Getenv("ORDERD_EMBEDDED_CHILD") != "" {
		t.Skip("running as the child broker")
	}
	const (
		partitions   = 2
		perPartition = 8
		commitAt     = 3
		group        = "orderd-kill"
	)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestEmbeddedChildBroker$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ORDERD_EMBEDDED_CHILD="+dir)
	stdin, err := cmd.StdinPipe() // held open: the child runs until it is killed
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close() })
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	addrCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "EMBEDDED_ADDR="); ok {
				addrCh <- a
			}
		}
	}()
	var addr string
	select {
	case addr = <-addrCh:
	case <-ctx.Done():
		t.Fatal("child broker did not report its address")
	}

	embProduce(t, addr, "orders", partitions, perPartition)
	embCommitAt(t, addr, group, "orders", partitions, perPartition, commitAt)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killed = true

	e := embStart(t, kafka.EmbeddedConfig{Addr: "127.0.0.1:0", DataDir: dir, Partitions: partitions, Topics: []string{"orders"}})
	cl := embClient(t, e.Addr(), kgo.ConsumerGroup(group), kgo.ConsumeTopics("orders"),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if got, want := embValues(embConsume(t, cl, partitions*(perPartition-commitAt))), embExpected(partitions, commitAt, perPartition); !slices.Equal(got, want) {
		t.Errorf("after kill the group consumed %v, want %v", got, want)
	}
	all := embClient(t, e.Addr(), kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if got, want := embValues(embConsume(t, all, partitions*perPartition)), embExpected(partitions, 0, perPartition); !slices.Equal(got, want) {
		t.Errorf("after kill the log holds %v, want %v", got, want)
	}
}

// TestEmbeddedChildBroker is the child process of TestEmbeddedSurvivesKill:
// it runs a broker until it is killed.
func TestEmbeddedChildBroker(t *testing.T) {
	dir := os.Getenv("ORDERD_EMBEDDED_CHILD")
	if dir == "" {
		t.Skip("only runs as the child of TestEmbeddedSurvivesKill")
	}
	e, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Addr: "127.0.0.1:0", DataDir: dir, Partitions: 2, Topics: []string{"orders"}})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("EMBEDDED_ADDR=%s\n", e.Addr())
	// Run until killed; should the parent die first, its end of stdin
	// closes and we stop too.
	io.Copy(io.Discard, os.Stdin)
	e.Close()
}

// TestEmbeddedKeepsItsCommitLogSmall commits many offsets to a broker with
// a data directory and checks that the log it keeps them in is rewritten
// well before kfake's default 10 MiB: the rewrite stops the broker for as
// long as it takes to read the whole log.
func TestEmbeddedKeepsItsCommitLogSmall(t *testing.T) {
	const (
		partitions = 50
		commits    = 200 // about 100 bytes per partition each: some 1 MB in all
	)
	dir := filepath.Join(t.TempDir(), "kafka-data")
	e := embStart(t, kafka.EmbeddedConfig{Addr: "127.0.0.1:0", DataDir: dir, Partitions: partitions, Topics: []string{"orders"}})
	adm := kadm.NewClient(embClient(t, e.Addr()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log := filepath.Join(dir, "groups.log")
	var largest int64
	for i := range commits {
		var offs kadm.Offsets
		for p := range int32(partitions) {
			offs.AddOffset("orders", p, int64(i+1), -1)
		}
		resp, err := adm.CommitOffsets(ctx, "orderd-test", offs)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
		size, err := fileSize(log)
		if err != nil {
			t.Fatalf("commit log: %v", err)
		}
		largest = max(largest, size)
	}
	if limit := int64(512 << 10); largest > limit {
		t.Errorf("the commit log grew to %d bytes over %d commits of %d partitions, want it rewritten before %d", largest, commits, partitions, limit)
	}
	offsets, err := adm.FetchOffsets(ctx, "orderd-test")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offsets.Lookup("orders", partitions-1); !ok || o.At != commits {
		t.Errorf("last partition's committed offset = %d (found %v), want %d", o.At, ok, commits)
	}
}

// fileSize returns the size of the file at path.
func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// TestEmbeddedSyncWrites: with SyncWrites (EMBEDDED_KAFKA_SYNC) the broker
// takes, keeps and serves records as without it, across a restart. It does
// not see the fsyncs themselves (kfake shows no count of them, and its
// options cannot be read back): those were counted by hand when it was
// added, `strace -f -c -e trace=fsync` on this test's binary printing 37
// fsync calls with the option and 26 without.
func TestEmbeddedSyncWrites(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "kafka-data")
	cfg := kafka.EmbeddedConfig{Addr: "127.0.0.1:0", DataDir: dir, SyncWrites: true, Partitions: 2, Topics: []string{"orders"}}
	first := embStart(t, cfg)
	embProduce(t, first.Addr(), "orders", 2, 20)
	first.Close()
	second := embStart(t, cfg)
	got := embConsume(t, embClient(t, second.Addr(), kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())), 40)
	if !slices.Equal(embValues(got), embExpected(2, 0, 20)) {
		t.Errorf("after restart: %v", embValues(got))
	}
}

// TestEmbeddedRetention: with Retention set, the broker deletes on its own
// the records of the named topics its group committed, and keeps the
// others' (the DLQ's).
func TestEmbeddedRetention(t *testing.T) {
	t.Parallel()
	e := embStart(t, kafka.EmbeddedConfig{
		Addr: "127.0.0.1:0", Partitions: 2, Topics: []string{"in", "dlq"},
		Retention: kafka.EmbeddedRetention{After: time.Millisecond, Group: "g", Topics: []string{"in"}, Check: 20 * time.Millisecond},
	})
	embProduce(t, e.Addr(), "in", 2, 10)
	embProduce(t, e.Addr(), "dlq", 2, 10)
	adm := kadm.NewClient(embClient(t, e.Addr()))
	var o kadm.Offsets
	o.Add(kadm.Offset{Topic: "in", Partition: 0, At: 6, LeaderEpoch: -1})
	o.Add(kadm.Offset{Topic: "dlq", Partition: 0, At: 6, LeaderEpoch: -1})
	if resp, err := adm.CommitOffsets(context.Background(), "g", o); err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v, %v", err, resp.Error())
	}
	deadline := time.Now().Add(20 * time.Second)
	for e.Cluster().PartitionInfo("in", 0).LogStartOffset != 6 {
		if time.Now().After(deadline) {
			t.Fatalf("in/0 starts at %d, want 6: the records the group committed were not deleted", e.Cluster().PartitionInfo("in", 0).LogStartOffset)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, tp := range []struct {
		topic string
		p     int32
	}{{"in", 1}, {"dlq", 0}, {"dlq", 1}} {
		if got := e.Cluster().PartitionInfo(tp.topic, tp.p).LogStartOffset; got != 0 {
			t.Errorf("%s/%d starts at %d, want 0: nothing committed there is trimmed", tp.topic, tp.p, got)
		}
	}
}
