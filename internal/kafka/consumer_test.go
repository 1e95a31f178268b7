package kafka_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/orderd/orderd/internal/delivery"
	"github.com/orderd/orderd/internal/fault"
	"github.com/orderd/orderd/internal/kafka"
	"github.com/orderd/orderd/internal/kafka/kafkatest"
	"github.com/orderd/orderd/internal/testkit"
)

const (
	ctTopic = "orders"
	ctDLQ   = "orders-dlq"
	ctGroup = "order-processing-group"
)

// ctLogger logs to the test output with -v and discards otherwise, unless
// KAFKA_TEST_LOG=debug asks for everything on stderr.
func ctLogger(t *testing.T) *slog.Logger {
	if os.Getenv("KAFKA_TEST_LOG") == "debug" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

func ctConfig(kc *kafkatest.Cluster) kafka.Config {
	return kafka.Config{
		Brokers:         kc.Addrs(),
		Topics:          []string{ctTopic},
		GroupID:         ctGroup,
		DLQTopic:        ctDLQ,
		AutoOffsetReset: "earliest",
		MaxAttempts:     3,
		ShutdownTimeout: 10 * time.Second,
		RetryInitial:    5 * time.Millisecond,
		RetryMax:        40 * time.Millisecond,
	}
}

// ctCall is one handler call as the test handler saw it.
type ctCall struct {
	consumer  string
	partition int32
	offset    int64
	value     string
	meta      delivery.Meta // copy at the time of the call
	err       error
}

// ctRecorder is the test's handler: what a record does is decided by its
// value, "<behaviour>|<id>":
//
//	ok           succeeds
//	permanent    fails permanently (reason "test_reason") after naming the event
//	longreason   fails permanently with an 800-byte, multi-byte error message
//	transient-N  fails transiently N times, then succeeds
//	flaky        fails with an unclassified error, always
//	seq          succeeds (the id is "key:n" for ordering checks)
//	panic        succeeds (a test batch handler panics on it once)
type ctRecorder struct {
	mu       sync.Mutex
	calls    []ctCall
	ok       []ctCall
	attempts map[[2]int64]int
	delay    time.Duration
}

func newRecorder() *ctRecorder { return &ctRecorder{attempts: make(map[[2]int64]int)} }

func (r *ctRecorder) handler(consumer string) kafka.Handler {
	return func(ctx context.Context, rec *kgo.Record) error {
		if !delivery.HasMeta(ctx) {
			return fault.Permanentf("no_meta", "handler context carries no delivery.Meta")
		}
		meta := delivery.MetaFrom(ctx)
		if r.delay > 0 {
			time.Sleep(r.delay) // simulated work, not synchronisation
		}
		behaviour, id, _ := strings.Cut(string(rec.Value), "|")
		pos := [2]int64{int64(rec.Partition), rec.Offset}

		r.mu.Lock()
		r.attempts[pos]++
		n := r.attempts[pos]
		r.mu.Unlock()

		var err error
		switch {
		case behaviour == "ok" || behaviour == "seq" || behaviour == "panic" || behaviour == "notreached":
		case behaviour == "permanent":
			meta.EventID, meta.EventName, meta.OrderID = "evt-"+id, "TestEvent", "order-"+id
			err = fault.Permanentf("test_reason", "record %s is bad: %w", id, errors.New("cause"))
		case behaviour == "longreason":
			err = fault.Permanentf("long_reason", "%s", strings.Repeat("é", 400))
		case strings.HasPrefix(behaviour, "transient-"):
			fails, _ := strconv.Atoi(strings.TrimPrefix(behaviour, "transient-"))
			if n <= fails {
				err = fault.AsTransient(fmt.Errorf("database unreachable (%d/%d)", n, fails))
			}
		case behaviour == "flaky":
			err = errors.New("something odd happened")
		default:
			err = fault.Permanentf("unknown_test_value", "unknown test value %q", behaviour)
		}

		call := ctCall{consumer: consumer, partition: rec.Partition, offset: rec.Offset,
			value: string(rec.Value), meta: *meta, err: err}
		r.mu.Lock()
		r.calls = append(r.calls, call)
		if err == nil {
			r.ok = append(r.ok, call)
		}
		r.mu.Unlock()
		return err
	}
}

func (r *ctRecorder) okCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ok)
}

func (r *ctRecorder) snapshot() (calls, ok []ctCall) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls), slices.Clone(r.ok)
}

// ctRun runs c until the returned stop function is called (or the test
// ends); stop waits for Run to return and fails the test on an error.
func ctRun(t *testing.T, c *kafka.Consumer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-errc:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("Run did not return within 30s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func ctNew(t *testing.T, cfg kafka.Config, h kafka.Handler, opts ...kafka.ConsumerOption) *kafka.Consumer {
	t.Helper()
	c, err := kafka.NewConsumer(cfg, h, ctLogger(t), opts...)
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	return c
}

func sum(m map[int32]int64) (n int64) {
	for _, v := range m {
		n += v
	}
	return n
}

func TestConsumerOrderingAndCommits(t *testing.T) {
	const partitions, perPartition = 3, 200
	kc := kafkatest.New(t, partitions, []string{ctTopic, ctDLQ})
	var recs []*kgo.Record
	for i := range perPartition {
		for p := range int32(partitions) {
			key := fmt.Sprintf("key-%d", int(p)+partitions*(i%4)) // several keys per partition
			recs = append(recs, &kgo.Record{Topic: ctTopic, Partition: p, Key: []byte(key),
				Value: fmt.Appendf(nil, "ok|%d-%d", p, i)})
		}
	}
	kc.Produce(recs...)

	rec := newRecorder()
	c := ctNew(t, ctConfig(kc), rec.handler("a"))
	if got := c.State(); got != kafka.StateConnecting {
		t.Fatalf("State before Run = %q, want %q", got, kafka.StateConnecting)
	}
	stop := ctRun(t, c)
	kafkatest.Eventually(t, 30*time.Second, func() bool { return rec.okCount() >= partitions*perPartition },
		"all records handled (have %d)", rec.okCount())
	st := c.Status()
	if st.State != kafka.StateRunning || st.Handled != partitions*perPartition || st.DeadLettered != 0 {
		t.Errorf("Status = %+v, want running with %d handled, 0 dead-lettered", st, partitions*perPartition)
	}
	if want := []int32{0, 1, 2}; !slices.Equal(st.Assigned[ctTopic], want) {
		t.Errorf("Status.Assigned = %v, want %v", st.Assigned, want)
	}
	stop()
	if got := c.State(); got != kafka.StateStopped {
		t.Errorf("State after Run returned = %q, want %q", got, kafka.StateStopped)
	}

	calls, _ := rec.snapshot()
	if len(calls) != partitions*perPartition {
		t.Errorf("handler called %d times, want exactly %d (once per record)", len(calls), partitions*perPartition)
	}
	for p := range int32(partitions) {
		var offsets []int64
		for _, call := range calls {
			if call.partition == p {
				offsets = append(offsets, call.offset)
			}
		}
		for i, o := range offsets {
			if o != int64(i) {
				t.Fatalf("partition %d: handled offsets %v…, want 0,1,2,… in order, each once", p, offsets[:min(len(offsets), i+3)])
			}
		}
		if len(offsets) != perPartition {
			t.Errorf("partition %d: handled %d records, want %d", p, len(offsets), perPartition)
		}
	}
	end, committed := kc.EndOffsets(ctTopic), kc.Committed(ctGroup, ctTopic)
	for p := range int32(partitions) {
		if end[p] != perPartition || committed[p] != end[p] {
			t.Errorf("partition %d: committed %d, end offset %d, want both %d", p, committed[p], end[p], perPartition)
		}
	}
}

func TestConsumerRouting(t *testing.T) {
	kc := kafkatest.New(t, 1, []string{ctTopic, ctDLQ})
	ts := time.UnixMilli(1_700_000_000_123) // Kafka keeps milliseconds
	big := append([]byte("permanent|big|"), bytes.Repeat([]byte{0xAB}, 2<<20)...)

	type want struct {
		calls   int    // handler calls
		dlqKind string // "" = must not be dead-lettered
		corr    string // "" = a generated UUID
	}
	cases := []struct {
		name string
		rec  *kgo.Record
		want want
	}{
		{"ok with correlation id", &kgo.Record{Key: []byte("k1"), Value: []byte("ok|1"),
			Headers: []kgo.RecordHeader{{Key: "correlation_id", Value: []byte("corr-ok")}}},
			want{calls: 1, corr: "corr-ok"}},
		{"ok without correlation id", &kgo.Record{Key: []byte("k2"), Value: []byte("ok|2")},
			want{calls: 1}},
		{"empty correlation id is replaced", &kgo.Record{Key: []byte("k2"), Value: []byte("ok|2b"),
			Headers: []kgo.RecordHeader{{Key: "correlation_id", Value: []byte{}}}},
			want{calls: 1}},
		{"permanent keeps headers", &kgo.Record{Key: []byte("k3"), Value: []byte("permanent|3"),
			Headers: []kgo.RecordHeader{
				{Key: "a", Value: []byte("1")},
				{Key: "correlation_id", Value: []byte("corr-perm")},
				{Key: "bin", Value: []byte{0x00, 0xFF, 0xC3}},
				{Key: "a", Value: []byte("2")},
				{Key: "empty", Value: nil},
			}},
			want{calls: 1, dlqKind: "test_reason", corr: "corr-perm"}},
		{"permanent with nil key and long reason", &kgo.Record{Key: nil, Value: []byte("longreason|4")},
			want{calls: 1, dlqKind: "long_reason"}},
		{"transient succeeds after retries", &kgo.Record{Key: []byte("k5"), Value: []byte("transient-3|5")},
			want{calls: 4}},
		{"unclassified exhausts attempts", &kgo.Record{Key: []byte("k6"), Value: []byte("flaky|6")},
			want{calls: 3, dlqKind: kafka.ErrorKindExhausted}},
		{"2 MiB poison record", &kgo.Record{Key: []byte("k7"), Value: big},
			want{calls: 1, dlqKind: "test_reason"}},
		{"ok after failures", &kgo.Record{Key: []byte("k8"), Value: []byte("ok|8")},
			want{calls: 1}},
	}
	wantDLQ := 0
	for _, tc := range cases {
		tc.rec.Topic, tc.rec.Timestamp = ctTopic, ts
		if tc.want.dlqKind != "" {
			wantDLQ++
		}
	}
	recs := make([]*kgo.Record, len(cases))
	for i, tc := range cases {
		recs[i] = tc.rec
	}
	kc.Produce(recs...)

	var omu sync.Mutex
	outcomes := map[int64][]kafka.Outcome{}
	rec := newRecorder()
	started := time.Now().UTC()
	c := ctNew(t, ctConfig(kc), rec.handler("a"), kafka.WithObserver(func(o kafka.Outcome) {
		omu.Lock()
		outcomes[o.Offset] = append(outcomes[o.Offset], o)
		omu.Unlock()
	}))
	stop := ctRun(t, c)
	kafkatest.Eventually(t, 30*time.Second, func() bool {
		return kc.Committed(ctGroup, ctTopic)[0] == int64(len(cases))
	}, "all records committed")
	stop()
	finished := time.Now().UTC()

	dlq := kc.ReadAll(ctDLQ, wantDLQ, 10*time.Second)
	if len(dlq) != wantDLQ {
		t.Fatalf("DLQ has %d records, want %d", len(dlq), wantDLQ)
	}
	if end := sum(kc.EndOffsets(ctDLQ)); end != int64(wantDLQ) {
		t.Fatalf("DLQ end offsets sum to %d, want %d (each failure written once)", end, wantDLQ)
	}
	dlqByOffset := map[string]*kgo.Record{}
	for _, r := range dlq {
		dlqByOffset[header(r, kafka.HeaderOriginalOffset)] = r
	}
	calls, _ := rec.snapshot()
	if st := c.Status(); st.DeadLettered != int64(wantDLQ) || st.Handled != int64(len(cases)-wantDLQ) {
		t.Errorf("Status counts handled=%d dead_lettered=%d, want %d and %d", st.Handled, st.DeadLettered, len(cases)-wantDLQ, wantDLQ)
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.rec
			var mine []ctCall
			for _, call := range calls {
				if call.offset == src.Offset {
					mine = append(mine, call)
				}
			}
			if len(mine) != tc.want.calls {
				t.Fatalf("handler called %d times, want %d", len(mine), tc.want.calls)
			}
			corr := mine[0].meta.CorrelationID
			for i, call := range mine {
				if call.meta.CorrelationID != corr {
					t.Errorf("attempt %d: correlation id %q, want %q on every attempt", i+1, call.meta.CorrelationID, corr)
				}
				if call.meta.Attempt != i+1 {
					t.Errorf("call %d: meta.Attempt = %d", i+1, call.meta.Attempt)
				}
			}
			if tc.want.corr != "" && corr != tc.want.corr {
				t.Errorf("correlation id %q, want %q from the header", corr, tc.want.corr)
			}
			if tc.want.corr == "" {
				if _, err := uuid.Parse(corr); err != nil {
					t.Errorf("generated correlation id %q is not a UUID: %v", corr, err)
				}
			}

			omu.Lock()
			outs := outcomes[src.Offset]
			omu.Unlock()
			if len(outs) != tc.want.calls {
				t.Fatalf("observer saw %d outcomes, want %d", len(outs), tc.want.calls)
			}
			last := outs[len(outs)-1]
			if last.DLQ != (tc.want.dlqKind != "") || last.Attempts != tc.want.calls || last.Topic != ctTopic {
				t.Errorf("last outcome %+v, want DLQ=%v after %d attempts", last, tc.want.dlqKind != "", tc.want.calls)
			}

			d := dlqByOffset[strconv.FormatInt(src.Offset, 10)]
			if tc.want.dlqKind == "" {
				if d != nil {
					t.Fatalf("record was dead-lettered (%s), want not", header(d, kafka.HeaderErrorKind))
				}
				if last.Err != nil {
					t.Errorf("last outcome error %v, want success", last.Err)
				}
				return
			}
			if d == nil {
				t.Fatal("record is not on the DLQ")
			}
			if !bytes.Equal(d.Key, src.Key) || (d.Key == nil) != (src.Key == nil) {
				t.Errorf("DLQ key %q (nil=%v), want %q (nil=%v)", d.Key, d.Key == nil, src.Key, src.Key == nil)
			}
			if !bytes.Equal(d.Value, src.Value) {
				t.Errorf("DLQ value differs from the original (%d vs %d bytes)", len(d.Value), len(src.Value))
			}
			if len(d.Headers) < len(src.Headers) {
				t.Fatalf("DLQ has %d headers, fewer than the original's %d", len(d.Headers), len(src.Headers))
			}
			for i, h := range src.Headers {
				if d.Headers[i].Key != h.Key || !bytes.Equal(d.Headers[i].Value, h.Value) {
					t.Errorf("header %d = %q:%q, want original %q:%q", i, d.Headers[i].Key, d.Headers[i].Value, h.Key, h.Value)
				}
			}
			lastErr := mine[len(mine)-1].err
			reason := kafka.CutUTF8(strings.ToValidUTF8(lastErr.Error(), "\uFFFD"), kafka.MaxErrorReasonBytes)
			added := []kgo.RecordHeader{}
			if tc.want.corr == "" {
				added = append(added, kgo.RecordHeader{Key: "correlation_id", Value: []byte(corr)})
			}
			add := func(k, v string) { added = append(added, kgo.RecordHeader{Key: k, Value: []byte(v)}) }
			add("error_reason", reason)
			add("error_kind", tc.want.dlqKind)
			add("original_topic", ctTopic)
			add("original_partition", "0")
			add("original_offset", strconv.FormatInt(src.Offset, 10))
			add("original_timestamp", "2023-11-14T22:13:20.123Z")
			if m := mine[len(mine)-1].meta; m.EventID != "" {
				add("event_id", m.EventID)
				add("event_name", m.EventName)
			}
			add("attempts", strconv.Itoa(tc.want.calls))
			gotAdded := d.Headers[len(src.Headers):]
			if len(gotAdded) != len(added)+1 {
				t.Fatalf("added headers %v, want %v plus failed_at", headerKeys(gotAdded), headerKeys(added))
			}
			for i, h := range added {
				if gotAdded[i].Key != h.Key || !bytes.Equal(gotAdded[i].Value, h.Value) {
					t.Errorf("added header %d = %q:%q, want %q:%q", i, gotAdded[i].Key, gotAdded[i].Value, h.Key, h.Value)
				}
			}
			fa := gotAdded[len(gotAdded)-1]
			at, err := time.Parse(time.RFC3339Nano, string(fa.Value))
			if fa.Key != "failed_at" || err != nil || at.Location() != time.UTC ||
				at.Before(started.Truncate(time.Second)) || at.After(finished) {
				t.Errorf("failed_at header %q:%q, want an RFC 3339 UTC time during the test (%v)", fa.Key, fa.Value, err)
			}
			if r := header(d, "error_reason"); len(r) > kafka.MaxErrorReasonBytes || !utf8.ValidString(r) {
				t.Errorf("error_reason is %d bytes, valid UTF-8 %v; want ≤ %d, valid", len(r), utf8.ValidString(r), kafka.MaxErrorReasonBytes)
			}
		})
	}
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func headerKeys(hs []kgo.RecordHeader) []string {
	var ks []string
	for _, h := range hs {
		ks = append(ks, h.Key)
	}
	return ks
}

func TestConsumerDLQWriteFailure(t *testing.T) {
	cases := []struct {
		name string
		err  *kerr.Error
	}{
		{"retriable broker error", kerr.NotEnoughReplicas},
		{"non-retriable broker error", kerr.PolicyViolation},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newDLQFailing(t, tc.err)
			kc, faulted, rec, c, stop, failures := f.kc, f.faulted, f.rec, f.c, f.stop, &f.failures

			kafkatest.Eventually(t, 20*time.Second, func() bool { return kc.Committed(ctGroup, ctTopic)[0] == 1 },
				"the record before the poison one committed")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := faulted.Wait(ctx, 3); err != nil {
				t.Fatalf("DLQ produce not attempted 3 times: %v", err)
			}
			// Commits run every second; give one a chance to be wrong.
			hits := faulted.Hits()
			kafkatest.Eventually(t, 20*time.Second, func() bool { return faulted.Hits() >= hits+2 }, "more DLQ attempts")
			if got := kc.Committed(ctGroup, ctTopic)[0]; got != 1 {
				t.Fatalf("committed offset %d while the DLQ write fails, want 1 (the poison record's)", got)
			}
			if n := rec.okCount(); n != 1 {
				t.Fatalf("%d records handled while the partition waits for the DLQ, want 1", n)
			}
			if end := sum(kc.EndOffsets(ctDLQ)); end != 0 {
				t.Fatalf("DLQ has %d records while failing", end)
			}
			if st := c.Status(); st.DeadLettered != 0 {
				t.Errorf("Status.DeadLettered = %d before the DLQ acknowledged", st.DeadLettered)
			}
			// The blocked partition is visible: status, last error, hook.
			kafkatest.Eventually(t, 20*time.Second, func() bool { return failures.Load() >= 1 }, "failed DLQ writes reported")
			if st := c.Status(); st.DLQBlocked != 1 || !strings.Contains(st.LastError, "dead-letter write to "+ctDLQ+" failed") {
				t.Errorf("Status = %+v, want 1 partition blocked on the DLQ and its error", st)
			}

			faulted.Remove()
			kafkatest.Eventually(t, 30*time.Second, func() bool { return kc.Committed(ctGroup, ctTopic)[0] == 3 },
				"all records committed after the DLQ recovers")
			if st := c.Status(); st.DLQBlocked != 0 {
				t.Errorf("Status.DLQBlocked = %d after the DLQ recovered", st.DLQBlocked)
			}
			stop()
			f.checkPoisonDeadLettered(t)
			if calls, _ := rec.snapshot(); len(calls) != 3 {
				t.Errorf("handler called %d times, want 3 (a DLQ retry does not re-run the handler)", len(calls))
			}
		})
	}
}

func TestConsumerRedeliversUncommitted(t *testing.T) {
	kc := kafkatest.New(t, 2, []string{ctTopic, ctDLQ})
	var recs []*kgo.Record
	for i := range 10 {
		recs = append(recs, &kgo.Record{Topic: ctTopic, Partition: int32(i % 2), Value: fmt.Appendf(nil, "ok|%d", i)})
	}
	kc.Produce(recs...)
	commits := kc.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit}, Group: ctGroup, Err: kerr.UnknownServerError, Count: -1})

	first := newRecorder()
	c1 := ctNew(t, ctConfig(kc), first.handler("first"))
	stop1 := ctRun(t, c1)
	kafkatest.Eventually(t, 20*time.Second, func() bool { return first.okCount() == 10 }, "first consumer handles all")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := commits.Wait(ctx, 1); err != nil {
		t.Fatalf("no commit attempted: %v", err)
	}
	stop1() // its final commit fails too
	if got := kc.Committed(ctGroup, ctTopic); len(got) != 0 {
		t.Fatalf("committed %v despite failing commits", got)
	}
	if st := c1.Status(); !strings.Contains(st.LastError, "commit") || st.LastErrorAt == nil {
		t.Errorf("Status.LastError = %q, want the commit failure", st.LastError)
	}
	commits.Remove()

	second := newRecorder()
	c2 := ctNew(t, ctConfig(kc), second.handler("second"))
	stop2 := ctRun(t, c2)
	kafkatest.Eventually(t, 20*time.Second, func() bool { return second.okCount() == 10 },
		"second consumer gets the uncommitted records again")
	stop2()
	_, a := first.snapshot()
	_, b := second.snapshot()
	key := func(c ctCall) string { return fmt.Sprintf("%d/%d", c.partition, c.offset) }
	var ka, kb []string
	for _, c := range a {
		ka = append(ka, key(c))
	}
	for _, c := range b {
		kb = append(kb, key(c))
	}
	slices.Sort(ka)
	slices.Sort(kb)
	if !slices.Equal(ka, kb) {
		t.Errorf("redelivered %v, want the same records %v", kb, ka)
	}
	if got := kc.Committed(ctGroup, ctTopic); got[0] != 5 || got[1] != 5 {
		t.Errorf("committed %v after the second run, want 5 on both partitions", got)
	}
}

// TestConsumerPacesFailedCommits has every offset commit fail while
// records finish one by one, and checks that the consumer does not ask the
// broker again for each of them: commits follow finished records at once
// only while they succeed.
func TestConsumerPacesFailedCommits(t *testing.T) {
	const records = 60
	kc := kafkatest.New(t, 1, []string{ctTopic, ctDLQ})
	var recs []*kgo.Record
	for i := range records {
		recs = append(recs, &kgo.Record{Topic: ctTopic, Partition: 0, Value: fmt.Appendf(nil, "ok|%d", i)})
	}
	kc.Produce(recs...)
	commits := kc.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit}, Group: ctGroup, Err: kerr.UnknownServerError, Count: -1})
	defer commits.Remove()

	rec := newRecorder()
	rec.delay = 5 * time.Millisecond
	c := ctNew(t, ctConfig(kc), rec.handler("paced"))
	start := time.Now()
	stop := ctRun(t, c)
	kafkatest.Eventually(t, 20*time.Second, func() bool { return rec.okCount() == records }, "consumer handles all")
	took := time.Since(start)
	attempts := commits.Hits()
	stop()
	// One attempt per 100 ms pause, plus the first; a consumer that tried
	// again for every finished record would have made about one per record.
	if limit := int(took/(100*time.Millisecond)) + 2; attempts > limit {
		t.Errorf("%d commit attempts while %d records finished in %s, want at most %d", attempts, records, took, limit)
	}
	if attempts == 0 {
		t.Error("no commit attempted")
	}
}

func TestConsumerRebalance(t *testing.T) {
	const partitions, keys, perPhase = 6, 12, 20 // records per key per phase
	kc := kafkatest.New(t, partitions, []string{ctTopic, ctDLQ})
	next := make([]int, keys)
	produce := func() {
		var recs []*kgo.Record
		for range perPhase {
			for k := range keys {
				recs = append(recs, &kgo.Record{Topic: ctTopic, Partition: int32(k % partitions),
					Key: fmt.Appendf(nil, "k%d", k), Value: fmt.Appendf(nil, "seq|%d:%d", k, next[k])})
				next[k]++
			}
		}
		kc.Produce(recs...)
	}
	cfg := ctConfig(kc)
	fast := kafka.WithClientOpts(kgo.HeartbeatInterval(100 * time.Millisecond))

	rec := newRecorder()
	rec.delay = time.Millisecond
	produce()
	a := ctNew(t, cfg, rec.handler("a"), fast)
	stopA := ctRun(t, a)
	kafkatest.Eventually(t, 20*time.Second, func() bool { return rec.okCount() >= keys*perPhase/4 }, "a started")

	b := ctNew(t, cfg, rec.handler("b"), fast)
	ctRun(t, b)
	produce()
	kafkatest.Eventually(t, 30*time.Second, func() bool {
		return len(a.Status().Assigned[ctTopic]) == partitions/2 && len(b.Status().Assigned[ctTopic]) == partitions/2
	}, "partitions shared between a and b")
	kafkatest.Eventually(t, 30*time.Second, func() bool { return rec.okCount() >= keys*perPhase*3/2 }, "progress with two")

	stopA() // mid-stream: b takes a's partitions over
	produce()
	total := keys * perPhase * 3
	handledAll := func() bool {
		_, ok := rec.snapshot()
		seen := map[string]bool{}
		for _, c := range ok {
			seen[c.value] = true
		}
		return len(seen) == total
	}
	kafkatest.Eventually(t, 30*time.Second, handledAll, "every record handled at least once")
	kafkatest.Eventually(t, 20*time.Second, func() bool {
		return sum(kc.Committed(ctGroup, ctTopic)) == int64(total)
	}, "everything committed")

	_, ok := rec.snapshot()
	handled := make([]map[int]bool, keys)
	for k := range handled {
		handled[k] = map[int]bool{}
	}
	last := map[string]int{} // consumer/key → last seq it handled
	dups := 0
	for _, c := range ok { // in the order handling finished
		var k, s int
		if _, err := fmt.Sscanf(c.value, "seq|%d:%d", &k, &s); err != nil {
			t.Fatalf("bad value %q", c.value)
		}
		// No record is ever handled before its predecessor in the key:
		// whoever owns a partition starts at or before the first record
		// nobody has finished.
		if s > 0 && !handled[k][s-1] {
			t.Fatalf("key %d: %s handled seq %d before seq %d was ever handled", k, c.consumer, s, s-1)
		}
		if handled[k][s] {
			dups++
		}
		handled[k][s] = true
		// Within one consumer a key's records come in order. Neither
		// consumer here regains a partition it gave up, so there is no
		// legitimate way back.
		id := fmt.Sprintf("%s/%d", c.consumer, k)
		if prev, seen := last[id]; seen && s <= prev {
			t.Fatalf("key %d: %s handled seq %d after seq %d", k, c.consumer, s, prev)
		}
		last[id] = s
	}
	// Duplicates would be legal (at-least-once) but the graceful revoke
	// commits before handing over, so there should be none; report them.
	if dups > 0 {
		t.Logf("%d records handled twice across the handover", dups)
	}
}

func TestConsumerStartStop(t *testing.T) {
	kc := kafkatest.New(t, 2, []string{ctTopic, ctDLQ})
	rec := newRecorder()
	c := ctNew(t, ctConfig(kc), rec.handler("a"))
	var seen []kafka.State
	watch := func(want kafka.State) {
		t.Helper()
		kafkatest.Eventually(t, 20*time.Second, func() bool { return c.State() == want }, "state %q (now %q)", want, c.State())
		if len(seen) == 0 || seen[len(seen)-1] != want {
			seen = append(seen, want)
		}
	}
	watch(kafka.StateConnecting)
	ctRun(t, c)
	watch(kafka.StateRunning)

	kc.Produce(&kgo.Record{Topic: ctTopic, Value: []byte("ok|1")})
	kafkatest.Eventually(t, 20*time.Second, func() bool { return rec.okCount() == 1 }, "first record handled")

	for range 2 { // idempotent
		c.Stop()
		watch(kafka.StateStopped)
	}
	if n := kc.GroupMembers(ctGroup); n != 0 {
		t.Errorf("group has %d members after Stop, want 0 (the consumer leaves)", n)
	}
	if got := kc.Committed(ctGroup, ctTopic)[0]; got != 1 {
		t.Errorf("committed %d after Stop, want 1", got)
	}
	if st := c.Status(); len(st.Assigned) != 0 {
		t.Errorf("stopped consumer reports assigned partitions %v", st.Assigned)
	}

	kc.Produce(&kgo.Record{Topic: ctTopic, Value: []byte("ok|2")})
	for range 2 { // idempotent
		c.Start()
	}
	watch(kafka.StateRunning)
	kafkatest.Eventually(t, 20*time.Second, func() bool { return rec.okCount() == 2 }, "second record handled after Start")
	if calls, _ := rec.snapshot(); len(calls) != 2 || calls[1].value != "ok|2" {
		t.Errorf("handler calls %v, want ok|1 then ok|2 (nothing redelivered after a clean stop)", calls)
	}
	want := []kafka.State{kafka.StateConnecting, kafka.StateRunning, kafka.StateStopped, kafka.StateRunning}
	if !slices.Equal(seen, want) {
		t.Errorf("states %v, want %v", seen, want)
	}
}

// TestConsumerStartStopBeforeRun: the app waits for a broker before it
// runs the consumer; Stop then Start in that wait leave it connecting, as
// it was, not reporting "stopped" while it will consume; after Run has
// returned, Start leaves it stopped.
func TestConsumerStartStopBeforeRun(t *testing.T) {
	kc := kafkatest.New(t, 1, []string{ctTopic, ctDLQ})
	c := ctNew(t, ctConfig(kc), newRecorder().handler("a"))
	c.Stop()
	if st := c.State(); st != kafka.StateStopped {
		t.Errorf("after Stop: %q, want stopped", st)
	}
	c.Start()
	if st := c.State(); st != kafka.StateConnecting {
		t.Errorf("after Start: %q, want connecting", st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	kafkatest.Eventually(t, 20*time.Second, func() bool { return c.State() == kafka.StateRunning }, "running (now %q)", c.State())
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
	c.Stop()
	c.Start()
	if st := c.State(); st != kafka.StateStopped {
		t.Errorf("Start after Run returned: %q, want stopped", st)
	}
}

func TestConsumerUnreachableBroker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens here now

	cfg := kafka.Config{Brokers: []string{addr}, Topics: []string{ctTopic}, GroupID: ctGroup, DLQTopic: ctDLQ}
	c := ctNew(t, cfg, newRecorder().handler("a"))
	stop := ctRun(t, c)
	kafkatest.Eventually(t, 20*time.Second, func() bool { return c.Status().LastError != "" }, "unreachable broker reported")
	if st := c.Status(); st.State != kafka.StateConnecting || !strings.Contains(st.LastError, "unreachable") {
		t.Errorf("Status = %+v, want connecting with an unreachable error", st)
	}
	stop() // must return promptly although the group was never joined
	if got := c.State(); got != kafka.StateStopped {
		t.Errorf("State after Run = %q", got)
	}
}

func TestNewConsumerRejectsBadConfig(t *testing.T) {
	good := kafka.Config{Brokers: []string{"127.0.0.1:1"}, Topics: []string{"t"}, GroupID: "g", DLQTopic: "d"}
	h := func(context.Context, *kgo.Record) error { return nil }
	cases := []struct {
		name    string
		mutate  func(*kafka.Config)
		handler kafka.Handler
		wantErr string
	}{
		{"no topics", func(c *kafka.Config) { c.Topics = nil }, h, "KAFKA_TOPIC"},
		{"no group", func(c *kafka.Config) { c.GroupID = "" }, h, "KAFKA_GROUP_ID"},
		{"no dlq", func(c *kafka.Config) { c.DLQTopic = "" }, h, "KAFKA_DLQ_TOPIC"},
		{"dlq consumed", func(c *kafka.Config) { c.Topics = []string{"t", "d"} }, h, "KAFKA_DLQ_TOPIC"},
		{"bad offset reset", func(c *kafka.Config) { c.AutoOffsetReset = "middle" }, h, "KAFKA_AUTO_OFFSET_RESET"},
		{"no brokers", func(c *kafka.Config) { c.Brokers = nil }, h, "KAFKA_BROKER_URL"},
		{"nil handler", func(*kafka.Config) {}, nil, "handler"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.mutate(&cfg)
			_, err := kafka.NewConsumer(cfg, tc.handler, nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("NewConsumer error %v, want one naming %s", err, tc.wantErr)
			}
		})
	}
	if _, err := kafka.NewConsumer(good, h, nil); err != nil {
		t.Errorf("NewConsumer(good) = %v", err)
	}
}

func TestConsumerShutdown(t *testing.T) {
	cases := []struct {
		name string
		// handle is the handler; release is closed after Run's context
		// is cancelled.
		handle        func(ctx context.Context, release <-chan struct{}, started func()) error
		wantCommitted bool
		wantWarning   string // a warning logged about the in-flight record, "" = none
	}{
		{
			name: "in-flight record finishes and is committed",
			handle: func(ctx context.Context, release <-chan struct{}, started func()) error {
				started()
				<-release
				return nil
			},
			wantCommitted: true,
		},
		{
			name: "handler past the shutdown timeout is cancelled, not committed",
			handle: func(ctx context.Context, release <-chan struct{}, started func()) error {
				started()
				<-ctx.Done()
				return ctx.Err()
			},
			// Half of SHUTDOWN_TIMEOUT, as the line says: the rest is for
			// the commit and leaving the group.
			wantWarning: `msg="in-flight records did not finish within half of SHUTDOWN_TIMEOUT; cancelling them so that what did finish can still be committed (they will be delivered again)" waited=150ms shutdown_timeout=300ms`,
		},
		{
			name: "transient retries stop, not committed, not dead-lettered",
			handle: func(ctx context.Context, release <-chan struct{}, started func()) error {
				started()
				return fault.AsTransient(errors.New("db down"))
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kc := kafkatest.New(t, 1, []string{ctTopic, ctDLQ})
			kc.Produce(&kgo.Record{Topic: ctTopic, Value: []byte("x")})
			cfg := ctConfig(kc)
			cfg.ShutdownTimeout = 300 * time.Millisecond
			release, started := make(chan struct{}), make(chan struct{})
			var once sync.Once
			var logs testkit.LogBuffer
			c, err := kafka.NewConsumer(cfg, func(ctx context.Context, _ *kgo.Record) error {
				return tc.handle(ctx, release, func() { once.Do(func() { close(started) }) })
			}, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
			if err != nil {
				t.Fatalf("NewConsumer: %v", err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			errc := make(chan error, 1)
			go func() { errc <- c.Run(ctx) }()
			select {
			case <-started:
			case <-time.After(20 * time.Second):
				t.Fatal("handler never called")
			}
			cancel()
			close(release)
			select {
			case err := <-errc:
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not return")
			}
			got, ok := kc.Committed(ctGroup, ctTopic)[0]
			if tc.wantCommitted && got != 1 {
				t.Errorf("committed %d (present %v), want 1", got, ok)
			}
			if !tc.wantCommitted && ok && got != 0 {
				t.Errorf("committed %d, want nothing past the unfinished record", got)
			}
			if n := sum(kc.EndOffsets(ctDLQ)); n != 0 {
				t.Errorf("DLQ has %d records, want 0", n)
			}
			warned := strings.Contains(logs.String(), "in-flight records")
			if tc.wantWarning != "" && !strings.Contains(logs.String(), tc.wantWarning) {
				t.Errorf("logs do not have the warning %s:\n%s", tc.wantWarning, logs.String())
			}
			if tc.wantWarning == "" && warned {
				t.Errorf("logs warn about in-flight records, want no warning:\n%s", logs.String())
			}
		})
	}
}

// ctBatcher is a batch handler over a ctRecorder: records that succeed or
// fail permanently are finished in the batch (through the recorder, so the
// calls are seen alike); the batch stops at any other record, which the
// consumer must then hand to the single-record handler. A value "panic|…"
// makes the batch panic once.
type ctBatcher struct {
	rec      *ctRecorder
	mu       sync.Mutex
	sizes    []int
	panicked bool
}

func (b *ctBatcher) handle(ctx context.Context, recs []*kgo.Record, metas []*delivery.Meta) (int, []error, error) {
	b.mu.Lock()
	b.sizes = append(b.sizes, len(recs))
	b.mu.Unlock()
	for _, r := range recs {
		if strings.HasPrefix(string(r.Value), "panic|") {
			b.mu.Lock()
			first := !b.panicked
			b.panicked = true
			b.mu.Unlock()
			if first {
				panic("batch handler bug") // before any effect, as a rolled-back transaction
			}
		}
	}
	single := b.rec.handler("batch")
	errs := make([]error, len(recs))
	for i, r := range recs {
		behaviour, _, _ := strings.Cut(string(r.Value), "|")
		if behaviour == "notreached" {
			return i, errs, fmt.Errorf("%w (another batch's record failed)", kafka.ErrNotReached)
		}
		if behaviour != "ok" && behaviour != "permanent" && behaviour != "panic" {
			return i, errs, fault.AsTransient(errors.New("not for batches"))
		}
		errs[i] = single(delivery.WithMeta(ctx, metas[i]), r)
	}
	return len(recs), errs, nil
}

// TestConsumerBatchNotReached: a record the batch handler did not reach
// because the transaction it shared with other batches stopped first
// (ErrNotReached) goes to the handler as its first attempt, and no failure
// is reported for it: another batch's failure is not this record's.
func TestConsumerBatchNotReached(t *testing.T) {
	kc := kafkatest.New(t, 1, []string{ctTopic, ctDLQ})
	var recs []*kgo.Record
	for i := range 100 {
		v := "ok"
		if i == 40 || i == 41 {
			v = "notreached"
		}
		recs = append(recs, &kgo.Record{Topic: ctTopic, Partition: 0, Value: fmt.Appendf(nil, "%s|%d", v, i)})
	}
	kc.Produce(recs...)

	rec := newRecorder()
	var (
		mu     sync.Mutex
		failed []int64
	)
	observe := kafka.WithObserver(func(o kafka.Outcome) {
		if o.Err != nil {
			mu.Lock()
			failed = append(failed, o.Offset)
			mu.Unlock()
		}
	})
	c := ctNew(t, ctConfig(kc), rec.handler("single"), kafka.WithBatchHandler((&ctBatcher{rec: rec}).handle, 64), observe)
	stop := ctRun(t, c)
	kafkatest.Eventually(t, 30*time.Second, func() bool { return kc.Committed(ctGroup, ctTopic)[0] == 100 },
		"offsets committed to the end (have %v)", kc.Committed(ctGroup, ctTopic))
	stop()

	if st := c.Status(); st.Handled != 100 || st.DeadLettered != 0 {
		t.Errorf("status = %+v, want 100 handled", st)
	}
	calls, _ := rec.snapshot()
	var single []ctCall
	for _, call := range calls {
		if call.consumer == "single" {
			single = append(single, call)
		}
	}
	// 40 stops the first batch; 41 then stops the one that follows 40.
	if len(single) != 2 || single[0].offset != 40 || single[1].offset != 41 {
		t.Fatalf("single-record handler got %v, want offsets 40 and 41 once each", single)
	}
	for _, call := range single {
		if call.meta.Attempt != 1 {
			t.Errorf("offset %d: attempt %d, want 1: the batch did not reach it", call.offset, call.meta.Attempt)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failed) != 0 {
		t.Errorf("failures reported at offsets %v, want none", failed)
	}
}

// TestConsumerBatches: with a batch handler, records are handed over in
// batches; a permanent failure in a batch is dead-lettered and the batch goes
// on; a record the batch cannot finish goes to the handler with its retries;
// a panicking batch is handled record by record. Every record is finished
// once, in order, and committed.
func TestConsumerBatches(t *testing.T) {
	kc := kafkatest.New(t, 1, []string{ctTopic, ctDLQ})
	var recs []*kgo.Record
	for i := range 300 {
		v := "ok"
		switch i {
		case 50, 180:
			v = "permanent"
		case 120:
			v = "transient-2"
		case 200:
			v = "panic"
		}
		recs = append(recs, &kgo.Record{Topic: ctTopic, Partition: 0, Value: fmt.Appendf(nil, "%s|%d", v, i)})
	}
	kc.Produce(recs...)

	rec := newRecorder()
	b := &ctBatcher{rec: rec}
	c := ctNew(t, ctConfig(kc), rec.handler("single"), kafka.WithBatchHandler(b.handle, 64))
	stop := ctRun(t, c)
	kafkatest.Eventually(t, 30*time.Second, func() bool { return c.Status().Handled+c.Status().DeadLettered >= 300 },
		"all records finished (status %+v)", c.Status())
	kafkatest.Eventually(t, 10*time.Second, func() bool { return kc.Committed(ctGroup, ctTopic)[0] == 300 },
		"offsets committed to the end (have %v)", kc.Committed(ctGroup, ctTopic))
	stop()

	if st := c.Status(); st.Handled != 298 || st.DeadLettered != 2 {
		t.Errorf("status = %+v, want 298 handled and 2 dead-lettered", st)
	}
	if dlq := kc.ReadAll(ctDLQ, 2, 10*time.Second); len(dlq) != 2 || header(dlq[0], "error_kind") != "test_reason" {
		t.Errorf("DLQ = %d records, want the 2 permanent failures", len(dlq))
	}
	calls, ok := rec.snapshot()
	var last int64 = -1
	for _, call := range ok {
		if call.offset <= last {
			t.Fatalf("offset %d handled after %d", call.offset, last)
		}
		last = call.offset
	}
	by := map[string][]string{}
	for _, call := range calls {
		by[call.consumer] = append(by[call.consumer], call.value)
	}
	if got := by["single"]; len(got) != 4 || !slices.Equal(got[:3], []string{"transient-2|120", "transient-2|120", "transient-2|120"}) {
		t.Errorf("single-record handler got %v, want the transient record's three attempts and the panicking batch's first record", got)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.sizes) < 2 || slices.Max(b.sizes) < 2 || slices.Max(b.sizes) > 64 {
		t.Errorf("batch sizes %v, want batches of 2..64 records", b.sizes)
	}
}

// TestConsumerCorrelationIDPerRecord: a record without a correlation_id
// header is given one id, which every log line about it, every attempt
// (the batch's and the handler's) and its DLQ copy carry.
func TestConsumerCorrelationIDPerRecord(t *testing.T) {
	kc := kafkatest.New(t, 1, []string{ctTopic, ctDLQ})
	values := []string{"ok|0", "transient-1|1", "flaky|2", "permanent|3"}
	for _, v := range values {
		kc.Produce(&kgo.Record{Topic: ctTopic, Partition: 0, Value: []byte(v)})
	}
	var logs testkit.LogBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rec := newRecorder()
	c, err := kafka.NewConsumer(ctConfig(kc), rec.handler("single"), logger,
		kafka.WithBatchHandler((&ctBatcher{rec: rec}).handle, 64))
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	stop := ctRun(t, c)
	kafkatest.Eventually(t, 30*time.Second, func() bool { return kc.Committed(ctGroup, ctTopic)[0] == int64(len(values)) },
		"offsets committed to the end (have %v)", kc.Committed(ctGroup, ctTopic))
	stop()

	ids := map[int64]map[string][]string{} // offset → correlation id → where it was seen
	see := func(offset int64, id, where string) {
		if ids[offset] == nil {
			ids[offset] = map[string][]string{}
		}
		ids[offset][id] = append(ids[offset][id], where)
	}
	for line := range strings.Lines(logs.String()) {
		var r struct {
			Msg           string `json:"msg"`
			Offset        *int64 `json:"offset"`
			CorrelationID string `json:"correlation_id"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if r.Offset != nil {
			see(*r.Offset, r.CorrelationID, "log: "+r.Msg)
		}
	}
	calls, _ := rec.snapshot()
	for _, call := range calls {
		see(call.offset, call.meta.CorrelationID, fmt.Sprintf("handler (%s) attempt %d", call.consumer, call.meta.Attempt))
	}
	dlq := kc.ReadAll(ctDLQ, 2, 10*time.Second)
	if len(dlq) != 2 {
		t.Fatalf("DLQ has %d records, want 2", len(dlq))
	}
	for _, d := range dlq {
		off, _ := strconv.ParseInt(header(d, kafka.HeaderOriginalOffset), 10, 64)
		see(off, header(d, kafka.HeaderCorrelationID), "DLQ header")
	}
	for off := range int64(len(values)) {
		t.Run(values[off], func(t *testing.T) {
			seen := ids[off]
			if len(seen) != 1 {
				t.Fatalf("%d correlation ids, want 1: %v", len(seen), seen)
			}
			for id := range seen {
				if _, err := uuid.Parse(id); err != nil {
					t.Errorf("correlation id %q is not a UUID: %v", id, err)
				}
			}
		})
	}
}

// dlqFailing is a consumer of ok|0, permanent|1, ok|2 on one partition
// whose dead-letter writes fail with err until faulted is removed.
type dlqFailing struct {
	kc       *kafkatest.Cluster
	faulted  *kfake.FaultHandle
	rec      *ctRecorder
	c        *kafka.Consumer
	stop     func()
	failures atomic.Int32 // failed dead-letter writes reported
}

func newDLQFailing(t *testing.T, err *kerr.Error) *dlqFailing {
	t.Helper()
	f := &dlqFailing{kc: kafkatest.New(t, 1, []string{ctTopic, ctDLQ}), rec: newRecorder()}
	f.faulted = f.kc.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: ctDLQ, Err: err, Count: -1})
	f.kc.Produce(
		&kgo.Record{Topic: ctTopic, Value: []byte("ok|0")},
		&kgo.Record{Topic: ctTopic, Value: []byte("permanent|1")},
		&kgo.Record{Topic: ctTopic, Value: []byte("ok|2")},
	)
	// franz-go retries a retriable produce error after a metadata
	// refresh, at most every MetadataMinAge (5s by default).
	f.c = ctNew(t, ctConfig(f.kc), f.rec.handler("a"), kafka.WithDLQClientOpts(kgo.MetadataMinAge(50*time.Millisecond)),
		kafka.WithDLQWriteFailures(func(error) { f.failures.Add(1) }))
	f.stop = ctRun(t, f.c)
	return f
}

// checkPoisonDeadLettered checks that the DLQ holds permanent|1, once.
func (f *dlqFailing) checkPoisonDeadLettered(t *testing.T) {
	t.Helper()
	if end := sum(f.kc.EndOffsets(ctDLQ)); end != 1 {
		t.Errorf("DLQ has %d records, want exactly 1", end)
	}
	dl := f.kc.ReadAll(ctDLQ, 1, 10*time.Second)
	if len(dl) != 1 || string(dl[0].Value) != "permanent|1" || header(dl[0], kafka.HeaderOriginalOffset) != "1" {
		t.Errorf("DLQ records %v, want the poison record", dl)
	}
}
