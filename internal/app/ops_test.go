package app_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderd/orderd/internal/app"
	"github.com/orderd/orderd/internal/app/apptest"
	"github.com/orderd/orderd/internal/config"
	"github.com/orderd/orderd/internal/httpapi"
	"github.com/orderd/orderd/internal/kafka"
	"github.com/orderd/orderd/internal/sqlstore"
	"github.com/orderd/orderd/internal/sqlstore/sqlstoretest"
	"github.com/orderd/orderd/internal/testkit"
)

// readyz fetches /readyz and returns its status code and body.
func readyz(t *testing.T, in *apptest.Instance) (int, httpapi.Readiness) {
	t.Helper()
	resp, err := http.Get(in.BaseURL + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	defer resp.Body.Close()
	var r httpapi.Readiness
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("GET /readyz: decode: %v", err)
	}
	return resp.StatusCode, r
}

// waitReady polls /readyz until its status is code and check accepts the body.
func waitReady(t *testing.T, in *apptest.Instance, code int, what string, check func(httpapi.Readiness) bool) httpapi.Readiness {
	t.Helper()
	var last httpapi.Readiness
	var lastCode int
	deadline := time.Now().Add(60 * time.Second)
	for {
		lastCode, last = readyz(t, in)
		if lastCode == code && (check == nil || check(last)) {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for /readyz %d with %s; last: %d %+v", code, what, lastCode, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func componentIs(name, status string) func(httpapi.Readiness) bool {
	return func(r httpapi.Readiness) bool { return r.Components[name].Status == status }
}

// scrape fetches /metrics and parses it.
func scrape(t *testing.T, in *apptest.Instance) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(in.BaseURL + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET /metrics: parse: %v", err)
	}
	return mfs
}

// sum adds up the series of metric name whose labels include want (a
// histogram's series count as their sample count), and reports whether
// any matched.
func sum(mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
	total, found := 0.0, false
next:
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		found = true
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Histogram != nil:
			total += float64(m.Histogram.GetSampleCount())
		case m.Untyped != nil:
			total += m.Untyped.GetValue()
		}
	}
	return total, found
}

// histogramSum adds up the sample sums of histogram name's series.
func histogramSum(mfs map[string]*dto.MetricFamily, name string) float64 {
	total := 0.0
	for _, m := range mfs[name].GetMetric() {
		total += m.GetHistogram().GetSampleSum()
	}
	return total
}

// waitMetric polls /metrics until metric name (summed over the series with
// labels want) equals value.
func waitMetric(t *testing.T, in *apptest.Instance, name string, want map[string]string, value float64) {
	t.Helper()
	var got float64
	var found bool
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, found = sum(scrape(t, in), name, want)
		if found && got == value {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s%v == %v; last %v (found %v)", name, want, value, got, found)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func post(t *testing.T, u string) {
	t.Helper()
	resp, err := http.Post(u, "application/json", nil)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s %s", u, resp.Status, body)
	}
}

func get(t *testing.T, u string) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// orderCreated is a valid OrderCreated envelope for order id, of two units
// of prod-001.
func orderCreated(id string) []byte {
	return fmt.Appendf(nil, `{"id":"ev-%s","name":"OrderCreated","data":{"orderId":"%s","customerId":"c-1","totalAmount":150.0,"currency":"INR","status":"CREATED","items":[{"productId":"prod-001","quantity":2,"unitPrice":75.0,"totalPrice":150.0}],"createdAt":"2026-01-05T11:34:53.145Z"}}`, id, id)
}

// startBroker starts an embedded broker on exactly addr, keeping its state
// in dir so that a broker started again there has the same topics and offsets.
func startBroker(t *testing.T, addr, dir string) *kafka.Embedded {
	t.Helper()
	b, err := kafka.StartEmbedded(kafka.EmbeddedConfig{
		Addr: addr, DataDir: dir, Partitions: 3,
		Topics: []string{"order-events", "orders-dlq"},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("start broker on %s: %v", addr, err)
	}
	t.Cleanup(b.Close)
	return b
}

// tcpProxy forwards 127.0.0.1 connections to a target; Close cuts every
// connection and refuses new ones until Reopen, which listens on the same
// address again. It stands for a database that goes away and comes back.
type tcpProxy struct {
	t      *testing.T
	target string
	addr   string

	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
	closed bool
	wg     sync.WaitGroup
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{t: t, target: target, addr: ln.Addr().String(), conns: map[net.Conn]bool{}}
	p.serve(ln)
	t.Cleanup(func() {
		p.Close()
		p.wg.Wait()
	})
	return p
}

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln, p.closed = ln, false
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() { p.forward(c) })
		}
	})
}

func (p *tcpProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		p.conns[c] = true
	}
	return true
}

func (p *tcpProxy) forward(c net.Conn) {
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(c, up) {
		return
	}
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(up, c)
		up.Close()
		close(done)
	}()
	_, _ = io.Copy(c, up)
	c.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// Close stops accepting and cuts every open connection.
func (p *tcpProxy) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
}

// Reopen listens on the proxy's address again.
func (p *tcpProxy) Reopen() {
	p.t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("proxy: listen again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// proxiedPostgres returns a fresh PostgreSQL database URL that reaches the
// server through a tcpProxy, and the proxy.
func proxiedPostgres(t *testing.T) (string, *tcpProxy) {
	t.Helper()
	u, err := url.Parse(sqlstoretest.URL(t, sqlstore.DialectPostgres))
	if err != nil {
		t.Fatal(err)
	}
	p := newTCPProxy(t, u.Host)
	u.Host = p.addr
	return u.String(), p
}

func TestReadinessFollowsBrokerAndDatabase(t *testing.T) {
	for _, dialect := range sqlstoretest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			var dbURL string
			var proxy *tcpProxy
			if dialect == sqlstore.DialectPostgres {
				dbURL, proxy = proxiedPostgres(t)
			} else {
				dbURL = sqlstoretest.URL(t, dialect)
			}
			addr, dataDir := testkit.FreeAddr(t), t.TempDir()
			broker := startBroker(t, addr, dataDir)
			in := apptest.Start(t, apptest.Options{DatabaseURL: dbURL, BrokerAddr: addr})

			r := waitReady(t, in, http.StatusOK, "everything ok", componentIs("consumer", "ok"))
			for _, name := range []string{"database", "kafka", "consumer", "circuit_breaker_database", "circuit_breaker_notifier"} {
				if c := r.Components[name]; c.Status != "ok" || !c.Required {
					t.Errorf("component %s = %+v, want ok and required", name, c)
				}
			}

			// The broker goes away: not ready, and Kafka is what is down.
			broker.Close()
			r = waitReady(t, in, http.StatusServiceUnavailable, "kafka down", componentIs("kafka", "down"))
			if r.Ready || r.Components["database"].Status != "ok" {
				t.Errorf("with the broker gone: %+v", r)
			}
			// Its group session fails: the consumer is connecting again,
			// not running with no partitions.
			waitReady(t, in, http.StatusServiceUnavailable, "the consumer connecting", componentIs("consumer", "connecting"))
			// It comes back on the same address with its data.
			startBroker(t, addr, dataDir)
			waitReady(t, in, http.StatusOK, "kafka back", componentIs("kafka", "ok"))

			if proxy == nil {
				return // a SQLite file cannot be taken away
			}
			proxy.Close()
			r = waitReady(t, in, http.StatusServiceUnavailable, "database down", componentIs("database", "down"))
			if r.Ready || r.Components["kafka"].Status != "ok" {
				t.Errorf("with the database gone: %+v", r)
			}
			proxy.Reopen()
			waitReady(t, in, http.StatusOK, "database back", componentIs("database", "ok"))
		})
	}
}

func TestReadyWhenConsumptionStoppedOnPurpose(t *testing.T) {
	in := apptest.Start(t, apptest.Options{})
	r := waitReady(t, in, http.StatusOK, "consumer running", componentIs("consumer", "ok"))
	if d := r.Components["consumer"].Detail; !strings.HasPrefix(d, "running") {
		t.Errorf("consumer detail %q, want its state, running", d)
	}
	post(t, in.API+"/message_broker/stop_consuming_message")
	r = waitReady(t, in, http.StatusOK, "consumer stopped", componentIs("consumer", "stopped"))
	if c := r.Components["consumer"]; !r.Ready || c.Required || !strings.Contains(c.Detail, "start_consuming_message") {
		t.Errorf("stopped on purpose: %+v; want ready, the consumer not required and how to resume it", r)
	}
	waitMetric(t, in, "orders_consumer_state", map[string]string{"state": "stopped"}, 1)
	waitMetric(t, in, "orders_consumer_state", map[string]string{"state": "running"}, 0)
}

func TestMetricsLagAndEvents(t *testing.T) {
	const n = 12
	in := apptest.Start(t, apptest.Options{AppOptions: app.Options{LagInterval: 100 * time.Millisecond}})
	if _, err := in.App.Store().SetStock(t.Context(), "prod-001", 10*n); err != nil {
		t.Fatal(err)
	}
	post(t, in.API+"/message_broker/stop_consuming_message")
	waitReady(t, in, http.StatusOK, "consumer stopped", componentIs("consumer", "stopped"))

	// n valid events, a redelivered one and a malformed one, produced while
	// nothing consumes: the lag gauge must show all of them.
	cl := client(t, in.App.BrokerAddr())
	var recs []*kgo.Record
	for i := range n {
		id := fmt.Sprintf("m-%d", i)
		recs = append(recs, &kgo.Record{Key: []byte(id), Value: orderCreated(id)})
	}
	recs = append(recs,
		&kgo.Record{Key: []byte("m-0"), Value: orderCreated("m-0")},
		&kgo.Record{Key: []byte("bad"), Value: []byte(`{"id": "x", "name": `)})
	produce(t, cl, recs...)
	waitMetric(t, in, "orders_consumer_lag", map[string]string{"topic": "order-events"}, n+2)
	if got, _ := sum(scrape(t, in), "orders_events_total", nil); got != 0 {
		t.Fatalf("orders_events_total = %v while stopped", got)
	}

	post(t, in.API+"/message_broker/start_consuming_message")
	waitMetric(t, in, "orders_consumer_lag", map[string]string{"topic": "order-events"}, 0)
	mfs := scrape(t, in)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"orders_events_total", map[string]string{"event": "OrderCreated", "outcome": "applied"}, n},
		{"orders_events_total", map[string]string{"event": "OrderCreated", "outcome": "duplicate"}, 1},
		{"orders_events_total", map[string]string{"event": "unknown", "outcome": "dead_lettered"}, 1},
		{"orders_dlq_total", map[string]string{"kind": "malformed_json"}, 1},
		{"orders_consumer_state", map[string]string{"state": "running"}, 1},
		{"orders_circuit_breaker_state", map[string]string{"name": "database"}, 0},
		{"orders_circuit_breaker_state", map[string]string{"name": "notifier"}, 0},
		{"orders_consumer_fetch_paused", nil, 0},
	} {
		if got, found := sum(mfs, c.name, c.labels); !found || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, found, c.want)
		}
	}
	// One duration per handler call; a call retried after a transient
	// failure (e.g. SQLite busy) is one more.
	retried, _ := sum(mfs, "orders_events_total", map[string]string{"outcome": "retried"})
	if got, _ := sum(mfs, "orders_event_duration_seconds", nil); got != n+2+retried {
		t.Errorf("orders_event_duration_seconds count = %v, want %v", got, n+2+retried)
	}
	// The n new orders and the redelivered m-0 went through committed
	// unit-of-work transactions, each timed whole and at its COMMIT.
	txs, _ := sum(mfs, "orders_transaction_duration_seconds", nil)
	if commits, _ := sum(mfs, "orders_db_commit_duration_seconds", nil); txs < 1 || commits != txs {
		t.Errorf("orders_transaction_duration_seconds count %v, orders_db_commit_duration_seconds count %v: want equal, at least 1", txs, commits)
	}
	if whole, commit := histogramSum(mfs, "orders_transaction_duration_seconds"), histogramSum(mfs, "orders_db_commit_duration_seconds"); commit <= 0 || commit > whole {
		t.Errorf("transactions took %v s, their commits %v s: want 0 < commits <= transactions", whole, commit)
	}
	// The Kafka clients' own metrics and the Go runtime's.
	for _, c := range []struct {
		name   string
		labels map[string]string
	}{
		{"orders_kafka_connects_total", map[string]string{"client": "consumer"}},
		{"orders_kafka_connects_total", map[string]string{"client": "producer"}},
		{"orders_kafka_fetch_bytes_total", map[string]string{"client": "consumer", "topic": "order-events"}},
		{"orders_kafka_produce_bytes_total", map[string]string{"client": "dlq", "topic": "orders-dlq"}},
		{"go_goroutines", nil},
		{"process_cpu_seconds_total", nil},
	} {
		if got, found := sum(mfs, c.name, c.labels); !found || got <= 0 {
			t.Errorf("%s%v = %v (found %v), want > 0", c.name, c.labels, got, found)
		}
	}

	// HTTP requests are counted by route pattern, never by raw path.
	if code := get(t, in.API+"/orders/m-1"); code != http.StatusOK {
		t.Fatalf("GET order m-1: %d", code)
	}
	if code := get(t, in.API+"/orders/no-such-order"); code != http.StatusNotFound {
		t.Fatalf("GET a missing order: %d", code)
	}
	get(t, in.BaseURL+"/no/such/path")
	mfs = scrape(t, in)
	route := "GET " + in.Config.APIV1Str + "/orders/{id}"
	for _, c := range []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"method": "GET", "route": route, "status": "200"}, 1},
		{map[string]string{"method": "GET", "route": route, "status": "404"}, 1},
		{map[string]string{"method": "GET", "route": "unmatched", "status": "404"}, 1},
		{map[string]string{"route": "POST " + in.Config.APIV1Str + "/message_broker/start_consuming_message", "status": "200"}, 1},
	} {
		if got, found := sum(mfs, "http_requests_total", c.labels); !found || got != c.want {
			t.Errorf("http_requests_total%v = %v (found %v), want %v", c.labels, got, found, c.want)
		}
	}
	if got, _ := sum(mfs, "http_request_duration_seconds", map[string]string{"route": route}); got != 2 {
		t.Errorf("http_request_duration_seconds{route=%q} count = %v, want 2", route, got)
	}
	for _, m := range mfs["http_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "route" && strings.Contains(l.GetValue(), "m-1") {
				t.Errorf("a raw path became a route label: %q", l.GetValue())
			}
		}
	}
}

func TestDatabaseBreakerOpensPausesAndCloses(t *testing.T) {
	dbURL, proxy := proxiedPostgres(t)
	in := apptest.Start(t, apptest.Options{DatabaseURL: dbURL, AppOptions: app.Options{
		BreakerFailures: 3, BreakerOpenFor: time.Second, LagInterval: 100 * time.Millisecond,
	}})
	if _, err := in.App.Store().SetStock(t.Context(), "prod-001", 1000); err != nil {
		t.Fatal(err)
	}
	waitReady(t, in, http.StatusOK, "consumer running", componentIs("consumer", "ok"))

	// The database goes away while events arrive.
	proxy.Close()
	const n = 6
	cl := client(t, in.App.BrokerAddr())
	for i := range n {
		id := fmt.Sprintf("b-%d", i)
		produce(t, cl, &kgo.Record{Key: []byte(id), Value: orderCreated(id)})
	}
	r := waitReady(t, in, http.StatusServiceUnavailable, "database breaker open", componentIs("circuit_breaker_database", "open"))
	if r.Components["circuit_breaker_notifier"].Status != "ok" {
		t.Errorf("notifier breaker = %+v, want ok: only the database failed", r.Components["circuit_breaker_notifier"])
	}
	waitMetric(t, in, "orders_circuit_breaker_state", map[string]string{"name": "database"}, 2)
	waitMetric(t, in, "orders_consumer_fetch_paused", nil, 1)
	if b, err := os.ReadFile(in.Config.LogFile); err != nil || !strings.Contains(string(b), "circuit breaker open") {
		t.Errorf("LOG_FILE (%v) holds %q; want the outage's start, the breaker opening, there", err, b)
	}
	if got, _ := sum(scrape(t, in), "orders_events_total", map[string]string{"outcome": "retried"}); got < 3 {
		t.Errorf("retried calls = %v, want at least the 3 that opened the breaker", got)
	}

	// It comes back: the breaker's probe closes it, fetching resumes, and
	// every event is applied; none was dead-lettered for the outage.
	proxy.Reopen()
	waitReady(t, in, http.StatusOK, "database breaker closed", componentIs("circuit_breaker_database", "ok"))
	waitMetric(t, in, "orders_consumer_fetch_paused", nil, 0)
	waitMetric(t, in, "orders_events_total", map[string]string{"event": "OrderCreated", "outcome": "applied"}, n)
	waitMetric(t, in, "orders_consumer_lag", map[string]string{"topic": "order-events"}, 0)
	mfs := scrape(t, in)
	if got, _ := sum(mfs, "orders_dlq_total", nil); got != 0 {
		t.Errorf("orders_dlq_total = %v, want 0", got)
	}
	if got, _ := sum(mfs, "orders_events_total", map[string]string{"outcome": "dead_lettered"}); got != 0 {
		t.Errorf("dead-lettered events = %v, want 0", got)
	}
	if st := in.App.Consumer().Status(); st.DeadLettered != 0 {
		t.Errorf("consumer dead-lettered %d records", st.DeadLettered)
	}
	for i := range n {
		if got := orderStatus(t, in.App.Store(), fmt.Sprintf("b-%d", i)); got == "" {
			t.Errorf("order b-%d missing", i)
		}
	}
}

// documentedStatus fails the test unless the OpenAPI document lists status
// among a readiness component's statuses.
func documentedStatus(t *testing.T, in *apptest.Instance, status string) {
	t.Helper()
	resp, err := http.Get(in.BaseURL + in.Config.OpenAPIURL)
	if err != nil {
		t.Fatalf("GET the OpenAPI document: %v", err)
	}
	defer resp.Body.Close()
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Enum []string `json:"enum"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatalf("decode the OpenAPI document: %v", err)
	}
	enum := doc.Components.Schemas["Component"].Properties["status"].Enum
	if !slices.Contains(enum, status) {
		t.Errorf("the OpenAPI document's component statuses %v lack %q", enum, status)
	}
}

// TestPartitionsRetryOnceTheBreakerCloses: a partition waiting in backoff
// for the database shows in /readyz (the consumer is "retrying", not ok),
// and tries its record again as soon as the database breaker closes, not
// when its backoff ends (here ten minutes, beyond every wait of the test).
func TestPartitionsRetryOnceTheBreakerCloses(t *testing.T) {
	dbURL, proxy := proxiedPostgres(t)
	in := apptest.Start(t, apptest.Options{DatabaseURL: dbURL, AppOptions: app.Options{
		BreakerFailures: 1, BreakerOpenFor: time.Second,
		RetryInitial: 10 * time.Minute, RetryMax: 10 * time.Minute,
	}})
	waitReady(t, in, http.StatusOK, "consumer running", componentIs("consumer", "ok"))

	proxy.Close()
	produce(t, client(t, in.App.BrokerAddr()), &kgo.Record{Key: []byte("w-1"), Value: orderCreated("w-1")})
	r := waitReady(t, in, http.StatusServiceUnavailable, "the consumer retrying", componentIs("consumer", "retrying"))
	if d := r.Components["consumer"].Detail; !strings.Contains(d, "1 partition waiting") {
		t.Errorf("consumer detail %q, want the partition waiting", d)
	}
	documentedStatus(t, in, "retrying")

	proxy.Reopen()
	waitReady(t, in, http.StatusOK, "database breaker closed", componentIs("circuit_breaker_database", "ok"))
	waitMetric(t, in, "orders_events_total", map[string]string{"event": "OrderCreated", "outcome": "applied"}, 1)
	waitReady(t, in, http.StatusOK, "consumer ok again", componentIs("consumer", "ok"))
}

// TestDLQWriteFailureIsVisible: a KAFKA_DLQ_TOPIC the cluster does not have
// is logged at error level at start-up; dead-letter writes to it
// (UNKNOWN_TOPIC_OR_PARTITION) block the partition of the first bad record
// for good; /readyz says so (503), the consumer status has the error, and
// orders_dlq_write_failures_total counts the failed writes.
func TestDLQWriteFailureIsVisible(t *testing.T) {
	addr := testkit.FreeAddr(t)
	startBroker(t, addr, t.TempDir())
	logs := &testkit.LogBuffer{}
	in := apptest.Start(t, apptest.Options{BrokerAddr: addr, Env: map[string]string{"KAFKA_DLQ_TOPIC": "no-such-dlq"}, Logs: logs})
	waitReady(t, in, http.StatusOK, "consumer running", componentIs("consumer", "ok"))
	// Start-up said so already, before any record failed.
	if s := logs.String(); !strings.Contains(s, "dead-letter topic does not exist") || !strings.Contains(s, "no-such-dlq") {
		t.Errorf("no error at start-up about the missing DLQ topic; logs:\n%s", s)
	}

	produce(t, client(t, addr), &kgo.Record{Key: []byte("m-1"), Value: []byte("{not json")})
	r := waitReady(t, in, http.StatusServiceUnavailable, "the DLQ failing", componentIs("consumer", "dlq_failing"))
	if d := r.Components["consumer"].Detail; !strings.Contains(d, "no-such-dlq") || !strings.Contains(d, "1 partition blocked") {
		t.Errorf("consumer detail %q, want the DLQ topic and the blocked partition", d)
	}
	documentedStatus(t, in, "dlq_failing")
	if st := in.App.Consumer().Status(); !strings.Contains(st.LastError, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Errorf("consumer last error %q, want the DLQ write's", st.LastError)
	}
	if got, _ := sum(scrape(t, in), "orders_dlq_write_failures_total", nil); got < 1 {
		t.Errorf("orders_dlq_write_failures_total = %v, want at least 1", got)
	}
}

// TestNewFailureReleasesWhatItAcquired: a start-up that fails late (here the
// HTTP port is taken) returns an error naming the setting, and the embedded
// broker it had already started is closed again, its port free.
func TestNewFailureReleasesWhatItAcquired(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	brokerAddr := free.Addr().String()
	free.Close()

	dir := t.TempDir()
	env := map[string]string{
		"APP_HOST":            "127.0.0.1",
		"APP_PORT":            fmt.Sprint(taken.Addr().(*net.TCPAddr).Port),
		"DATABASE_URL":        sqlstoretest.URL(t, sqlstore.DialectSQLite),
		"EMBEDDED_KAFKA_ADDR": brokerAddr,
		"EMBEDDED_KAFKA_DIR":  "",
		"LOG_FILE":            "",
	}
	cfg, err := config.LoadLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, filepath.Join(dir, "no.env"))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	a, err := app.New(t.Context(), cfg, slog.New(slog.DiscardHandler), app.Options{})
	if err == nil {
		a.Close()
		t.Fatal("app.New succeeded on a port that is taken")
	}
	if !strings.Contains(err.Error(), "APP_HOST:APP_PORT") {
		t.Errorf("error %q does not name APP_HOST:APP_PORT", err)
	}
	again, err := net.Listen("tcp", brokerAddr)
	if err != nil {
		t.Fatalf("the embedded broker's address %s is still taken after app.New failed: %v", brokerAddr, err)
	}
	again.Close()
}
