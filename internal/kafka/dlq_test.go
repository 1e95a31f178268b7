package kafka_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/orderd/orderd/internal/delivery"
	"github.com/orderd/orderd/internal/kafka"
	"github.com/orderd/orderd/internal/kafka/kafkatest"
)

func TestCutUTF8(t *testing.T) {
	cases := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"short", "abc", 5, "abc"},
		{"exact", "abcde", 5, "abcde"},
		{"ascii cut", "abcdef", 3, "abc"},
		{"zero", "abc", 0, ""},
		{"negative", "abc", -1, ""},
		{"empty", "", 3, ""},
		{"two-byte rune fits", "aé", 3, "aé"},
		{"two-byte rune split", "aéb", 2, "a"},
		{"three-byte rune split after 1", "a€b", 2, "a"},
		{"three-byte rune split after 2", "a€b", 3, "a"},
		{"three-byte rune fits", "a€b", 4, "a€"},
		{"four-byte rune split after 3", "a😀b", 4, "a"},
		{"four-byte rune fits", "a😀b", 5, "a😀"},
		{"only a split rune", "😀", 3, ""},
		{"rune boundary at max", "éé", 2, "é"},
		{"stray continuation byte at max kept", "é\x80\x80", 3, "é\x80"},
		{"invalid byte kept", "a\xffb", 2, "a\xff"},
		{"replacement char split", "a\uFFFD", 3, "a"},
		{"many multibyte", strings.Repeat("é", 400), 500, strings.Repeat("é", 250)},
		{"odd limit on multibyte", strings.Repeat("é", 400), 499, strings.Repeat("é", 249)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := kafka.CutUTF8(tc.in, tc.max)
			if got != tc.want {
				t.Errorf("CutUTF8(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
			}
			if len(got) > max(tc.max, 0) || !strings.HasPrefix(tc.in, got) {
				t.Errorf("CutUTF8(%q, %d) = %q: not a prefix within the limit", tc.in, tc.max, got)
			}
			if utf8.ValidString(tc.in) && !utf8.ValidString(got) {
				t.Errorf("CutUTF8(%q, %d) = %q split a rune", tc.in, tc.max, got)
			}
		})
	}
}

func dlqFor(t *testing.T, kc *kafkatest.Cluster, extra ...kgo.Opt) *kafka.DLQ {
	t.Helper()
	opts := append([]kgo.Opt{kgo.SeedBrokers(kc.Addrs()...), kgo.MetadataMinAge(50 * time.Millisecond)}, kafka.DLQProducerOpts()...)
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	d, err := kafka.NewDLQ(cl, kafka.Config{DLQTopic: ctDLQ, RetryInitial: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDLQPublish(t *testing.T) {
	kc := kafkatest.New(t, 1, []string{ctDLQ})
	d := dlqFor(t, kc)
	src := &kgo.Record{
		Topic: "orders", Partition: 4, Offset: 1234, Timestamp: time.Date(2024, 2, 29, 23, 59, 58, 7e6, time.FixedZone("X", 3600)),
		Key: nil, Value: []byte(`{"id":"e1"}`),
		Headers: []kgo.RecordHeader{{Key: "x", Value: []byte{0, 1, 2}}},
	}
	cases := []struct {
		name      string
		meta      *delivery.Meta
		err       error
		kind      string
		attempts  int
		wantAdded map[string]string // all headers after the original ones, but failed_at
	}{
		{
			name: "full meta", meta: &delivery.Meta{CorrelationID: "c-1", EventID: "e1", EventName: "OrderCreated"},
			err: errors.New("boom"), kind: "malformed_json", attempts: 1,
			wantAdded: map[string]string{
				"correlation_id": "c-1", "error_reason": "boom", "error_kind": "malformed_json",
				"original_topic": "orders", "original_partition": "4", "original_offset": "1234",
				"original_timestamp": "2024-02-29T22:59:58.007Z", "event_id": "e1", "event_name": "OrderCreated", "attempts": "1",
			},
		},
		{
			name: "nil meta, nil error", meta: nil, err: nil, kind: kafka.ErrorKindExhausted, attempts: 5,
			wantAdded: map[string]string{
				"error_reason": "unknown error", "error_kind": "exhausted",
				"original_topic": "orders", "original_partition": "4", "original_offset": "1234",
				"original_timestamp": "2024-02-29T22:59:58.007Z", "attempts": "5",
			},
		},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := d.Publish(ctx, src, tc.meta, tc.err, tc.kind, tc.attempts); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			got := kc.ReadAll(ctDLQ, i+1, 10*time.Second)
			if len(got) != i+1 {
				t.Fatalf("DLQ has %d records, want %d", len(got), i+1)
			}
			r := got[i]
			if r.Key != nil || !bytes.Equal(r.Value, src.Value) {
				t.Errorf("key %v value %q, want nil key and the original value", r.Key, r.Value)
			}
			if r.Headers[0].Key != "x" || !bytes.Equal(r.Headers[0].Value, []byte{0, 1, 2}) {
				t.Errorf("first header %v, want the original", r.Headers[0])
			}
			added := map[string]string{}
			for _, h := range r.Headers[1:] {
				if _, dup := added[h.Key]; dup {
					t.Errorf("header %q added twice", h.Key)
				}
				added[h.Key] = string(h.Value)
			}
			if _, err := time.Parse(time.RFC3339Nano, added["failed_at"]); err != nil || !strings.HasSuffix(added["failed_at"], "Z") {
				t.Errorf("failed_at %q is not RFC 3339 UTC: %v", added["failed_at"], err)
			}
			delete(added, "failed_at")
			if len(added) != len(tc.wantAdded) {
				t.Errorf("added headers %v, want %v", added, tc.wantAdded)
			}
			for k, v := range tc.wantAdded {
				if added[k] != v {
					t.Errorf("header %s = %q, want %q", k, added[k], v)
				}
			}
		})
	}
}

func TestDLQPublishRetriesUntilCancelled(t *testing.T) {
	kc := kafkatest.New(t, 1, []string{ctDLQ})
	faulted := kc.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: ctDLQ, Err: kerr.PolicyViolation, Count: -1})
	d := dlqFor(t, kc)
	src := &kgo.Record{Topic: "orders", Value: []byte("v")}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Publish(ctx, src, nil, errors.New("bad"), "bad", 1) }()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := faulted.Wait(wctx, 3); err != nil {
		t.Fatalf("Publish did not retry: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Publish = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Publish did not return after cancel")
	}
	if n := sum(kc.EndOffsets(ctDLQ)); n != 0 {
		t.Errorf("DLQ has %d records after failed publishing", n)
	}

	faulted.Remove()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if err := d.Publish(ctx2, src, nil, errors.New("bad"), "bad", 1); err != nil {
		t.Fatalf("Publish after recovery: %v", err)
	}
	if n := sum(kc.EndOffsets(ctDLQ)); n != 1 {
		t.Errorf("DLQ has %d records, want 1", n)
	}
}

func TestNewDLQRejects(t *testing.T) {
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kafka.NewDLQ(nil, kafka.Config{DLQTopic: "d"}, nil); err == nil {
		t.Error("NewDLQ(nil client) succeeded")
	}
	if _, err := kafka.NewDLQ(cl, kafka.Config{}, nil); err == nil || !strings.Contains(err.Error(), "KAFKA_DLQ_TOPIC") {
		t.Errorf("NewDLQ(no topic) = %v, want an error naming KAFKA_DLQ_TOPIC", err)
	}
}

// TestDLQHeadersOfARedrivenRecord: a record sent back from the DLQ that
// fails again carries each DLQ header once, with this failure's value, and
// its other headers as they were; an empty correlation_id gives way to the
// one the service used.
func TestDLQHeadersOfARedrivenRecord(t *testing.T) {
	kc := kafkatest.New(t, 1, []string{ctDLQ})
	d := dlqFor(t, kc)
	src := &kgo.Record{Topic: "orders", Value: []byte(`{"id":"e1"}`), Headers: []kgo.RecordHeader{
		{Key: "x", Value: []byte("1")},
		{Key: "correlation_id", Value: nil},
		{Key: "error_reason", Value: []byte("the first failure")},
		{Key: "attempts", Value: []byte("9")},
		{Key: "y", Value: []byte("2")},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Publish(ctx, src, &delivery.Meta{CorrelationID: "c-2"}, errors.New("the second failure"), "bad", 3); err != nil {
		t.Fatal(err)
	}
	got := kc.ReadAll(ctDLQ, 1, 10*time.Second)
	if len(got) != 1 {
		t.Fatalf("DLQ has %d records", len(got))
	}
	seen := map[string][]string{}
	var order []string
	for _, h := range got[0].Headers {
		seen[h.Key] = append(seen[h.Key], string(h.Value))
		order = append(order, h.Key)
	}
	for k, want := range map[string]string{"x": "1", "y": "2", "correlation_id": "c-2", "error_reason": "the second failure", "attempts": "3"} {
		if v := seen[k]; len(v) != 1 || v[0] != want {
			t.Errorf("header %s = %q, want once %q", k, v, want)
		}
	}
	if order[0] != "x" || order[1] != "y" {
		t.Errorf("headers in order %v, want the original x and y first", order)
	}
}
