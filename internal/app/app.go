// Package app is the composition root: it builds every part of the service
// from the configuration, starts them in order and stops them in reverse.
// Nothing else in the service constructs adapters or reads configuration.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderd/orderd/internal/breaker"
	"github.com/orderd/orderd/internal/config"
	"github.com/orderd/orderd/internal/delivery"
	"github.com/orderd/orderd/internal/events"
	"github.com/orderd/orderd/internal/fault"
	"github.com/orderd/orderd/internal/kafka"
	"github.com/orderd/orderd/internal/metrics"
	"github.com/orderd/orderd/internal/notifylog"
	"github.com/orderd/orderd/internal/order/cancel"
	"github.com/orderd/orderd/internal/order/fulfil"
	"github.com/orderd/orderd/internal/order/process"
	"github.com/orderd/orderd/internal/sqlstore"
	"github.com/orderd/orderd/internal/startup"
)

// App is the running service.
type App struct {
	cfg    config.Config
	logger *slog.Logger

	embedded *kafka.Embedded // nil unless KAFKA_BROKER_URL=embedded
	store    *sqlstore.Store
	producer *kafka.Producer
	consumer *kafka.Consumer
	admin    *kafka.Admin // consumer lag
	handler  *events.Handler
	combine  *combiner[events.Prepared]
	// eventNames are the registered events, which POST /events publishes.
	eventNames []string

	metrics        *metrics.Metrics
	lagInterval    time.Duration
	dbBreaker      *breaker.Breaker
	notifyBreaker  *breaker.Breaker
	breakerOpenFor time.Duration
	gate           *fetchGate // pauses fetching while a breaker is open

	listener net.Listener
	server   *http.Server

	// dbReady is closed once the database answered and its schema is
	// migrated; until then the consumer does not start, the HTTP routes
	// that need the database answer 503 and /readyz reports dbWait.
	dbReady chan struct{}
	dbMu    sync.Mutex
	dbWait  string // why the database is not ready yet: the last attempt's error

	closeOnce sync.Once
}

// Options adjust an App for tests; the zero value is the production setup.
type Options struct {
	// ConsumerOpts are passed to the consumer (e.g. a short commit interval).
	// The app's own observer (for the metrics) replaces any WithObserver.
	ConsumerOpts []kafka.ConsumerOption
	// LagInterval is how often the consumer lag metric is refreshed (5s
	// when zero).
	LagInterval time.Duration
	// BreakerFailures is how many consecutive transient failures open the
	// database or notifier circuit breaker (breaker.DefaultFailures when zero).
	BreakerFailures uint32
	// BreakerOpenFor is how long an open circuit breaker fails fast before
	// it probes again (breaker.DefaultOpenFor when zero).
	BreakerOpenFor time.Duration
	// Processors are event processors registered after the default ones,
	// replacing any of the same name (tests: e.g. one that panics).
	Processors map[string]events.Processor
	// EmbeddedOpts are extra options for the embedded broker.
	EmbeddedOpts []kfake.Opt
	// Version is shown in the OpenAPI document.
	Version string
	// RetryInitial and RetryMax bound the consumer's backoff between a
	// record's attempts (the kafka package's defaults, 100 ms and 30 s,
	// when zero).
	RetryInitial, RetryMax time.Duration
	// HTTPReadTimeout bounds the reading of a whole request, body included
	// (httpReadTimeout when zero).
	HTTPReadTimeout time.Duration
}

// httpReadTimeout bounds the reading of a whole HTTP request: a client that
// stalls mid-body gets a 408 instead of holding a connection for ever.
const httpReadTimeout = 30 * time.Second

// batchSize is the most records of one partition a worker hands in at a
// time, applied in one transaction (group commit): one commit — on SQLite
// one fsync — and a handful of multi-row statements for all of them
// (sqlstore's unit of work). On PostgreSQL concurrent transactions cannot
// deadlock: each takes its row locks up front (order.Tx Preload) in one
// fixed order.
const batchSize = 256

// maxCombined bounds the records of one transaction that merges several
// partitions' batches (see combiner).
const maxCombined = 2048

// postgresSpill is how many queued records start a further merged
// transaction on PostgreSQL (see combiner): a drain's batches (batchSize)
// each start their own, while at a steady rate the few records each
// partition's fetch brings are merged into one transaction.
const postgresSpill = 64

// New builds the service: the embedded broker (when configured), the store
// (migrated, when the database answers; see waitForDatabase), the use cases, the
// event pipeline and the HTTP server bound to APP_HOST:APP_PORT. Nothing
// consumes or serves until Run.
func New(ctx context.Context, cfg config.Config, logger *slog.Logger, opts Options) (_ *App, err error) {
	// a stays set when New returns nil and an error: the deferred Close
	// must release what was acquired before the failure.
	a := &App{cfg: cfg, logger: logger}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	if cfg.AppReload {
		logger.Info("APP_RELOAD is accepted for compatibility; a compiled binary does not hot-reload")
	}
	kcfg := cfg.KafkaConfig()
	kcfg.RetryInitial, kcfg.RetryMax = opts.RetryInitial, opts.RetryMax
	if cfg.Embedded() {
		ecfg := cfg.EmbeddedConfig()
		ecfg.Logger, ecfg.Opts = logger.With("component", "embedded-kafka"), opts.EmbeddedOpts
		a.embedded, err = kafka.StartEmbedded(ecfg)
		if err != nil {
			return nil, fmt.Errorf("embedded broker (EMBEDDED_KAFKA_ADDR=%s): %w", cfg.EmbeddedKafkaAddr, err)
		}
		kcfg.Brokers = []string{a.embedded.Addr()}
	}

	// A bad URL stops start-up; an unreachable database does not: the
	// HTTP server comes up, /readyz answers 503, and Run retries (§6).
	a.store, err = sqlstore.Open(ctx, cfg.DatabaseURL, logger)
	if err != nil {
		return nil, fmt.Errorf("database (DATABASE_URL): %w", err)
	}
	a.dbReady = make(chan struct{})
	if err := a.prepareDatabase(ctx); err != nil {
		if fault.KindOf(err) != fault.Transient || sqlstore.Misconfigured(err) {
			return nil, fmt.Errorf("database (DATABASE_URL): %w", err)
		}
		logger.Warn("database not reachable, retrying in the background; /readyz answers 503 until it is", "attempt", 1, "retry_in", startup.Wait(1), "err", err)
	}

	// Circuit breakers around the database (the event pipeline's
	// transactions) and the notifier; while one is open, fetching pauses.
	a.gate = newFetchGate(kcfg.Topics, logger)
	a.newBreakers(opts)
	notifier := breaker.NewNotifier(a.notifyBreaker, notifylog.New(logger))
	uc := events.UseCases{
		Process: process.New(cfg.Rules, notifier),
		Cancel:  cancel.New(cfg.Rules, notifier),
		Fulfil:  fulfil.New(),
	}
	registry := events.DefaultRegistry(uc)
	for name, p := range opts.Processors {
		registry.Register(name, p)
	}
	a.handler = events.NewHandler(registry, breaker.NewTransactor(a.dbBreaker, a.store), logger)
	// SQLite's one writer takes one merged transaction at a time.
	// PostgreSQL works on several in parallel: there a further one starts
	// as soon as postgresSpill records wait, so only small batches are
	// merged (docs/BENCHMARKS.md, items 29 and 31).
	spill := 0
	if a.store.Dialect() == sqlstore.DialectPostgres {
		spill = postgresSpill
	}
	a.combine = newCombiner(a.handler.Apply, maxCombined, spill)
	a.eventNames = registry.Names()
	a.newMetrics(a.eventNames)
	a.store.ObserveTransactions(a.metrics.Transaction)
	a.lagInterval = opts.LagInterval
	if a.lagInterval <= 0 {
		a.lagInterval = defaultLagInterval
	}

	a.producer, err = kafka.NewProducer(kcfg, logger, kgo.WithHooks(a.metrics.KafkaClient("producer")))
	if err != nil {
		return nil, fmt.Errorf("kafka producer: %w", err)
	}
	copts := append(opts.ConsumerOpts[:len(opts.ConsumerOpts):len(opts.ConsumerOpts)],
		kafka.WithObserver(a.observe),
		kafka.WithBatchHandler(a.handleBatch, batchSize),
		kafka.WithClientOpts(kgo.WithHooks(a.metrics.KafkaClient("consumer"), a.gate)),
		kafka.WithDLQClientOpts(kgo.WithHooks(a.metrics.KafkaClient("dlq"))),
		kafka.WithDLQWriteFailures(func(error) { a.metrics.DLQWriteFailed() }),
	)
	a.consumer, err = kafka.NewConsumer(kcfg, a.handleRecord, logger, copts...)
	if err != nil {
		return nil, fmt.Errorf("kafka consumer: %w", err)
	}
	a.admin, err = kafka.NewAdmin(kcfg, logger)
	if err != nil {
		return nil, fmt.Errorf("kafka admin: %w", err)
	}

	readTimeout := opts.HTTPReadTimeout
	if readTimeout <= 0 {
		readTimeout = httpReadTimeout
	}
	a.server = &http.Server{
		Handler:           a.httpHandler(uc, opts.Version),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       readTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	addr := net.JoinHostPort(cfg.AppHost, fmt.Sprint(cfg.AppPort))
	a.listener, err = net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on APP_HOST:APP_PORT %s: %w", addr, err)
	}
	return a, nil
}

func (a *App) handleRecord(ctx context.Context, rec *kgo.Record) error {
	_, err := a.handler.Handle(ctx, rec.Value)
	return err
}

// handleBatch hands a partition's records to the group commit, merged with
// other partitions' (combiner).
func (a *App) handleBatch(ctx context.Context, recs []*kgo.Record, metas []*delivery.Meta) (int, []error, error) {
	values := make([][]byte, len(recs))
	for i, r := range recs {
		values[i] = r.Value
	}
	// Decoded here, in the partition's worker, while another batch's
	// transaction may run.
	pre := a.handler.Prepare(values, metas)
	return a.combine.do(ctx, pre, metas)
}

// prepareDatabase pings the database and applies the migrations. On success
// it closes dbReady; on failure it keeps the error for /readyz.
func (a *App) prepareDatabase(ctx context.Context) error {
	err := a.store.Ping(ctx)
	if err == nil {
		err = a.store.Migrate(ctx)
	}
	if err != nil {
		a.dbMu.Lock()
		a.dbWait = err.Error()
		a.dbMu.Unlock()
		return err
	}
	a.logger.Info("database opened", a.store.Where()...)
	close(a.dbReady)
	return nil
}

// waitForDatabase retries prepareDatabase until it succeeds, on the seed's
// schedule (package startup) and then every 16 s, while the HTTP server
// answers and /readyz reports 503. It reports false if ctx ends first. A
// permanent error (a migration that cannot apply) is retried too: it is
// logged at error level, and an operator may mend the database meanwhile.
func (a *App) waitForDatabase(ctx context.Context) bool {
	for attempt := 1; ; attempt++ { // attempt 1 was New's
		select {
		case <-a.dbReady:
			return true
		case <-ctx.Done():
			return false
		case <-time.After(startup.Wait(attempt)):
		}
		err := a.prepareDatabase(ctx)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		next := startup.Wait(attempt + 1)
		switch {
		case fault.KindOf(err) != fault.Transient:
			a.logger.Error("database start-up failed; retrying", "attempt", attempt+1, "retry_in", next, "err", err)
		case startup.UsedUp(attempt + 1):
			a.logger.Error("database unreachable after start-up retries; still retrying in the background", "attempt", attempt+1, "retry_in", next, "err", err)
		default:
			a.logger.Warn("database not reachable, retrying", "attempt", attempt+1, "retry_in", next, "err", err)
		}
	}
}

// databaseWait returns why the database is not ready, or "" once it is.
func (a *App) databaseWait() string {
	select {
	case <-a.dbReady:
		return ""
	default:
	}
	a.dbMu.Lock()
	defer a.dbMu.Unlock()
	return "not ready yet: " + a.dbWait
}

// HTTPAddr returns the address the HTTP server listens on.
func (a *App) HTTPAddr() string { return a.listener.Addr().String() }

// BrokerAddr returns the Kafka bootstrap address in use.
func (a *App) BrokerAddr() string {
	if a.embedded != nil {
		return a.embedded.Addr()
	}
	return a.cfg.KafkaConfig().Brokers[0]
}

// Embedded returns the embedded broker, or nil when a cluster is configured.
func (a *App) Embedded() *kafka.Embedded { return a.embedded }

// Store returns the database adapter.
func (a *App) Store() *sqlstore.Store { return a.store }

// Consumer returns the Kafka consumer.
func (a *App) Consumer() *kafka.Consumer { return a.consumer }

// Run serves HTTP and consumes events until ctx is done, then shuts down
// gracefully within SHUTDOWN_TIMEOUT: stop accepting requests, let in-flight
// records finish and commit, leave the group, close the store and broker.
func (a *App) Run(ctx context.Context) error {
	defer a.Close()
	errc := make(chan error, 2)
	go func() {
		if err := a.server.Serve(a.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http server: %w", err)
		}
	}()
	a.logger.Info("HTTP server listening", "addr", "http://"+a.HTTPAddr(), "api", a.cfg.APIV1Str)

	consumeCtx, stopConsuming := context.WithCancel(context.WithoutCancel(ctx))
	defer stopConsuming()
	var lagLoop sync.WaitGroup
	defer lagLoop.Wait()
	lagCtx, stopLag := context.WithCancel(ctx)
	defer stopLag()
	lagLoop.Go(func() { a.refreshLag(lagCtx, a.lagInterval) })
	consumerDone := make(chan error, 1)
	go func() {
		if !a.waitForDatabase(consumeCtx) {
			consumerDone <- consumeCtx.Err()
			return
		}
		a.waitForBroker(consumeCtx)
		a.checkDLQTopic(consumeCtx)
		consumerDone <- a.consumer.Run(consumeCtx)
	}()

	var runErr error
	select {
	case <-ctx.Done():
		a.logger.Info("shutting down", "timeout", a.cfg.ShutdownTimeout)
	case runErr = <-errc:
		a.logger.Error("stopping after failure", "err", runErr)
	case runErr = <-consumerDone:
		a.logger.Error("consumer stopped unexpectedly", "err", runErr)
		consumerDone <- runErr
	}

	shutdownCtx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	stopConsuming()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := a.server.Shutdown(shutdownCtx); err != nil {
			a.logger.Warn("HTTP shutdown", "err", err)
		}
	})
	select {
	case err := <-consumerDone:
		if err != nil && !errors.Is(err, context.Canceled) && runErr == nil {
			runErr = err
		}
	case <-shutdownCtx.Done():
		a.logger.Error("consumer did not stop within SHUTDOWN_TIMEOUT", "timeout", a.cfg.ShutdownTimeout)
	}
	wg.Wait()
	a.logger.Info("stopped")
	return runErr
}

// waitForBroker pings Kafka on the seed's schedule (package startup) and
// says so in the log; after that the client keeps retrying in the background
// while the HTTP server answers and /readyz reports 503.
func (a *App) waitForBroker(ctx context.Context) {
	for try := 1; ; try++ {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := a.producer.Ping(pctx)
		cancel()
		if err == nil || ctx.Err() != nil {
			return
		}
		if startup.UsedUp(try) {
			a.logger.Error("Kafka unreachable after start-up retries; still retrying in the background", "attempt", try, "brokers", a.BrokerAddr(), "err", err)
			return
		}
		d := startup.Wait(try)
		a.logger.Warn("Kafka not reachable, retrying", "attempt", try, "retry_in", d, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
	}
}

// checkDLQTopic logs an error when the cluster has no KAFKA_DLQ_TOPIC: the
// first record that must be dead-lettered would block its partition until
// the topic is created (unless the brokers create topics on first use). A
// broker that does not answer is not an error here: the consumer retries it.
func (a *App) checkDLQTopic(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	topic := a.cfg.KafkaDLQTopic
	missing, err := a.admin.MissingTopics(ctx, topic)
	switch {
	case err != nil:
		a.logger.Debug("dead-letter topic not checked", "dlq_topic", topic, "err", err)
	case len(missing) > 0:
		a.logger.Error("dead-letter topic does not exist (KAFKA_DLQ_TOPIC): a record that fails will block its partition until the topic is created, unless the brokers create topics on first use",
			"dlq_topic", topic)
	}
}

// Close releases everything New acquired; it is safe to call more than once.
func (a *App) Close() {
	a.closeOnce.Do(func() {
		if a.listener != nil {
			_ = a.listener.Close()
		}
		if a.producer != nil {
			a.producer.Close()
		}
		if a.admin != nil {
			a.admin.Close()
		}
		// Before the store: the database breaker's probe pings it.
		for _, b := range a.breakers() {
			b.Close()
		}
		if a.store != nil {
			_ = a.store.Close()
		}
		if a.embedded != nil {
			a.embedded.Close()
		}
	})
}
