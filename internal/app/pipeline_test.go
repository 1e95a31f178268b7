package app_test

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/orderd/orderd/internal/app"
	"github.com/orderd/orderd/internal/app/apptest"
	"github.com/orderd/orderd/internal/events"
	"github.com/orderd/orderd/internal/kafka"
	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/sqlstore"
	"github.com/orderd/orderd/internal/sqlstore/sqlstoretest"
	"github.com/orderd/orderd/internal/testkit"
)

const seedEvent = `{"id":"550e8400-e29b-41d4-a716-446655440000","name":"OrderCreated","data":{"orderId":"12345","customerId":"cust-789","totalAmount":150.0,"currency":"INR","status":"CREATED","items":[{"productId":"prod-001","quantity":2,"unitPrice":75.0,"totalPrice":150.0}],"createdAt":"2026-01-05T11:34:53.145Z"}}`

func client(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.ProducerBatchMaxBytes(4 << 20)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func produce(t *testing.T, cl *kgo.Client, recs ...*kgo.Record) {
	t.Helper()
	for _, r := range recs {
		if r.Topic == "" {
			r.Topic = "order-events"
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// readDLQ returns every record on the DLQ topic once there are at least want.
func readDLQ(t *testing.T, addr string, want int) []*kgo.Record {
	t.Helper()
	cl := client(t, addr, kgo.ConsumeTopics("orders-dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxPartitionBytes(32<<20), kgo.FetchMaxBytes(64<<20))
	var got []*kgo.Record
	deadline := time.Now().Add(30 * time.Second)
	for len(got) < want {
		if time.Now().After(deadline) {
			t.Fatalf("DLQ has %d records, want %d", len(got), want)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { got = append(got, r) })
	}
	// Anything more arriving shortly after would be a duplicate.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, r) })
	return got
}

func header(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

func orderStatus(t *testing.T, st *sqlstore.Store, id string) order.Status {
	t.Helper()
	o, err := st.GetOrder(context.Background(), id)
	if err != nil {
		return ""
	}
	return o.Status
}

func TestPipelineEndToEnd(t *testing.T) {
	for _, dialect := range sqlstoretest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			in := apptest.Start(t, apptest.Options{Dialect: dialect})
			st := in.App.Store()
			ctx := context.Background()
			if _, err := st.SetStock(ctx, "prod-001", 10); err != nil {
				t.Fatal(err)
			}
			cl := client(t, in.App.BrokerAddr())

			// A valid event and its exact duplicate: one effect.
			corr := []kgo.RecordHeader{{Key: "correlation_id", Value: []byte("corr-seed")}}
			produce(t, cl,
				&kgo.Record{Key: []byte("12345"), Value: []byte(seedEvent), Headers: corr},
				&kgo.Record{Key: []byte("12345"), Value: []byte(seedEvent), Headers: corr})
			apptest.Eventually(t, 20*time.Second, "seed order processed", func() bool {
				return orderStatus(t, st, "12345") == order.StatusProcessing
			})
			o, _ := st.GetOrder(ctx, "12345")
			if *o.ShippingCost != 0 || *o.Discount != 1500 || *o.FinalTotal != 13500 {
				t.Errorf("seed order amounts = %d %d %d", *o.ShippingCost, *o.Discount, *o.FinalTotal)
			}

			// Poison and rule-rejected records, each with headers that must survive byte for byte.
			odd := []kgo.RecordHeader{{Key: "trace", Value: []byte{0x00, 0xff, 0x10}}, {Key: "empty", Value: nil}, {Key: "correlation_id", Value: []byte("corr-bad")}}
			fraud := `{"id":"ev-fraud","name":"OrderCreated","data":{"orderId":"big-1","customerId":"c","totalAmount":10000.01,"currency":"USD","items":[{"productId":"x","quantity":1,"unitPrice":10000.01,"totalPrice":10000.01}]}}`
			bad := []*kgo.Record{
				{Key: []byte("k-malformed"), Value: []byte(`{"id": "1", "name": `), Headers: odd},
				{Key: nil, Value: []byte("{\"id\":\"2\",\"name\":\"OrderCreated\",\"data\":{\"x\":\"\xff\xfe\"}}"), Headers: odd},
				{Key: []byte("k-unknown"), Value: []byte(`{"id":"ev-unknown","name":"OrderTeleported","data":{"orderId":"12345"}}`), Headers: odd},
				{Key: []byte("big-1"), Value: []byte(fraud), Headers: odd},
				{Key: []byte("12345"), Value: []byte(`{"id":"ev-ship-early","name":"OrderDelivered","data":{"orderId":"12345"}}`), Headers: odd},
				{Key: []byte("k-no-data"), Value: []byte(`{"id":"ev-no-data","name":"OrderCreated"}`), Headers: odd},
			}
			wantKind := map[string]string{"k-malformed": "malformed_json", "": "invalid_utf8", "k-unknown": "unknown_event", "big-1": "fraud_review", "12345": "invalid_transition", "k-no-data": "invalid_envelope"}
			produce(t, cl, bad...)

			// The cancellation of the seed order: refund 128.25.
			produce(t, cl, &kgo.Record{Key: []byte("12345"), Value: []byte(`{"id":"ev-cancel","name":"OrderCancelled","data":{"orderId":"12345","reason":"changed my mind"}}`)})
			apptest.Eventually(t, 20*time.Second, "seed order cancelled", func() bool {
				return orderStatus(t, st, "12345") == order.StatusCancelled
			})
			o, _ = st.GetOrder(ctx, "12345")
			if *o.RefundAmount != 12825 || o.CancellationReason != "changed my mind" {
				t.Errorf("refund = %d, reason %q", *o.RefundAmount, o.CancellationReason)
			}
			if s, _ := st.GetStock(ctx, "prod-001"); s.Available != 10 || s.Reserved != 0 {
				t.Errorf("stock after cancel = %+v, want 10 available, 0 reserved (reserved once, released once)", s)
			}

			dlq := readDLQ(t, in.App.BrokerAddr(), len(bad))
			if len(dlq) != len(bad) {
				t.Fatalf("DLQ has %d records, want %d (no duplicates, nothing valid)", len(dlq), len(bad))
			}
			for _, d := range dlq {
				var orig *kgo.Record
				for _, b := range bad {
					if bytes.Equal(b.Key, d.Key) && bytes.Equal(b.Value, d.Value) {
						orig = b
					}
				}
				if orig == nil {
					t.Errorf("DLQ record with key %q is not byte-identical to any bad record", d.Key)
					continue
				}
				if len(d.Headers) < len(odd) {
					t.Fatalf("DLQ headers = %v", d.Headers)
				}
				for i, h := range odd {
					if d.Headers[i].Key != h.Key || !bytes.Equal(d.Headers[i].Value, h.Value) {
						t.Errorf("header %d = %q:%x, want %q:%x", i, d.Headers[i].Key, d.Headers[i].Value, h.Key, h.Value)
					}
				}
				kind, _ := header(d, kafka.HeaderErrorKind)
				if kind != wantKind[string(d.Key)] {
					t.Errorf("key %q: error_kind = %q, want %q", d.Key, kind, wantKind[string(d.Key)])
				}
				for _, k := range []string{kafka.HeaderErrorReason, kafka.HeaderOriginalTopic, kafka.HeaderOriginalPartition, kafka.HeaderOriginalOffset, kafka.HeaderOriginalTimestamp, kafka.HeaderAttempts, kafka.HeaderFailedAt} {
					if v, ok := header(d, k); !ok || v == "" {
						t.Errorf("key %q: header %s missing", d.Key, k)
					}
				}
				if v, _ := header(d, kafka.HeaderOriginalTopic); v != "order-events" {
					t.Errorf("original_topic = %q", v)
				}
				if v, _ := header(d, kafka.HeaderOriginalOffset); v != strconv.FormatInt(orig.Offset, 10) {
					t.Errorf("original_offset = %q, want %d", v, orig.Offset)
				}
				if v, _ := header(d, kafka.HeaderCorrelationID); v != "corr-bad" {
					t.Errorf("correlation_id = %q, want the original's", v)
				}
				// A bad envelope is named by what could be read of it.
				if id := map[string]string{"big-1": "ev-fraud", "k-no-data": "ev-no-data"}[string(d.Key)]; id != "" {
					if v, _ := header(d, kafka.HeaderEventID); v != id {
						t.Errorf("key %q: event_id = %q, want %q", d.Key, v, id)
					}
					if v, _ := header(d, kafka.HeaderEventName); v != "OrderCreated" {
						t.Errorf("key %q: event_name = %q", d.Key, v)
					}
				}
			}
			// The fraud order is kept, unprocessed, for review.
			if got := orderStatus(t, st, "big-1"); got != order.StatusNew {
				t.Errorf("fraud order status = %q, want new (kept for review)", got)
			}
		})
	}
}

// committed returns the group's committed offsets summed over partitions, and
// the end offsets summed likewise.
func committed(t *testing.T, addr string) (int64, int64) {
	t.Helper()
	adm := kadm.NewClient(client(t, addr))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	offs, err := adm.FetchOffsets(ctx, "order-processing-group")
	if err != nil {
		return -1, -1
	}
	ends, err := adm.ListEndOffsets(ctx, "order-events")
	if err != nil {
		return -1, -1
	}
	var c, e int64
	offs.Each(func(o kadm.OffsetResponse) { c += o.At })
	ends.Each(func(o kadm.ListedOffset) { e += o.Offset })
	return c, e
}

func sampleOrders(t *testing.T, cl *kgo.Client, prefix string, n int, qty int) {
	t.Helper()
	var recs []*kgo.Record
	for i := range n {
		id := fmt.Sprintf("%s-%d", prefix, i)
		v := fmt.Sprintf(`{"id":"ev-%s","name":"OrderCreated","data":{"orderId":"%s","customerId":"c","totalAmount":%d.00,"currency":"USD","items":[{"productId":"stocked","quantity":%d,"unitPrice":10.00,"totalPrice":%d.00}]}}`, id, id, 10*qty, qty, 10*qty)
		recs = append(recs, &kgo.Record{Key: []byte(id), Value: []byte(v)})
	}
	produce(t, cl, recs...)
}

// TestRedeliveryAfterEffectBeforeCommit kills the consumer between the effect
// and the offset commit (every OffsetCommit fails), then starts another
// instance on the same broker and database: the records are redelivered and
// acknowledged without a second effect.
func TestRedeliveryAfterEffectBeforeCommit(t *testing.T) {
	for _, dialect := range sqlstoretest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			b := apptest.Broker(t, 3)
			dbURL := sqlstoretest.URL(t, dialect)
			var failCommits atomic.Bool
			failCommits.Store(true)
			b.Cluster().ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
				b.Cluster().KeepControl()
				if !failCommits.Load() {
					return nil, nil, false
				}
				r := req.(*kmsg.OffsetCommitRequest)
				resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
				for _, rt := range r.Topics {
					st := kmsg.NewOffsetCommitResponseTopic()
					st.Topic = rt.Topic
					for _, p := range rt.Partitions {
						sp := kmsg.NewOffsetCommitResponseTopicPartition()
						sp.Partition = p.Partition
						sp.ErrorCode = kerrNotCoordinator
						st.Partitions = append(st.Partitions, sp)
					}
					resp.Topics = append(resp.Topics, st)
				}
				return resp, nil, true
			})

			first := apptest.Start(t, apptest.Options{DatabaseURL: dbURL, BrokerAddr: b.Addr()})
			st := first.App.Store()
			const n, qty = 30, 2
			if _, err := st.SetStock(context.Background(), "stocked", 1000); err != nil {
				t.Fatal(err)
			}
			sampleOrders(t, client(t, b.Addr()), "redeliver", n, qty)
			apptest.Eventually(t, 30*time.Second, "all orders processed", func() bool {
				s, _ := st.GetStock(context.Background(), "stocked")
				return s.Reserved == n*qty
			})
			first.Stop(t)
			if c, _ := committed(t, b.Addr()); c > 0 {
				t.Fatalf("offsets were committed (%d) although every commit failed", c)
			}

			failCommits.Store(false)
			second := apptest.Start(t, apptest.Options{DatabaseURL: dbURL, BrokerAddr: b.Addr()})
			apptest.Eventually(t, 30*time.Second, "offsets committed by the second instance", func() bool {
				c, e := committed(t, b.Addr())
				return e == n && c == e
			})
			if h := second.App.Consumer().Status().Handled; h != n {
				t.Errorf("second instance handled %d records, want all %d redelivered", h, n)
			}
			s, _ := second.App.Store().GetStock(context.Background(), "stocked")
			if s.Reserved != n*qty || s.Available != 1000-n*qty {
				t.Errorf("stock = %+v: a redelivered event had a second effect", s)
			}
		})
	}
}

// kerrNotCoordinator makes the client retry elsewhere and eventually give up
// on the commit, as it would while a coordinator moves.
const kerrNotCoordinator = 16

// TestTwoInstancesOneLeaves runs two instances in one group on six
// partitions; one leaves mid-stream. Every order's three events (created,
// shipped, delivered — keyed by order id) are applied exactly once and in
// order: a shipped or delivered event handled before its predecessor would be
// refused and dead-lettered, so an empty DLQ with every order delivered shows
// per-key order was kept across the rebalance.
func TestTwoInstancesOneLeaves(t *testing.T) {
	dialect := "sqlite"
	if ds := sqlstoretest.Dialects(t); len(ds) > 1 {
		dialect = ds[1] // PostgreSQL is the production path for several instances
	}
	b := apptest.Broker(t, 6)
	dbURL := sqlstoretest.URL(t, dialect)
	a := apptest.Start(t, apptest.Options{DatabaseURL: dbURL, BrokerAddr: b.Addr()})
	c := apptest.Start(t, apptest.Options{DatabaseURL: dbURL, BrokerAddr: b.Addr()})
	st := a.App.Store()
	cl := client(t, b.Addr())

	const orders = 120
	events := func(step string, from, to int) []*kgo.Record {
		var recs []*kgo.Record
		for i := from; i < to; i++ {
			id := fmt.Sprintf("two-%d", i)
			var v string
			switch step {
			case "created":
				v = fmt.Sprintf(`{"id":"c-%s","name":"OrderCreated","data":{"orderId":"%s","customerId":"c","totalAmount":20.00,"currency":"USD","items":[{"productId":"p","quantity":2,"unitPrice":10.00,"totalPrice":20.00}]}}`, id, id)
			case "shipped":
				v = fmt.Sprintf(`{"id":"s-%s","name":"OrderShipped","data":{"orderId":"%s","trackingNumber":"T%d"}}`, id, id, i)
			case "delivered":
				v = fmt.Sprintf(`{"id":"d-%s","name":"OrderDelivered","data":{"orderId":"%s"}}`, id, id)
			}
			recs = append(recs, &kgo.Record{Key: []byte(id), Value: []byte(v)})
		}
		return recs
	}
	assigned := func(in *apptest.Instance) int {
		n := 0
		for _, ps := range in.App.Consumer().Status().Assigned {
			n += len(ps)
		}
		return n
	}
	apptest.Eventually(t, 60*time.Second, "both instances share the six partitions", func() bool {
		return assigned(a) > 0 && assigned(c) > 0 && assigned(a)+assigned(c) == 6
	})
	// Interleave so that each partition holds created/shipped/delivered chains.
	for _, half := range [][2]int{{0, orders / 2}, {orders / 2, orders}} {
		var recs []*kgo.Record
		recs = append(recs, events("created", half[0], half[1])...)
		recs = append(recs, events("shipped", half[0], half[1])...)
		recs = append(recs, events("delivered", half[0], half[1])...)
		produce(t, cl, recs...)
		if half[0] == 0 {
			apptest.Eventually(t, 30*time.Second, "both instances consuming", func() bool {
				return a.App.Consumer().Status().Handled > 0 && c.App.Consumer().Status().Handled > 0
			})
			c.Stop(t) // leaves mid-stream: its partitions move to a
			t.Logf("instance c handled %d records before leaving", c.App.Consumer().Status().Handled)
		}
	}
	apptest.Eventually(t, 60*time.Second, "every order delivered", func() bool {
		ods, _, err := st.ListOrders(context.Background(), sqlstore.ListQuery{Status: order.StatusDelivered, Limit: 500})
		return err == nil && len(ods) == orders
	})
	apptest.Eventually(t, 30*time.Second, "all offsets committed", func() bool {
		c, e := committed(t, b.Addr())
		return e == 3*orders && c == e
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	dl := client(t, b.Addr(), kgo.ConsumeTopics("orders-dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if n := len(dl.PollFetches(ctx).Records()); n != 0 {
		t.Errorf("%d records dead-lettered; per-key order broken or an effect repeated", n)
	}
}

// TestPanickingProcessorStallsNothing: a processor that panics on every call
// (a bug) must cost only its own record, which goes to the DLQ after its
// tries, while every other partition's records keep being applied and
// committed — also when the panic happens in a transaction that merged
// several partitions' batches (the combiner), which the preloaded backlog
// on six partitions makes likely.
func TestPanickingProcessorStallsNothing(t *testing.T) {
	for _, dialect := range sqlstoretest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			b := apptest.Broker(t, 6)
			cl := client(t, b.Addr())
			const n = 600
			var recs []*kgo.Record
			for i := range n {
				id := fmt.Sprintf("calm-%d", i)
				v := fmt.Sprintf(`{"id":"ev-%s","name":"OrderCreated","data":{"orderId":"%s","customerId":"c","totalAmount":10.00,"currency":"USD","items":[{"productId":"p","quantity":1,"unitPrice":10.00,"totalPrice":10.00}]}}`, id, id)
				recs = append(recs, &kgo.Record{Key: []byte(id), Value: []byte(v)})
				if i == n/2 {
					recs = append(recs, &kgo.Record{Key: []byte("boom"), Value: []byte(`{"id":"ev-boom","name":"Explode","data":{"orderId":"boom"}}`)})
				}
			}
			produce(t, cl, recs...)

			var panics atomic.Int64
			in := apptest.Start(t, apptest.Options{
				Dialect:    dialect,
				BrokerAddr: b.Addr(),
				Env:        map[string]string{"MAX_ATTEMPTS": "2"},
				AppOptions: app.Options{Processors: map[string]events.Processor{
					"Explode": func(context.Context, order.Tx, events.Envelope) (string, error) {
						panics.Add(1)
						panic("a bug in the Explode processor")
					},
				}},
			})
			st := in.App.Store()
			apptest.Eventually(t, 60*time.Second, "every record finished and committed", func() bool {
				c, e := committed(t, b.Addr())
				return e == n+1 && c == e
			})
			for i := range n {
				if s := orderStatus(t, st, fmt.Sprintf("calm-%d", i)); s != order.StatusProcessing {
					t.Fatalf("order calm-%d: status %q, want processing", i, s)
				}
			}
			dlq := readDLQ(t, b.Addr(), 1)
			if len(dlq) != 1 || string(dlq[0].Key) != "boom" {
				t.Fatalf("DLQ: %d records, want only the Explode event", len(dlq))
			}
			if kind, _ := header(dlq[0], kafka.HeaderErrorKind); kind != kafka.ErrorKindExhausted {
				t.Errorf("the Explode event's error_kind = %q, want %q", kind, kafka.ErrorKindExhausted)
			}
			if panics.Load() < 2 {
				t.Errorf("the processor panicked %d times, want at least its two tries", panics.Load())
			}
		})
	}
}

// TestHandledLineSaysOutcome: the one info line per handled event says what
// handling it came to, in the words of orders_events_total's outcome label:
// a first delivery applied (with the processor's summary), its redelivery a
// duplicate, a refused event dead_lettered.
func TestHandledLineSaysOutcome(t *testing.T) {
	var logs testkit.LogBuffer
	in := apptest.Start(t, apptest.Options{Logs: &logs, Env: map[string]string{"LOG_LEVEL": "info"}})
	if _, err := in.App.Store().SetStock(t.Context(), "prod-001", 10); err != nil {
		t.Fatal(err)
	}
	cl := client(t, in.App.BrokerAddr())
	refused := `{"id":"ev-o-refused","name":"OrderDelivered","data":{"orderId":"o-1"}}`
	produce(t, cl,
		&kgo.Record{Key: []byte("o-1"), Value: orderCreated("o-1")},
		&kgo.Record{Key: []byte("o-1"), Value: orderCreated("o-1")},
		&kgo.Record{Key: []byte("o-1"), Value: []byte(refused)})

	var lines []string
	apptest.Eventually(t, 20*time.Second, "three lines about the events", func() bool {
		lines = nil
		for l := range strings.Lines(logs.String()) {
			if strings.Contains(l, " event_id=ev-o-") &&
				(strings.Contains(l, " record handled ") || strings.Contains(l, " record sent to the dead-letter topic ")) {
				lines = append(lines, l)
			}
		}
		return len(lines) >= 3
	})
	for i, want := range []struct{ msg, outcome, summary string }{
		{"INFO record handled ", "outcome=applied", "summary=\"order processed: final total "},
		{"INFO record handled ", "outcome=duplicate", ""},
		{"WARNING record sent to the dead-letter topic ", "outcome=dead_lettered", ""},
	} {
		l := lines[i]
		if !strings.Contains(l, want.msg) || !strings.Contains(l, " "+want.outcome+" ") {
			t.Errorf("line %d = %q, want %q with %s", i+1, l, want.msg, want.outcome)
		}
		if want.summary != "" && !strings.Contains(l, " "+want.summary) {
			t.Errorf("line %d = %q, want the processor's summary", i+1, l)
		}
		if want.summary == "" && strings.Contains(l, " summary=") {
			t.Errorf("line %d = %q, want no summary: nothing was applied", i+1, l)
		}
	}
}
