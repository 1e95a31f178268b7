package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderd/orderd/internal/fault"
	"github.com/orderd/orderd/internal/httpapi"
	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/order/cancel"
	"github.com/orderd/orderd/internal/order/fulfil"
	"github.com/orderd/orderd/internal/order/ordertest"
	"github.com/orderd/orderd/internal/order/process"
	"github.com/orderd/orderd/internal/sqlstore"
)

func TestFraudSizedOrderIsRejectedAndUnchanged(t *testing.T) {
	h := newHarness(t, baseOptions())
	expect(t, h.do("POST", "/api/v0/orders", orderJSON("big", "INR", "1", "10000.01", "10000.01")), http.StatusCreated)
	p := expectProblem(t, h.do("POST", "/api/v0/orders/big/process", nil), http.StatusUnprocessableEntity, order.ReasonFraudReview)
	if p["type"] != "urn:orderd:problem:fraud_review" {
		t.Errorf("type %v", p["type"])
	}
	r := expect(t, h.do("GET", "/api/v0/orders/big", nil), http.StatusOK)
	if o := r.json(t); o["status"] != "new" || o["final_total"] != nil {
		t.Errorf("order changed by a rejected process: %s", r.body)
	}
	// At the threshold itself the order is fine.
	expect(t, h.do("POST", "/api/v0/orders", orderJSON("edge", "INR", "1", "10000.00", "10000.00")), http.StatusCreated)
	expect(t, h.do("POST", "/api/v0/orders/edge/process", nil), http.StatusOK)
}

func TestProcessErrors(t *testing.T) {
	h := newHarness(t, baseOptions())
	expect(t, h.do("POST", "/api/v0/orders", orderJSON("mars", "USD", "1", "50.00", "50.00", `"shippingRegion":"Mars Colony"`)), http.StatusCreated)
	expect(t, h.do("POST", "/api/v0/orders", orderJSON("stock", "USD", "2", "50.00", "100.00")), http.StatusCreated)
	expect(t, h.do("POST", "/api/v0/orders", orderJSON("twice", "USD", "1", "50.00", "50.00", `"shippingMethod":"express"`)), http.StatusCreated)
	// Stock is checked before the region, so the region is checked while p-1 has no stock record.
	expectProblem(t, h.do("POST", "/api/v0/orders/mars/process", nil), http.StatusUnprocessableEntity, order.ReasonUnsupportedRegion)
	expect(t, h.do("PUT", "/api/v0/inventory/p-1", `{"available": 1}`), http.StatusOK)

	r := expect(t, h.do("POST", "/api/v0/orders/twice/process", nil), http.StatusOK)
	if !strings.Contains(string(r.body), `"shipping_cost":12.99`) || !strings.Contains(string(r.body), `"final_total":57.99`) {
		t.Errorf("express under the free-shipping threshold: %s", r.body)
	}
	cases := []struct {
		id     string
		status int
		reason string
	}{
		{"missing", http.StatusNotFound, order.ReasonNotFound},
		{"stock", http.StatusUnprocessableEntity, order.ReasonOutOfStock},
		{"twice", http.StatusConflict, order.ReasonInvalidStatus},
	}
	for _, c := range cases {
		t.Run(c.id, func(t *testing.T) {
			expectProblem(t, h.do("POST", "/api/v0/orders/"+c.id+"/process", nil), c.status, c.reason)
		})
	}
	// The out-of-stock refusal reserved nothing.
	r = expect(t, h.do("GET", "/api/v0/inventory/p-1", nil), http.StatusOK)
	if string(r.body) != `{"product_id":"p-1","available":0,"reserved":1}`+"\n" {
		t.Errorf("stock after one processed and one refused order: %s", r.body)
	}
}

func TestFulfilment(t *testing.T) {
	h := newHarness(t, baseOptions())
	expect(t, h.do("POST", "/api/v0/orders", orderJSON("f-1", "INR", "2", "75.00", "150.00")), http.StatusCreated)

	expectProblem(t, h.do("POST", "/api/v0/orders/f-1/ship", nil), http.StatusConflict, order.ReasonInvalidTransition)
	expectProblem(t, h.do("POST", "/api/v0/orders/nope/ship", nil), http.StatusNotFound, order.ReasonNotFound)
	expect(t, h.do("POST", "/api/v0/orders/f-1/process", nil), http.StatusOK)
	expectProblem(t, h.do("POST", "/api/v0/orders/f-1/deliver", nil), http.StatusConflict, order.ReasonInvalidTransition)

	r := expect(t, h.do("POST", "/api/v0/orders/f-1/ship", `{"tracking_number":"TRK-42"}`), http.StatusOK)
	if !strings.Contains(string(r.body), `"status":"shipped"`) || !strings.Contains(string(r.body), `"tracking_number":"TRK-42"`) {
		t.Errorf("ship: %s", r.body)
	}
	expectProblem(t, h.do("POST", "/api/v0/orders/f-1/cancel", nil), http.StatusConflict, order.ReasonNotCancellable)
	r = expect(t, h.do("POST", "/api/v0/orders/f-1/deliver", nil), http.StatusOK)
	if !strings.Contains(string(r.body), `"status":"delivered"`) || !strings.Contains(string(r.body), `"success":true`) {
		t.Errorf("deliver: %s", r.body)
	}
	expectProblem(t, h.do("POST", "/api/v0/orders/f-1/deliver", nil), http.StatusConflict, order.ReasonInvalidTransition)
}

func TestCancelUnprocessedOrder(t *testing.T) {
	h := newHarness(t, baseOptions())
	expect(t, h.do("POST", "/api/v0/orders", orderJSON("c-1", "INR", "2", "75.00", "150.00")), http.StatusCreated)
	r := expect(t, h.do("POST", "/api/v0/orders/c-1/cancel", nil), http.StatusOK)
	// Not processed: the refund is the total less 5%, and the default reason applies.
	for _, want := range []string{`"refund_amount":142.50`, `"cancellation_reason":"Customer request"`} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("lacks %s: %s", want, r.body)
		}
	}
	expectProblem(t, h.do("POST", "/api/v0/orders/none/cancel", `{"reason":"x"}`), http.StatusNotFound, order.ReasonNotFound)
}

func TestListOrders(t *testing.T) {
	h := newHarness(t, baseOptions())
	for i := range 5 {
		expect(t, h.do("POST", "/api/v0/orders", orderJSON(fmt.Sprintf("l-%d", i), "INR", "1", "10.00", "10.00")), http.StatusCreated)
	}
	expect(t, h.do("POST", "/api/v0/orders/l-1/process", nil), http.StatusOK)
	expect(t, h.do("POST", "/api/v0/orders/l-3/process", nil), http.StatusOK)

	type page struct {
		Orders []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"orders"`
		NextCursor *string `json:"next_cursor"`
	}
	get := func(query string) page {
		t.Helper()
		r := expect(t, h.do("GET", "/api/v0/orders"+query, nil), http.StatusOK)
		var p page
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var ids []string
	cursor := ""
	pages := 0
	for {
		p := get("?limit=2&cursor=" + cursor)
		pages++
		for _, o := range p.Orders {
			ids = append(ids, o.ID)
		}
		if p.NextCursor == nil {
			break
		}
		cursor = *p.NextCursor
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if strings.Join(ids, ",") != "l-0,l-1,l-2,l-3,l-4" || pages != 3 {
		t.Errorf("paged ids %v in %d pages", ids, pages)
	}
	p := get("?status=processing")
	if len(p.Orders) != 2 || p.Orders[0].ID != "l-1" || p.Orders[1].ID != "l-3" || p.NextCursor != nil {
		t.Errorf("processing orders: %+v", p)
	}
	if p := get("?status=shipped"); p.Orders == nil || len(p.Orders) != 0 {
		t.Errorf("no shipped orders should be an empty list: %+v", p)
	}
	r := expect(t, h.do("GET", "/api/v0/orders?status=shipped", nil), http.StatusOK)
	if string(r.body) != `{"orders":[],"next_cursor":null}`+"\n" {
		t.Errorf("empty page: %s", r.body)
	}
	if p := get(""); len(p.Orders) != 5 {
		t.Errorf("default limit returned %d", len(p.Orders))
	}
}

func TestInventory(t *testing.T) {
	h := newHarness(t, baseOptions())
	expectProblem(t, h.do("GET", "/api/v0/inventory/p-9", nil), http.StatusNotFound, order.ReasonNotFound)
	r := expect(t, h.do("PUT", "/api/v0/inventory/p-9", `{"available": 7}`), http.StatusOK)
	if string(r.body) != `{"product_id":"p-9","available":7,"reserved":0}`+"\n" {
		t.Errorf("put: %s", r.body)
	}
	r = expect(t, h.do("GET", "/api/v0/inventory/p-9", nil), http.StatusOK)
	if string(r.body) != `{"product_id":"p-9","available":7,"reserved":0}`+"\n" {
		t.Errorf("get: %s", r.body)
	}
	expect(t, h.do("PUT", "/api/v0/inventory/p-9", `{"available": 0}`), http.StatusOK)

	t.Run("available and reserved over 10^15 is a stock conflict", func(t *testing.T) {
		expect(t, h.do("PUT", "/api/v0/inventory/p-1", `{"available": 5}`), http.StatusOK)
		expect(t, h.do("POST", "/api/v0/orders", orderJSON("inv-1", "INR", "2", "75.00", "150.00")), http.StatusCreated)
		expect(t, h.do("POST", "/api/v0/orders/inv-1/process", nil), http.StatusOK)
		p := expectProblem(t, h.do("PUT", "/api/v0/inventory/p-1", `{"available": 1000000000000000}`), http.StatusConflict, order.ReasonStockLimit)
		if title, _ := p["title"].(string); !strings.Contains(strings.ToLower(title), "stock") {
			t.Errorf("title %q does not say the conflict is about stock", title)
		}
		if _, ok := fetchDoc(t, h).Paths["/api/v0/inventory/{productId}"]["put"].Responses["409"]; !ok {
			t.Error("PUT inventory does not document 409")
		}
	})
}

func TestHealth(t *testing.T) {
	var mu sync.Mutex
	ready := httpapi.Readiness{Ready: true, Components: map[string]httpapi.Component{"database": {Status: "ok", Required: true}}}
	h := newHarness(t, baseOptions(), func(d *httpapi.Deps) {
		d.Ready = func(context.Context) httpapi.Readiness {
			mu.Lock()
			defer mu.Unlock()
			return ready
		}
	})
	for _, path := range []string{"/healthz", "/api/v0/healthz"} {
		r := expect(t, h.do("GET", path, nil), http.StatusOK)
		if string(r.body) != `{"status":"ok"}`+"\n" {
			t.Errorf("%s: %s", path, r.body)
		}
	}
	r := expect(t, h.do("GET", "/readyz", nil), http.StatusOK)
	if string(r.body) != `{"status":"ready","ready":true,"components":{"database":{"status":"ok","required":true}}}`+"\n" {
		t.Errorf("ready: %s", r.body)
	}
	mu.Lock()
	ready = httpapi.Readiness{Components: map[string]httpapi.Component{
		"database": {Status: "ok", Required: true},
		"kafka":    {Status: "connecting", Detail: "dial tcp 127.0.0.1:9092: connection refused", Required: true},
	}}
	mu.Unlock()
	r = expect(t, h.do("GET", "/readyz", nil), http.StatusServiceUnavailable)
	m := r.json(t)
	if m["status"] != "not_ready" || m["ready"] != false {
		t.Errorf("not ready: %s", r.body)
	}
	if k, _ := m["components"].(map[string]any)["kafka"].(map[string]any); k["status"] != "connecting" || k["detail"] == "" {
		t.Errorf("kafka component: %s", r.body)
	}

	t.Run("without a readiness source readiness is liveness", func(t *testing.T) {
		h := newHarness(t, baseOptions())
		r := expect(t, h.do("GET", "/readyz", nil), http.StatusOK)
		if string(r.body) != `{"status":"ready","ready":true,"components":{}}`+"\n" {
			t.Errorf("ready: %s", r.body)
		}
	})
}

// consumer is an in-memory BrokerControl: it checks how the routes map a
// consumer's state and errors, not the consumer itself (internal/kafka
// tests that against a broker).
type consumer struct {
	mu       sync.Mutex
	state    string
	startErr error
}

func (c *consumer) Start(context.Context) (httpapi.ConsumerStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.startErr != nil {
		return httpapi.ConsumerStatus{}, c.startErr
	}
	c.state = "running"
	return c.status(), nil
}

func (c *consumer) Stop(context.Context) (httpapi.ConsumerStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state = "stopped"
	return c.status(), nil
}

func (c *consumer) Status(context.Context) httpapi.ConsumerStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status()
}

func (c *consumer) status() httpapi.ConsumerStatus {
	return httpapi.ConsumerStatus{State: c.state, GroupID: "order-processing-group", Topics: []string{"order-events"}}
}

func TestMessageBroker(t *testing.T) {
	c := &consumer{state: "stopped"}
	h := newHarness(t, baseOptions(), func(d *httpapi.Deps) { d.Broker = c })
	const base = "/api/v0/message_broker/"
	steps := []struct {
		method, path, state string
	}{
		{"GET", "status", "stopped"},
		{"POST", "start_consuming_message", "running"},
		{"POST", "start_consuming_message", "running"},
		{"GET", "status", "running"},
		{"POST", "stop_consuming_message", "stopped"},
		{"POST", "stop_consuming_message", "stopped"},
	}
	for _, s := range steps {
		r := expect(t, h.do(s.method, base+s.path, nil), http.StatusOK)
		m := r.json(t)
		if m["state"] != s.state || m["group_id"] != "order-processing-group" {
			t.Errorf("%s %s: %s", s.method, s.path, r.body)
		}
		if _, ok := m["partitions"].([]any); !ok {
			t.Errorf("partitions should be a list: %s", r.body)
		}
	}
	c.startErr = fmt.Errorf("join group: %w", context.DeadlineExceeded)
	expectProblem(t, h.do("POST", base+"start_consuming_message", nil), http.StatusServiceUnavailable, httpapi.ReasonUnavailable)
	c.startErr = fmt.Errorf("boom: secret internals")
	p := expectProblem(t, h.do("POST", base+"start_consuming_message", nil), http.StatusInternalServerError, httpapi.ReasonInternal)
	if strings.Contains(fmt.Sprint(p), "secret internals") {
		t.Errorf("a 500 leaks the error: %v", p)
	}
	if !strings.Contains(h.logs.String(), "secret internals") || !strings.Contains(h.logs.String(), `"route":"POST /api/v0/message_broker/start_consuming_message"`) {
		t.Errorf("the 500 is not logged with its route:\n%s", h.logs)
	}

	t.Run("no broker is 503", func(t *testing.T) {
		h := newHarness(t, baseOptions())
		for _, s := range steps[:3] {
			r := h.do(s.method, base+s.path, nil)
			expectProblem(t, r, http.StatusServiceUnavailable, httpapi.ReasonUnavailable)
			if r.header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
		}
	})
}

// refusingPublisher is an EventPublisher whose every publish fails with err.
type refusingPublisher struct{ err error }

func (p refusingPublisher) Publish(context.Context, []byte, []byte, map[string]string) (int32, int64, error) {
	return 0, 0, p.err
}

// kafkaPublisher is the EventPublisher over a real Kafka client.
type kafkaPublisher struct {
	cl    *kgo.Client
	topic string
}

func (p kafkaPublisher) Publish(ctx context.Context, key, value []byte, headers map[string]string) (int32, int64, error) {
	rec := &kgo.Record{Topic: p.topic, Key: key, Value: value}
	for k, v := range headers {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	r, err := p.cl.ProduceSync(ctx, rec).First()
	if err != nil {
		return 0, 0, err
	}
	return r.Partition, r.Offset, nil
}

func TestPublishEvent(t *testing.T) {
	const topic = "order-events"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	producer, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producer.Close)
	opts := baseOptions()
	opts.EventsTopic = topic
	h := newHarness(t, opts, func(d *httpapi.Deps) { d.Events = kafkaPublisher{cl: producer, topic: topic} })

	envelope := "{\"id\": \"evt-1\",\n \"name\": \"OrderCreated\", \"data\": " + orderJSON("k-1", "INR", "2", "75.00", "150.00") + "}"
	r := expect(t, h.do("POST", "/api/v0/events", envelope, httpapi.CorrelationHeader, "corr-123"), http.StatusAccepted)
	var pub struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		Offset    int64  `json:"offset"`
	}
	if err := json.Unmarshal(r.body, &pub); err != nil || pub.Topic != topic {
		t.Fatalf("published: %s (%v)", r.body, err)
	}

	// read returns the record at partition p, offset o of the topic.
	read := func(t *testing.T, p int32, o int64) *kgo.Record {
		t.Helper()
		consumer, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().At(o)}}))
		if err != nil {
			t.Fatal(err)
		}
		defer consumer.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var rec *kgo.Record
		for rec == nil {
			fs := consumer.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				t.Fatalf("record not found: %v", err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				if rec == nil {
					rec = r
				}
			})
		}
		return rec
	}
	rec := read(t, pub.Partition, pub.Offset)
	if string(rec.Value) != envelope || string(rec.Key) != "k-1" {
		t.Errorf("record key %q value %q, want the body byte for byte", rec.Key, rec.Value)
	}
	if len(rec.Headers) != 1 || rec.Headers[0].Key != "correlation_id" || string(rec.Headers[0].Value) != "corr-123" {
		t.Errorf("headers %+v", rec.Headers)
	}

	// The key is the order the consumer acts on, read as it reads the data:
	// the name orderId in any case.
	t.Run("keyed by the order the consumer acts on", func(t *testing.T) {
		r := expect(t, h.do("POST", "/api/v0/events", `{"id":"evt-2","name":"OrderCancelled","data":{"OrderId":"k-2"}}`), http.StatusAccepted)
		if err := json.Unmarshal(r.body, &pub); err != nil {
			t.Fatal(err)
		}
		if rec := read(t, pub.Partition, pub.Offset); string(rec.Key) != "k-2" {
			t.Errorf("record key %q, want k-2", rec.Key)
		}
	})

	t.Run("invalid envelopes are 400", func(t *testing.T) {
		bad := []string{
			`not json`,
			`[]`,
			`{"name":"OrderCreated","data":{}}`,
			`{"id":"","name":"OrderCreated","data":{}}`,
			`{"id":7,"name":"OrderCreated","data":{}}`,
			`{"id":"` + strings.Repeat("i", 201) + `","name":"OrderCreated","data":{}}`,
			`{"id":"e","data":{}}`,
			`{"id":"e","name":"","data":{}}`,
			`{"id":"e","name":"OrderCreated"}`,
			`{"id":"e","name":"OrderCreated","data":[1]}`,
			`{"id":"e","name":"OrderCreated","data":"x"}`,
			`{"id":"e","name":"OrderCreated","data":null}`,
		}
		for _, b := range bad {
			expectProblem(t, h.do("POST", "/api/v0/events", b), http.StatusBadRequest, order.ReasonInvalid)
		}
		// The id limit is 200 bytes, inclusive; data is the consumer's to judge.
		expect(t, h.do("POST", "/api/v0/events", `{"id":"`+strings.Repeat("i", 200)+`","name":"Unknown","data":{}}`), http.StatusAccepted)
	})
	t.Run("with the registered events named, others are 400", func(t *testing.T) {
		opts := opts
		opts.EventNames = []string{"OrderCancelled", "OrderCreated"}
		h := newHarness(t, opts, func(d *httpapi.Deps) { d.Events = kafkaPublisher{cl: producer, topic: topic} })
		p := expectProblem(t, h.do("POST", "/api/v0/events", `{"id":"e","name":"Nope","data":{}}`), http.StatusBadRequest, order.ReasonInvalid)
		if d, _ := p["detail"].(string); !strings.Contains(d, `"Nope" is not a registered event (OrderCancelled, OrderCreated)`) {
			t.Errorf("detail %q, want it to name the event and the registered ones", p["detail"])
		}
		expect(t, h.do("POST", "/api/v0/events", envelope), http.StatusAccepted)
	})
	t.Run("a record the broker refuses for good is 422", func(t *testing.T) {
		tooLarge := fault.AsPermanent("message_too_large", errors.New("MESSAGE_TOO_LARGE"))
		h := newHarness(t, opts, func(d *httpapi.Deps) { d.Events = refusingPublisher{tooLarge} })
		expectProblem(t, h.do("POST", "/api/v0/events", envelope), http.StatusUnprocessableEntity, "message_too_large")
		if _, ok := fetchDoc(t, h).Paths["/api/v0/events"]["post"].Responses["422"]; !ok {
			t.Error("POST /events does not document 422")
		}
	})
	t.Run("no publisher is 503", func(t *testing.T) {
		h := newHarness(t, baseOptions())
		expectProblem(t, h.do("POST", "/api/v0/events", envelope), http.StatusServiceUnavailable, httpapi.ReasonUnavailable)
	})
}

// TestStoreOutageIs503 points the server at a PostgreSQL address where
// nothing listens: the store's connection errors are transient, so clients
// are told to retry rather than given a 500.
func TestStoreOutageIs503(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	down, err := sqlstore.Open(ctx, "postgres://postgres@"+addr+"/test?sslmode=disable&connect_timeout=2", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { down.Close() })
	h := newHarness(t, baseOptions(), func(d *httpapi.Deps) { d.Tx, d.Orders = down, storeReader{down} })
	cases := []struct{ method, path, body string }{
		{"GET", "/api/v0/orders/x", ""},
		{"GET", "/api/v0/orders", ""},
		{"POST", "/api/v0/orders", orderJSON("d-1", "INR", "2", "75.00", "150.00")},
		{"POST", "/api/v0/orders/d-1/process", ""},
		{"GET", "/api/v0/inventory/p-1", ""},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			var body any
			if c.body != "" {
				body = c.body
			}
			r := h.do(c.method, c.path, body)
			expectProblem(t, r, http.StatusServiceUnavailable, httpapi.ReasonUnavailable)
			if r.header.Get("Retry-After") != "5" {
				t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	h := newHarness(t, baseOptions())
	big := `{"orderId":"` + strings.Repeat("x", 2<<20) + `"}`
	for _, route := range []struct{ method, path string }{
		{"POST", "/api/v0/orders"}, {"POST", "/api/v0/events"}, {"PUT", "/api/v0/inventory/p-1"}, {"POST", "/api/v0/orders/x/cancel"},
	} {
		t.Run(route.method+" "+route.path, func(t *testing.T) {
			expectProblem(t, h.do(route.method, route.path, big), http.StatusRequestEntityTooLarge, httpapi.ReasonTooLarge)
		})
	}
	// A chunked body says no length, so it is found too large only as it
	// is read: on a route that reads none too, whose action must not run.
	expect(t, h.do("POST", "/api/v0/orders", orderJSON("c-1", "INR", "2", "75.00", "150.00")), http.StatusCreated)
	for _, path := range []string{"/api/v0/orders", "/api/v0/orders/c-1/process", "/api/v0/message_broker/stop_consuming_message"} {
		t.Run("chunked body without a length to "+path, func(t *testing.T) {
			req, err := http.NewRequest("POST", h.srv.URL+path, struct{ *strings.Reader }{strings.NewReader(big)})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := h.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge || req.ContentLength != 0 {
				t.Errorf("status %d (content length %d)", resp.StatusCode, req.ContentLength)
			}
		})
	}
	if o, err := h.store.GetOrder(t.Context(), "c-1"); err != nil || o.Status != order.StatusNew {
		t.Errorf("order c-1 after a refused process: %+v, %v; want it still new", o, err)
	}
	t.Run("exactly 1 MiB is read", func(t *testing.T) {
		body := orderJSON("m-1", "INR", "2", "75.00", "150.00")
		body += strings.Repeat(" ", httpapi.MaxBodyBytes-len(body))
		r := expect(t, h.do("POST", "/api/v0/orders", body), http.StatusCreated)
		if !strings.Contains(string(r.body), `"id":"m-1"`) {
			t.Errorf("body %s", r.body)
		}
	})
}

func TestUnknownRouteAndMethod(t *testing.T) {
	h := newHarness(t, baseOptions())
	expectProblem(t, h.do("GET", "/api/v0/nothing", nil), http.StatusNotFound, httpapi.ReasonNoRoute)
	r := h.do("DELETE", "/api/v0/orders/x", nil)
	expectProblem(t, r, http.StatusMethodNotAllowed, httpapi.ReasonBadMethod)
	if !strings.Contains(r.header.Get("Allow"), "GET") {
		t.Errorf("Allow %q", r.header.Get("Allow"))
	}
}

func TestNewServerNeedsItsDependencies(t *testing.T) {
	h := newHarness(t, baseOptions())
	full := func() httpapi.Deps {
		rules := order.DefaultRules()
		return httpapi.Deps{Tx: h.store, Orders: storeReader{h.store}, Process: process.New(rules, &ordertest.Notifier{}),
			Cancel: cancel.New(rules, &ordertest.Notifier{}), Fulfil: fulfil.New()}
	}
	cases := map[string]func(*httpapi.Deps){
		"Tx":      func(d *httpapi.Deps) { d.Tx = nil },
		"Orders":  func(d *httpapi.Deps) { d.Orders = nil },
		"Process": func(d *httpapi.Deps) { d.Process = nil },
		"Cancel":  func(d *httpapi.Deps) { d.Cancel = nil },
		"Fulfil":  func(d *httpapi.Deps) { d.Fulfil = nil },
	}
	for name, drop := range cases {
		t.Run(name, func(t *testing.T) {
			d := full()
			drop(&d)
			defer func() {
				if v := recover(); v == nil || !strings.Contains(fmt.Sprint(v), "Deps."+name) {
					t.Errorf("panic %v, want one naming Deps.%s", v, name)
				}
			}()
			httpapi.NewServer(baseOptions(), d)
		})
	}
	httpapi.NewServer(baseOptions(), full()) // complete deps do not panic
}

// TestMediaTypeProblem: a body in a media type a route does not take is a
// 415 problem with a reason, as every other error is.
func TestMediaTypeProblem(t *testing.T) {
	h := newHarness(t, baseOptions())
	expect(t, h.do("POST", "/api/v0/orders", orderJSON("mt-1", "INR", "2", "75.00", "150.00")), http.StatusCreated)
	r := h.do("POST", "/api/v0/orders/mt-1/cancel", `reason=changed`, "Content-Type", "text/plain")
	expectProblem(t, r, http.StatusUnsupportedMediaType, httpapi.ReasonMediaType)
}
