// Package metrics is the service's Prometheus instrumentation (§8): event
// outcomes and durations, transactions and their commits, dead-lettered
// records, consumer lag and state, circuit breakers, HTTP requests by route,
// the Kafka clients' own metrics (franz-go kprom) and the Go runtime and
// process collectors.
//
// Everything is registered on a registry owned by one Metrics value, never on
// the global default registry, so that several service instances can run in
// one process (as the end-to-end tests do).
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/plugin/kprom"

	"github.com/orderd/orderd/internal/delivery"
)

// Metric names, as served on /metrics.
const (
	EventsTotal          = "orders_events_total"
	EventDuration        = "orders_event_duration_seconds"
	TransactionDuration  = "orders_transaction_duration_seconds"
	CommitDuration       = "orders_db_commit_duration_seconds"
	DLQTotal             = "orders_dlq_total"
	DLQWriteFailures     = "orders_dlq_write_failures_total"
	ConsumerLag          = "orders_consumer_lag"
	ConsumerLagErrors    = "orders_consumer_lag_refresh_errors_total"
	ConsumerState        = "orders_consumer_state"
	ConsumerFetchPaused  = "orders_consumer_fetch_paused"
	CircuitBreakerState  = "orders_circuit_breaker_state"
	HTTPRequestsTotal    = "http_requests_total"
	HTTPRequestDuration  = "http_request_duration_seconds"
	KafkaClientNamespace = "orders_kafka"
)

// UnknownEvent is the event label of records whose event name could not be
// read or is not registered, so that the wire cannot create label values.
const UnknownEvent = "unknown"

// eventSeries are one event name's pre-resolved series.
type eventSeries struct {
	outcomes map[delivery.Outcome]prometheus.Counter
	duration prometheus.Observer
}

// Metrics holds the service's collectors and their registry.
type Metrics struct {
	reg *prometheus.Registry

	events    map[string]*eventSeries // read-only after New
	txDur     prometheus.Observer
	commitDur prometheus.Observer
	dlq       *prometheus.CounterVec
	dlqFails  prometheus.Counter
	lag       *prometheus.GaugeVec
	lagErrors prometheus.Counter
	httpReqs  *prometheus.CounterVec
	httpDur   *prometheus.HistogramVec

	lagMu   sync.Mutex
	lagSeen map[[2]string]bool
}

// New builds the registry with the Go runtime and process collectors and
// the service's metrics. eventNames are the event names the service knows;
// any other name is counted as UnknownEvent.
func New(eventNames []string) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), lagSeen: map[[2]string]bool{}}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)

	events := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: EventsTotal,
		Help: "Handler calls by event name and outcome (applied, duplicate, dead_lettered, retried).",
	}, []string{"event", "outcome"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    EventDuration,
		Help:    "Duration of one handler call (decode, transaction, commit), by event name.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"event"})
	m.dlq = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: DLQTotal,
		Help: "Records acknowledged on the dead-letter topic, by error_kind.",
	}, []string{"kind"})
	m.dlqFails = prometheus.NewCounter(prometheus.CounterOpts{
		Name: DLQWriteFailures,
		Help: "Failed attempts to write a record to the dead-letter topic; each is retried, and its partition waits meanwhile.",
	})
	m.lag = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: ConsumerLag,
		Help: "Records not yet committed by the consumer group, per topic and partition (refreshed periodically).",
	}, []string{"topic", "partition"})
	m.lagErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: ConsumerLagErrors,
		Help: "Failed consumer lag refreshes; the lag gauge keeps its last values meanwhile.",
	})
	m.httpReqs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: HTTPRequestsTotal,
		Help: "HTTP requests by method, route pattern and status code.",
	}, []string{"method", "route", "status"})
	m.httpDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    HTTPRequestDuration,
		Help:    "HTTP request duration by method and route pattern.",
		Buckets: prometheus.DefBuckets,
	}, []string{"method", "route"})
	// Where a batch's time goes: its whole transaction, and its COMMIT
	// alone, the wait until the database has made it durable. A tail that
	// the commits share is the database's disk, not the service.
	txDur := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    TransactionDuration,
		Help:    "Committed unit-of-work transactions (the events' and the API's), from begin to the end of the COMMIT, a rerun included. With orders_events_total's rate, the events per transaction.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	})
	commitDur := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    CommitDuration,
		Help:    "The COMMIT of each transaction counted in orders_transaction_duration_seconds: the wait until the database has made it durable (PostgreSQL's WAL flush; SQLite's log write and fsync).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	})
	m.txDur, m.commitDur = txDur, commitDur
	m.reg.MustRegister(events, duration, m.dlq, m.dlqFails, m.lag, m.lagErrors, m.httpReqs, m.httpDur, txDur, commitDur)

	// Pre-resolve every series of the hot path, which also makes them
	// visible (at zero) before the first event.
	m.events = make(map[string]*eventSeries, len(eventNames)+1)
	for _, name := range append([]string{UnknownEvent}, eventNames...) {
		s := &eventSeries{duration: duration.WithLabelValues(name), outcomes: map[delivery.Outcome]prometheus.Counter{}}
		for _, o := range delivery.Outcomes() {
			s.outcomes[o] = events.WithLabelValues(name, string(o))
		}
		m.events[name] = s
	}
	return m
}

// Registry returns the registry the metrics are on, e.g. to add collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          m.reg,
		EnableOpenMetrics: true,
	})
}

// Event counts one handler call of event name with its outcome and
// duration. It is safe for concurrent use and allocates nothing.
func (m *Metrics) Event(name string, outcome delivery.Outcome, d time.Duration) {
	s := m.events[name]
	if s == nil {
		s = m.events[UnknownEvent]
	}
	if c := s.outcomes[outcome]; c != nil {
		c.Inc()
	}
	s.duration.Observe(d.Seconds())
}

// Transaction records one committed unit-of-work transaction that took
// total, of which its COMMIT took commit. It is safe for concurrent use.
func (m *Metrics) Transaction(total, commit time.Duration) {
	m.txDur.Observe(total.Seconds())
	m.commitDur.Observe(commit.Seconds())
}

// DeadLettered counts one record acknowledged on the DLQ with error_kind kind.
func (m *Metrics) DeadLettered(kind string) { m.dlq.WithLabelValues(kind).Inc() }

// DLQWriteFailed counts one failed attempt to write to the DLQ.
func (m *Metrics) DLQWriteFailed() { m.dlqFails.Inc() }

// SetLag replaces the lag gauge's values with lag (topic → partition →
// records); partitions missing from lag are removed.
func (m *Metrics) SetLag(lag map[string]map[int32]int64) {
	m.lagMu.Lock()
	defer m.lagMu.Unlock()
	seen := make(map[[2]string]bool, len(m.lagSeen))
	for topic, ps := range lag {
		for p, n := range ps {
			key := [2]string{topic, strconv.Itoa(int(p))}
			m.lag.WithLabelValues(key[0], key[1]).Set(float64(n))
			seen[key] = true
		}
	}
	for key := range m.lagSeen {
		if !seen[key] {
			m.lag.DeleteLabelValues(key[0], key[1])
		}
	}
	m.lagSeen = seen
}

// LagRefreshFailed counts a failed lag refresh.
func (m *Metrics) LagRefreshFailed() { m.lagErrors.Inc() }

// ConsumerState exports orders_consumer_state{state}: 1 for the state
// current returns, 0 for the other states.
func (m *Metrics) ConsumerState(current func() string, states ...string) {
	for _, s := range states {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        ConsumerState,
			Help:        "The Kafka consumer's state: 1 for the current one (connecting, running, stopped).",
			ConstLabels: prometheus.Labels{"state": s},
		}, func() float64 {
			if current() == s {
				return 1
			}
			return 0
		}))
	}
}

// FetchPaused exports orders_consumer_fetch_paused: 1 while paused reports
// that the consumer's fetching is paused (a circuit breaker is open).
func (m *Metrics) FetchPaused(paused func() bool) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: ConsumerFetchPaused,
		Help: "1 while the consumer's fetching is paused because a circuit breaker is open.",
	}, func() float64 {
		if paused() {
			return 1
		}
		return 0
	}))
}

// CircuitBreaker exports orders_circuit_breaker_state{name}: the value
// state returns, 0 closed, 1 half-open, 2 open.
func (m *Metrics) CircuitBreaker(name string, state func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        CircuitBreakerState,
		Help:        "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
		ConstLabels: prometheus.Labels{"name": name},
	}, state))
}

// KafkaClient returns kprom hooks for one franz-go client, registering its
// metrics under orders_kafka_* with the label client=name. Pass them with
// kgo.WithHooks. Two clients alive at once need two names; a client that is
// closed unregisters its metrics, so a successor may use its name.
func (m *Metrics) KafkaClient(name string) *kprom.Metrics {
	return kprom.NewMetrics(KafkaClientNamespace,
		kprom.Registerer(m.reg), kprom.Gatherer(m.reg),
		kprom.WithStaticLabel(prometheus.Labels{"client": name}))
}

// UnmatchedRoute is the route label of requests no route matched.
const UnmatchedRoute = "unmatched"

// Instrument counts and times the requests next serves by method, route and
// status. route returns the pattern that serves a request (e.g.
// "GET /api/v0/orders/{id}"), or "" when none does; raw paths never become
// labels, so the number of series stays bounded.
func (m *Metrics) Instrument(next http.Handler, route func(*http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rt := route(r)
		if rt == "" {
			rt = UnmatchedRoute
		}
		sw := &statusWriter{ResponseWriter: w}
		panicked := true
		defer func() {
			// Counted even when a panic gets through (the server then
			// drops the connection), so failures do not go unseen.
			status := sw.status
			switch {
			case status != 0:
			case panicked:
				status = http.StatusInternalServerError
			default:
				status = http.StatusOK
			}
			m.observeHTTP(r.Method, rt, status, start)
		}()
		next.ServeHTTP(sw, r)
		panicked = false
	})
}

func (m *Metrics) observeHTTP(method, route string, status int, start time.Time) {
	method = knownMethod(method)
	m.httpReqs.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.httpDur.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
}

// knownMethod bounds the method label: any method outside the standard
// ones is "OTHER".
func knownMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush sends buffered data to the client, if the writer can.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
