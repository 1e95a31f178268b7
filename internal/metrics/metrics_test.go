package metrics_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderd/orderd/internal/delivery"
	"github.com/orderd/orderd/internal/kafka/kafkatest"
	"github.com/orderd/orderd/internal/metrics"
)

// value returns the value of the series of name with exactly labels (a
// histogram's sample count), and whether it exists.
func value(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; !ok || v != l.GetValue() {
					continue next
				}
			}
			return metricValue(m), true
		}
	}
	return 0, false
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

func expect(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string, want float64) {
	t.Helper()
	got, ok := value(t, g, name, labels)
	if !ok || got != want {
		t.Errorf("%s%v = %v (present %v), want %v", name, labels, got, ok, want)
	}
}

func TestEvents(t *testing.T) {
	m := metrics.New([]string{"OrderCreated", "OrderCancelled"})
	reg := m.Registry()

	// Every known event's series exist before the first event.
	expect(t, reg, metrics.EventsTotal, map[string]string{"event": "OrderCancelled", "outcome": "retried"}, 0)
	expect(t, reg, metrics.EventsTotal, map[string]string{"event": "unknown", "outcome": "dead_lettered"}, 0)

	m.Event("OrderCreated", delivery.Applied, 10*time.Millisecond)
	m.Event("OrderCreated", delivery.Applied, 20*time.Millisecond)
	m.Event("OrderCreated", delivery.Duplicate, time.Millisecond)
	m.Event("OrderCancelled", delivery.Retried, time.Second)
	m.Event("OrderTeleported", delivery.DeadLettered, time.Millisecond) // not registered
	m.Event("", delivery.DeadLettered, time.Millisecond)                // not decodable
	m.DeadLettered("malformed_json")
	m.DeadLettered("malformed_json")
	m.DeadLettered("exhausted")
	m.DLQWriteFailed()

	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{metrics.EventsTotal, map[string]string{"event": "OrderCreated", "outcome": "applied"}, 2},
		{metrics.EventsTotal, map[string]string{"event": "OrderCreated", "outcome": "duplicate"}, 1},
		{metrics.EventsTotal, map[string]string{"event": "OrderCancelled", "outcome": "retried"}, 1},
		{metrics.EventsTotal, map[string]string{"event": "unknown", "outcome": "dead_lettered"}, 2},
		{metrics.EventDuration, map[string]string{"event": "OrderCreated"}, 3},
		{metrics.EventDuration, map[string]string{"event": "unknown"}, 2},
		{metrics.DLQTotal, map[string]string{"kind": "malformed_json"}, 2},
		{metrics.DLQTotal, map[string]string{"kind": "exhausted"}, 1},
		{metrics.DLQWriteFailures, nil, 1},
	} {
		expect(t, reg, c.name, c.labels, c.want)
	}
	if _, ok := value(t, reg, metrics.EventsTotal, map[string]string{"event": "OrderTeleported", "outcome": "dead_lettered"}); ok {
		t.Error("an unregistered event name became a label value")
	}
}

func TestSetLagReplacesPartitions(t *testing.T) {
	m := metrics.New(nil)
	reg := m.Registry()
	m.SetLag(map[string]map[int32]int64{"a": {0: 5, 1: 7}, "b": {0: 1}})
	expect(t, reg, metrics.ConsumerLag, map[string]string{"topic": "a", "partition": "1"}, 7)
	m.SetLag(map[string]map[int32]int64{"a": {0: 0, 1: 3}})
	expect(t, reg, metrics.ConsumerLag, map[string]string{"topic": "a", "partition": "0"}, 0)
	expect(t, reg, metrics.ConsumerLag, map[string]string{"topic": "a", "partition": "1"}, 3)
	if _, ok := value(t, reg, metrics.ConsumerLag, map[string]string{"topic": "b", "partition": "0"}); ok {
		t.Error("a partition no longer reported kept its lag")
	}
	m.LagRefreshFailed()
	expect(t, reg, metrics.ConsumerLagErrors, map[string]string{}, 1)
}

func TestStateGauges(t *testing.T) {
	m := metrics.New(nil)
	reg := m.Registry()
	state, paused, breaker := "connecting", false, 0.0
	m.ConsumerState(func() string { return state }, "connecting", "running", "stopped")
	m.FetchPaused(func() bool { return paused })
	m.CircuitBreaker("database", func() float64 { return breaker })

	expect(t, reg, metrics.ConsumerState, map[string]string{"state": "connecting"}, 1)
	expect(t, reg, metrics.ConsumerState, map[string]string{"state": "running"}, 0)
	expect(t, reg, metrics.ConsumerFetchPaused, map[string]string{}, 0)
	expect(t, reg, metrics.CircuitBreakerState, map[string]string{"name": "database"}, 0)
	state, paused, breaker = "running", true, 2
	expect(t, reg, metrics.ConsumerState, map[string]string{"state": "connecting"}, 0)
	expect(t, reg, metrics.ConsumerState, map[string]string{"state": "running"}, 1)
	expect(t, reg, metrics.ConsumerFetchPaused, map[string]string{}, 1)
	expect(t, reg, metrics.CircuitBreakerState, map[string]string{"name": "database"}, 2)
}

func TestInstrumentLabelsByRoute(t *testing.T) {
	m := metrics.New(nil)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "missing" {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		_, _ = io.WriteString(w, "ok") // implicit 200
	})
	mux.HandleFunc("POST /boom", func(http.ResponseWriter, *http.Request) { panic("boom") })
	h := m.Instrument(mux, func(r *http.Request) string {
		_, pattern := mux.Handler(r)
		return pattern
	})

	do := func(method, path string) {
		defer func() { _ = recover() }()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, path, nil))
	}
	do("GET", "/orders/1")
	do("GET", "/orders/2")
	do("GET", "/orders/missing")
	do("GET", "/elsewhere")
	do("POST", "/boom")
	do("BREW", "/orders/1")

	reg := m.Registry()
	for _, c := range []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"method": "GET", "route": "GET /orders/{id}", "status": "200"}, 2},
		{map[string]string{"method": "GET", "route": "GET /orders/{id}", "status": "404"}, 1},
		{map[string]string{"method": "GET", "route": "unmatched", "status": "404"}, 1},
		{map[string]string{"method": "POST", "route": "POST /boom", "status": "500"}, 1},
		{map[string]string{"method": "OTHER", "route": "unmatched", "status": "405"}, 1},
	} {
		expect(t, reg, metrics.HTTPRequestsTotal, c.labels, c.want)
	}
	expect(t, reg, metrics.HTTPRequestDuration, map[string]string{"method": "GET", "route": "GET /orders/{id}"}, 3)
}

func TestHandlerServesOwnRegistryOnly(t *testing.T) {
	a, b := metrics.New([]string{"OrderCreated"}), metrics.New([]string{"OrderCreated"})
	a.Event("OrderCreated", delivery.Applied, time.Millisecond)
	srv := httptest.NewServer(b.Handler())
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	for _, want := range []string{
		`orders_events_total{event="OrderCreated",outcome="applied"} 0`,
		"go_goroutines ", "process_cpu_seconds_total ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "orders_") || strings.HasPrefix(mf.GetName(), "http_requests") {
			t.Errorf("%s is on the global registry", mf.GetName())
		}
	}
}

func TestKafkaClientMetrics(t *testing.T) {
	kc := kafkatest.New(t, 1, []string{"t"})
	m := metrics.New(nil)
	reg := m.Registry()
	newClient := func(name string) *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(kc.Addrs()...), kgo.WithHooks(m.KafkaClient(name)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := cl.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		return cl
	}
	connects := func(client string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		total := 0.0
		for _, mf := range mfs {
			if mf.GetName() != metrics.KafkaClientNamespace+"_connects_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "client" && l.GetValue() == client {
						total += metricValue(m)
					}
				}
			}
		}
		return total
	}

	// Two live clients under different names; then a successor of a
	// closed one under the same name (the consumer makes a new client on
	// every start).
	first := newClient("consumer")
	newClient("producer")
	if connects("consumer") == 0 || connects("producer") == 0 {
		t.Fatalf("connects: consumer %v, producer %v", connects("consumer"), connects("producer"))
	}
	first.Close()
	if got := connects("consumer"); got != 0 {
		t.Errorf("a closed client's metrics stay registered: %v", got)
	}
	newClient("consumer")
	if connects("consumer") == 0 {
		t.Error("the successor client's metrics are missing")
	}
}

// TestTransactions checks the transaction histograms: one sample of each
// per committed transaction, the whole and its COMMIT.
func TestTransactions(t *testing.T) {
	m := metrics.New(nil)
	reg := m.Registry()
	m.Transaction(4*time.Millisecond, time.Millisecond)
	m.Transaction(30*time.Millisecond, 5*time.Millisecond)

	expect(t, reg, metrics.TransactionDuration, nil, 2)
	expect(t, reg, metrics.CommitDuration, nil, 2)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]float64{}
	for _, mf := range mfs {
		for _, mm := range mf.GetMetric() {
			if h := mm.GetHistogram(); h != nil {
				sums[mf.GetName()] += h.GetSampleSum()
			}
		}
	}
	for name, want := range map[string]float64{metrics.TransactionDuration: 0.034, metrics.CommitDuration: 0.006} {
		if got := sums[name]; got < want-1e-9 || got > want+1e-9 {
			t.Errorf("%s sum = %v s, want %v", name, got, want)
		}
	}
}
