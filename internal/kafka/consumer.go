package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/orderd/orderd/internal/delivery"
	"github.com/orderd/orderd/internal/fault"
	"github.com/orderd/orderd/internal/startup"
)

// Handler processes one record. It returns nil only when the record's effect
// is committed (in the DB). Its error is routed by fault.Of: permanent errors
// go to the DLQ at once, transient ones are retried until they pass, and
// unclassified ones are tried MaxAttempts times before the DLQ. The context
// carries a *delivery.Meta the handler may fill in (event id, name, order id)
// and is cancelled only when the consumer gives up waiting for it at
// shutdown or when the partition is lost.
type Handler func(ctx context.Context, rec *kgo.Record) error

// BatchHandler handles several records of one partition at once, in offset
// order — in one database transaction (group commit). It returns how many
// records, from the first, it finished (n), and for each of them nil
// (handled: its effect is committed) or a permanent error (the record goes to
// the DLQ). It stops at the first record it cannot finish so, with the error
// that stopped it (stop): that record's first attempt. The record then goes
// to the Handler for its further attempts, before batching resumes. metas[i]
// describes recs[i]; the batch handler fills them in as a Handler fills in
// its context's Meta. ctx is cancelled only when the consumer gives up
// waiting.
//
// A stop error that wraps ErrNotReached says the batch handler did not get
// to records[n]: the unit of work it was part of, shared with other
// batches, stopped at another batch's record first. The Handler then takes
// records[n] for its first attempt, and nothing is reported as failed.
type BatchHandler func(ctx context.Context, recs []*kgo.Record, metas []*delivery.Meta) (n int, errs []error, stop error)

// ErrNotReached, wrapped in a BatchHandler's stop error, says the batch was
// not reached: it was merged into a transaction with other batches, and that
// transaction stopped (at another batch's record, or as a whole) before it
// got to this batch's first unfinished record.
var ErrNotReached = errors.New("not reached: the transaction this batch was merged into stopped first")

// State is the consumer's lifecycle state as reported by Status.
type State string

// States of a Consumer.
const (
	// StateConnecting means no broker has answered yet in this session.
	StateConnecting State = "connecting"
	// StateRunning means a broker answered or the group was joined, and
	// no failure of the group session has taken the assignment away since.
	StateRunning State = "running"
	// StateStopped means the consumer is not consuming (Stop, or Run ended).
	StateStopped State = "stopped"
)

// RetryingAfter is how long a partition waits in backoff on a record that
// keeps failing with a transient error before Status counts it as retrying,
// unless Config.RetryingAfter says otherwise.
const RetryingAfter = 5 * time.Second

// Outcome describes one call of the handler, for metrics, readiness and
// circuit breakers. Kind and Reason are fault.Of(Err) (zero when Err is nil).
// DLQ is true when this call's failure was written to the DLQ and
// acknowledged; the outcome is then reported after the acknowledgement.
type Outcome struct {
	Topic     string
	Partition int32
	Offset    int64
	Err       error
	Kind      fault.Kind
	Reason    string
	DLQ       bool
	Duration  time.Duration // of this handler call (a batch's share of it)
	Attempts  int           // this call's number, from 1
	Event     string        // the event's name, once decoded
	Duplicate bool          // handled as an already applied event
}

// Status is the consumer's state for GET …/message_broker/status.
type Status struct {
	State        State              `json:"state"`
	Topics       []string           `json:"topics"`
	GroupID      string             `json:"group_id"`
	DLQTopic     string             `json:"dlq_topic"`
	Assigned     map[string][]int32 `json:"assigned_partitions"`
	Handled      int64              `json:"records_handled"`
	DeadLettered int64              `json:"records_dead_lettered"`
	LastError    string             `json:"last_error,omitempty"`
	LastErrorAt  *time.Time         `json:"last_error_at,omitempty"`
	// Retrying is how many partitions have waited in backoff for at least
	// Config.RetryingAfter (RetryingAfter by default) to try again a
	// record that keeps failing with a transient error (a dependency is
	// down). A retry that passes sooner — a race lost once, a blip — is
	// not counted, so readiness does not flicker with it.
	Retrying int `json:"partitions_retrying"`
	// DLQBlocked is how many partitions wait for a record's dead-letter
	// write, which failed and is being retried.
	DLQBlocked int `json:"partitions_dlq_blocked"`
}

// ConsumerOption changes a Consumer built by NewConsumer.
type ConsumerOption func(*Consumer)

// WithObserver has fn called after every handler call with its Outcome. fn
// is called from the partitions' goroutines, concurrently, and must be quick.
func WithObserver(fn func(Outcome)) ConsumerOption {
	return func(c *Consumer) { c.observe = fn }
}

// WithCommitInterval sets the shortest time between two offset commits while
// consuming. By default a commit follows as soon as records finish and the
// previous commit is answered, and covers whatever finished meanwhile, so
// the commit rate is bounded by the broker's round trip; an interval bounds
// it further, at the cost of that much more latency per record. Offsets
// are also committed when partitions are revoked and at shutdown.
func WithCommitInterval(d time.Duration) ConsumerOption {
	return func(c *Consumer) {
		if d > 0 {
			c.commitEvery = d
		}
	}
}

// WithBatchHandler has each partition's queued records, up to max at a time,
// handed to bh first (see BatchHandler); the Handler then takes only the
// records bh could not finish. max 1 hands records to bh one at a time.
func WithBatchHandler(bh BatchHandler, max int) ConsumerOption {
	return func(c *Consumer) {
		if bh != nil && max >= 1 {
			c.batch, c.batchMax = bh, max
		}
	}
}

// WithClientOpts appends franz-go options to the consumer's client, e.g.
// kprom hooks or shorter group timeouts in tests. They are applied last.
func WithClientOpts(opts ...kgo.Opt) ConsumerOption {
	return func(c *Consumer) { c.clientOpts = append(c.clientOpts, opts...) }
}

// WithHandledLevel sets the level of the one line logged per handled record
// (info by default). Use debug when the handler logs its own line per event.
func WithHandledLevel(level slog.Level) ConsumerOption {
	return func(c *Consumer) { c.handledLevel = level }
}

// WithDLQWriteFailures has fn called with the error of every failed attempt
// to write a record to the DLQ topic (each is retried; the record's
// partition waits). fn is called from the partitions' goroutines and must be
// quick.
func WithDLQWriteFailures(fn func(error)) ConsumerOption {
	return func(c *Consumer) { c.dlqFailed = fn }
}

// WithDLQClientOpts appends franz-go options to the client that writes to
// the DLQ topic (the consumer builds its own), applied after DLQProducerOpts.
func WithDLQClientOpts(opts ...kgo.Opt) ConsumerOption {
	return func(c *Consumer) { c.dlqClientOpts = append(c.dlqClientOpts, opts...) }
}

const (
	// defaultCommitInterval is none: commits follow each other as fast as
	// the broker answers them. orderbench's SQLite latency phase (5,000
	// events/s) with a timing patch: 5 ms between commits had records wait
	// 3.4 ms (p50) and 12.7 ms (p99) from finishing to the commit's answer,
	// none 0.6 and 6.3 ms (docs/BENCHMARKS.md, item 20).
	defaultCommitInterval = 0
	// commitRetry is how soon a failed offset commit is tried again when no
	// record finishes meanwhile.
	commitRetry = time.Second
	// commitFailedPause is how long the commit loop waits after a failed
	// commit, however many records finish meanwhile, so that a broker that
	// refuses commits is not asked again (and the failure logged) for
	// every finished batch.
	commitFailedPause = 100 * time.Millisecond
	// maxQueued records waiting in one partition's queue pause fetching
	// that partition until half of them are handled, so a partition stuck
	// on a transient error does not buffer its whole backlog in memory.
	// Half of it should outlast a fetch round trip at full speed; with
	// fetchMaxWait as it is, orderbench drained alike with 1,024, 2,048 and
	// 4,096 (docs/BENCHMARKS.md).
	maxQueued = 4096
	// fetchMaxBytes and fetchMaxPartitionBytes bound a fetch response (the
	// client's defaults, 50 MiB, would dominate the service's memory). The
	// records handed out keep their whole decompressed batch alive until
	// the last of them is handled: with 1 MiB per partition, a heap profile
	// of a busy instance had 37 of 43 MB live in fetched batches, and the
	// live heap reached 48-50 MB of the 56 MiB soft limit (the collector
	// then ran nearly without pause). With 256 KiB it peaked at 29-30 MB.
	// orderbench 200,000 events, alternating: SQLite 25.4k-26.4k ev/s and
	// peak RSS 88.1-90.6 MiB with 1 MiB, 28.1k-28.6k and 85.7-87.5 MiB with
	// 256 KiB; PostgreSQL 27.3k/27.6k against 29.6k/30.2k. A batch larger
	// than the limit still comes through (the broker returns it whole when
	// it is the first of a fetch).
	fetchMaxBytes          = 4 << 20
	fetchMaxPartitionBytes = 256 << 10
	// fetchMaxWait is how long the broker may hold a fetch for records to
	// arrive (Kafka's own consumer's default; the client's is 5 s). A
	// partition resumed after a pause (maxQueued) is fetched only by the
	// next fetch request: while the one in flight waits for records on
	// partitions already caught up, the resumed partition's worker runs
	// dry. With 5 s, orderbench's 100,000-event drain on SQLite sat idle
	// for about 2 s at its end and ran at 11.7k–14.4k ev/s; with 500 ms,
	// 20.9k–23.1k.
	fetchMaxWait = 500 * time.Millisecond
	// sessionTimeout is the consumer group session timeout.
	sessionTimeout = 10 * time.Second
	// commitTimeout bounds one offset commit.
	commitTimeout = 10 * time.Second
	// abandonGrace is how long a handler may ignore the cancellation of its
	// context before its partition is released without it.
	abandonGrace = 5 * time.Second
)

// Consumer reads cfg.Topics in consumer group cfg.GroupID and hands every
// record to the handler: partitions in parallel, the records of a partition
// strictly in offset order. A record's offset is committed only after the
// handler returned nil or the record's DLQ copy was acknowledged, so nothing
// is ever skipped: after a crash or rebalance, unfinished records are
// delivered again.
type Consumer struct {
	cfg           Config
	handler       Handler
	batch         BatchHandler
	batchMax      int
	logger        *slog.Logger
	observe       func(Outcome)
	dlqFailed     func(error)
	commitEvery   time.Duration
	clientOpts    []kgo.Opt
	dlqClientOpts []kgo.Opt
	handledLevel  slog.Level
	reset         kgo.Offset

	running      atomic.Bool
	handled      atomic.Int64
	deadLettered atomic.Int64
	commitMu     sync.Mutex // serialises commits, so none rewinds another
	progressed   chan struct{}

	mu          sync.Mutex
	state       State
	want        bool          // Start (true) or Stop (false)
	ended       bool          // Run has returned
	wake        chan struct{} // nudges Run after Start/Stop
	stopSession context.CancelFunc
	sessionDone chan struct{}
	workers     map[topicPartition]*worker
	lastErr     string
	lastErrAt   time.Time
	retryNow    chan struct{} // closed and replaced by RetryNow
}

type topicPartition struct {
	topic     string
	partition int32
}

// NewConsumer checks cfg and returns a consumer that starts consuming when
// Run is called. Zero retry and shutdown settings in cfg get their defaults.
func NewConsumer(cfg Config, h Handler, logger *slog.Logger, opts ...ConsumerOption) (*Consumer, error) {
	if h == nil {
		return nil, errors.New("kafka consumer: nil handler")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.consumerDefaults()
	if len(cfg.Topics) == 0 {
		return nil, errors.New("KAFKA_TOPIC: no topic to consume")
	}
	if cfg.GroupID == "" {
		return nil, errors.New("KAFKA_GROUP_ID: empty")
	}
	if cfg.DLQTopic == "" {
		return nil, errors.New("KAFKA_DLQ_TOPIC: empty")
	}
	if slices.Contains(cfg.Topics, cfg.DLQTopic) {
		return nil, fmt.Errorf("KAFKA_DLQ_TOPIC: %q is also consumed (KAFKA_TOPIC); failures would loop", cfg.DLQTopic)
	}
	var reset kgo.Offset
	switch cfg.AutoOffsetReset {
	case "earliest":
		reset = kgo.NewOffset().AtStart()
	case "latest":
		reset = kgo.NewOffset().AtEnd()
	default:
		return nil, fmt.Errorf("KAFKA_AUTO_OFFSET_RESET: %q is not one of earliest, latest", cfg.AutoOffsetReset)
	}
	if _, err := cfg.ClientOpts(); err != nil {
		return nil, err
	}
	c := &Consumer{
		cfg:          cfg,
		handler:      h,
		logger:       logger,
		commitEvery:  defaultCommitInterval,
		handledLevel: slog.LevelInfo,
		reset:        reset,
		state:        StateConnecting,
		want:         true,
		wake:         make(chan struct{}, 1),
		progressed:   make(chan struct{}, 1),
		workers:      make(map[topicPartition]*worker),
		retryNow:     make(chan struct{}),
		batchMax:     1,
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Run consumes until ctx is done, then shuts down gracefully: it stops
// fetching, lets in-flight records finish within cfg.ShutdownTimeout,
// commits what finished, leaves the group and closes its clients. While
// stopped by Stop it waits for Start. Run returns nil after a shutdown
// caused by ctx, or an error if a client cannot be built. It may be called
// only once.
func (c *Consumer) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("kafka consumer: Run called more than once")
	}
	defer func() {
		c.mu.Lock()
		c.state, c.ended = StateStopped, true
		c.mu.Unlock()
	}()
	for {
		c.mu.Lock()
		want := c.want
		if !want {
			c.state = StateStopped
		}
		c.mu.Unlock()
		if !want {
			select {
			case <-ctx.Done():
				return nil
			case <-c.wake:
				continue
			}
		}
		if err := c.runSession(ctx); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// Start resumes consuming after Stop: a new client joins the group again.
// It does not wait and does nothing if the consumer is consuming.
func (c *Consumer) Start() {
	c.mu.Lock()
	if !c.want {
		c.want = true
		// Connecting until a broker answers, as before the Stop; also
		// before Run (the app waits for a broker first), but not after it.
		if c.stopSession == nil && !c.ended {
			c.state = StateConnecting
		}
	}
	c.mu.Unlock()
	c.nudge()
}

// Stop stops consuming and returns when the in-flight records have finished
// (within cfg.ShutdownTimeout), their offsets are committed and the group is
// left, so that other instances in the group take the partitions over. It
// does nothing if the consumer is already stopped. Stop must not be called
// from the handler.
func (c *Consumer) Stop() {
	c.mu.Lock()
	c.want = false
	cancel, done := c.stopSession, c.sessionDone
	if cancel == nil {
		c.state = StateStopped
	}
	c.mu.Unlock()
	c.nudge()
	if cancel != nil {
		cancel()
		<-done
	}
}

// State reports whether the consumer is connecting, running or stopped.
func (c *Consumer) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Status reports the consumer's state, assignment, counters and last error.
func (c *Consumer) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Status{
		State:        c.state,
		Topics:       slices.Clone(c.cfg.Topics),
		GroupID:      c.cfg.GroupID,
		DLQTopic:     c.cfg.DLQTopic,
		Assigned:     make(map[string][]int32),
		Handled:      c.handled.Load(),
		DeadLettered: c.deadLettered.Load(),
		LastError:    c.lastErr,
	}
	now := time.Now().UnixNano()
	for tp, w := range c.workers {
		st.Assigned[tp.topic] = append(st.Assigned[tp.topic], tp.partition)
		if since := w.retryingSince.Load(); since != 0 && now-since >= int64(c.cfg.RetryingAfter) {
			st.Retrying++
		}
		if w.dlqBlocked.Load() {
			st.DLQBlocked++
		}
	}
	for _, ps := range st.Assigned {
		slices.Sort(ps)
	}
	if !c.lastErrAt.IsZero() {
		at := c.lastErrAt
		st.LastErrorAt = &at
	}
	return st
}

// RetryNow has every partition that waits in backoff to try a failed record
// again do so at once, and start its backoff over. The app calls it when a
// circuit breaker closes: the dependency is back, and a backoff grown
// towards RetryMax (30 s) would otherwise keep partitions idle that long.
// A partition whose record is being tried when RetryNow is called tries
// again at once if that attempt fails.
func (c *Consumer) RetryNow() {
	c.mu.Lock()
	close(c.retryNow)
	c.retryNow = make(chan struct{})
	c.mu.Unlock()
}

// retrySignal returns the channel the next RetryNow closes.
func (c *Consumer) retrySignal() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.retryNow
}

func (c *Consumer) nudge() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// markRunning moves a connecting consumer to running.
func (c *Consumer) markRunning() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == StateConnecting && c.stopSession != nil {
		c.state = StateRunning
	}
}

// groupFailed moves a running consumer that has no partitions back to
// connecting: its group session failed (the broker or coordinator is
// unreachable, or refuses the member) and it is trying to join again.
func (c *Consumer) groupFailed() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == StateRunning && c.stopSession != nil && len(c.workers) == 0 {
		c.state = StateConnecting
	}
}

func (c *Consumer) noteError(err error) {
	c.mu.Lock()
	c.lastErr = CutUTF8(err.Error(), MaxErrorReasonBytes)
	c.lastErrAt = time.Now()
	c.mu.Unlock()
}

func (c *Consumer) emit(o Outcome) {
	if c.observe != nil {
		c.observe(o)
	}
}

// runSession runs one client's life: from connecting until ctx is done or
// Stop is called, then the graceful shutdown.
func (c *Consumer) runSession(ctx context.Context) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})

	c.mu.Lock()
	if !c.want {
		c.mu.Unlock()
		return nil
	}
	c.stopSession, c.sessionDone = cancel, done
	c.state = StateConnecting
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.stopSession, c.sessionDone = nil, nil
		c.state = StateStopped
		c.mu.Unlock()
		close(done)
	}()

	s, err := c.newSession(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	c.logger.Info("kafka consumer starting",
		"group_id", c.cfg.GroupID, "topics", c.cfg.Topics, "dlq_topic", c.cfg.DLQTopic)

	var wg sync.WaitGroup
	wg.Go(func() { s.connect(sctx) })
	wg.Go(func() { s.commitLoop(sctx) })
	s.poll(sctx)
	wg.Wait()

	s.shutdown()
	return nil
}

// session is one consumer client and its DLQ producer, from creation to
// close. Stop and Start make a new session.
type session struct {
	c         *Consumer
	cl        *kgo.Client
	dlqClient *kgo.Client
	dlq       *DLQ
	workCtx   context.Context // parent of the workers' contexts; never cancelled by stop

	// releaseMu serialises revoke, lost and shutdown, so a rebalance
	// waits until shutdown has finished and committed its partitions.
	releaseMu sync.Mutex
	closing   bool // guarded by c.mu: no new workers
	closeOnce sync.Once
}

func (c *Consumer) newSession(ctx context.Context) (*session, error) {
	s := &session{c: c, workCtx: context.WithoutCancel(ctx)}
	base, err := c.cfg.ClientOpts()
	if err != nil {
		return nil, err
	}
	opts := append(slices.Clone(base),
		kgo.ConsumerGroup(c.cfg.GroupID),
		kgo.ConsumeTopics(c.cfg.Topics...),
		kgo.ConsumeResetOffset(c.reset),
		kgo.DisableAutoCommit(),
		// Rebalance callbacks run only between polls, so records from a
		// poll never reach a partition that was revoked meanwhile.
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(s.assigned),
		kgo.OnPartitionsRevoked(s.revoked),
		kgo.OnPartitionsLost(s.lost),
		// A revoke waits for in-flight records (ShutdownTimeout) and a
		// commit; the group must not give up on this member meanwhile.
		kgo.RebalanceTimeout(max(time.Minute, c.cfg.ShutdownTimeout+commitTimeout+abandonGrace+10*time.Second)),
		// A crashed instance's partitions move to the others once its
		// session times out: 10 s (Kafka's default before 3.0) rather
		// than the client's 45 s. Heartbeats go every 3 s.
		kgo.SessionTimeout(sessionTimeout),
		// Small fetches bound memory: a broker still returns a record
		// batch larger than these limits whole when it comes first, so
		// that oversized records reach the handler (and the DLQ).
		kgo.FetchMaxBytes(fetchMaxBytes),
		kgo.FetchMaxPartitionBytes(fetchMaxPartitionBytes),
		kgo.FetchMaxWait(fetchMaxWait),
		kgo.WithLogger(ClientLogger(c.logger)),
	)
	opts = append(opts, c.clientOpts...)
	if s.cl, err = kgo.NewClient(opts...); err != nil {
		return nil, fmt.Errorf("kafka consumer: %w", err)
	}
	dopts := append(slices.Clone(base), DLQProducerOpts()...)
	dopts = append(dopts, kgo.WithLogger(ClientLogger(c.logger)))
	dopts = append(dopts, c.dlqClientOpts...)
	if s.dlqClient, err = kgo.NewClient(dopts...); err != nil {
		s.cl.Close()
		return nil, fmt.Errorf("kafka dlq producer: %w", err)
	}
	if s.dlq, err = NewDLQ(s.dlqClient, c.cfg, c.logger); err != nil {
		s.close()
		return nil, err
	}
	s.dlq.failed = s.dlqWriteFailed
	return s, nil
}

// dlqWriteFailed reports a failed attempt to dead-letter rec: until it is
// acknowledged its partition is stuck, which the status, /readyz and the
// metrics say, not only the log. (The publishing worker marks itself
// blocked: a lookup by partition could mark the worker of a later
// assignment instead.)
func (s *session) dlqWriteFailed(rec *kgo.Record, err error) {
	c := s.c
	c.noteError(fmt.Errorf("dead-letter write to %s failed; partition %s[%d] waits: %w", s.dlq.Topic(), rec.Topic, rec.Partition, err))
	if c.dlqFailed != nil {
		c.dlqFailed(err)
	}
}

// close closes both clients; it is safe to call more than once.
func (s *session) close() {
	s.closeOnce.Do(func() {
		s.cl.CloseAllowingRebalance()
		if s.dlqClient != nil {
			s.dlqClient.Close()
		}
	})
}

// connect pings the brokers until one answers (on the seed's schedule,
// jittered: the same waits as a backoff from the first to the last) so
// that State leaves connecting and an unreachable cluster shows in the
// logs. The client itself keeps trying to join the group meanwhile.
func (s *session) connect(ctx context.Context) {
	bo := newBackoff(startup.Wait(1), startup.Wait(startup.Tries))
	for try := 1; ; try++ {
		if s.c.State() != StateConnecting {
			return
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := s.cl.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			s.c.markRunning()
			s.c.logger.Info("kafka broker reachable", "brokers", s.c.cfg.Brokers)
			return
		}
		wait := bo.NextBackOff()
		s.c.noteError(fmt.Errorf("kafka unreachable: %w", err))
		level := slog.LevelWarn
		if try == startup.Tries {
			// The start-up tries are used up (startup.UsedUp): said once
			// at error level, the tries in the background at warning.
			level = slog.LevelError
		}
		s.c.logger.Log(ctx, level, "kafka broker unreachable; retrying",
			"brokers", s.c.cfg.Brokers, "try", try, "retry_in", wait, "error", err.Error())
		if !pause(ctx, nil, wait) {
			return
		}
	}
}

// poll fetches until ctx is done and hands each partition's records to its
// worker. Rebalances happen only between two polls (BlockRebalanceOnPoll).
func (s *session) poll(ctx context.Context) {
	for {
		fetches := s.cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			s.cl.AllowRebalance()
			return
		}
		failed := false
		fetches.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed) {
				return
			}
			failed = true
			var session *kgo.ErrGroupSession
			if t == "" || errors.As(err, &session) {
				// About the client or its group, not a partition: franz-go
				// reports it as topic "" partition 0. The group has taken
				// the partitions back (lost) and the client joins again.
				s.c.noteError(fmt.Errorf("kafka consumer group %s: %w", s.c.cfg.GroupID, err))
				s.c.groupFailed()
				s.c.logger.Warn("kafka consumer group session failed; joining again",
					"group_id", s.c.cfg.GroupID, "error", err.Error())
				return
			}
			s.c.noteError(fmt.Errorf("fetch %s[%d]: %w", t, p, err))
			s.c.logger.Warn("kafka fetch failed", "topic", t, "partition", p, "error", err.Error())
		})
		fetches.EachPartition(func(ftp kgo.FetchTopicPartition) {
			if len(ftp.Records) == 0 {
				return
			}
			w := s.c.worker(ftp.Topic, ftp.Partition)
			if w == nil {
				// Not ours (any more); the records stay uncommitted
				// and are fetched again by the partition's owner.
				s.c.logger.Debug("records for an unassigned partition dropped",
					"topic", ftp.Topic, "partition", ftp.Partition, "records", len(ftp.Records))
				return
			}
			w.enqueue(ftp.Records)
		})
		s.cl.AllowRebalance()
		if failed && fetches.NumRecords() == 0 {
			pause(ctx, nil, time.Second) // do not spin on a lasting error
		}
	}
}

// commitLoop commits finished offsets as records finish, one commit at a
// time (and at most once per commit interval, if one is set), so that a
// commit covers whatever finished meanwhile. A failed commit is tried again
// commitFailedPause later if records finished meanwhile, else after
// commitRetry.
func (s *session) commitLoop(ctx context.Context) {
	t := time.NewTicker(commitRetry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.c.progressed:
		case <-t.C:
		}
		wait := s.c.commitEvery
		if err := s.commit(ctx, s.c.currentWorkers()); err != nil {
			wait = max(wait, commitFailedPause)
		}
		if wait > 0 && !pause(ctx, nil, wait) {
			return
		}
	}
}

func (c *Consumer) currentWorkers() []*worker {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Collect(maps.Values(c.workers))
}

func (c *Consumer) worker(topic string, partition int32) *worker {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.workers[topicPartition{topic, partition}]
}

// commit commits, synchronously and within commitTimeout or ctx, the offsets
// the workers have finished and not yet committed. Offsets only move forward: commits are serialised and
// each worker remembers what it committed.
func (s *session) commit(ctx context.Context, ws []*worker) error {
	s.c.commitMu.Lock()
	defer s.c.commitMu.Unlock()

	offsets := make(map[string]map[int32]kgo.EpochOffset)
	byTP := make(map[topicPartition]*worker)
	for _, w := range ws {
		eo, ok := w.progress()
		if !ok || w.released || eo.Offset <= w.committed {
			continue
		}
		if offsets[w.topic] == nil {
			offsets[w.topic] = make(map[int32]kgo.EpochOffset)
		}
		offsets[w.topic][w.partition] = eo
		byTP[topicPartition{w.topic, w.partition}] = w
	}
	if len(offsets) == 0 {
		return nil
	}

	ctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	var errs []error
	s.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			errs = append(errs, err)
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					errs = append(errs, fmt.Errorf("%s[%d]: %w", t.Topic, p.Partition, err))
					continue
				}
				if w := byTP[topicPartition{t.Topic, p.Partition}]; w != nil {
					w.committed = offsets[t.Topic][p.Partition].Offset
				}
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		err = fmt.Errorf("kafka offset commit: %w", err)
		s.c.noteError(err)
		s.c.logger.Warn("offset commit failed; the records will be delivered again unless a later commit succeeds",
			"offsets", offsetAttrs(offsets), "error", err.Error())
		return err
	}
	s.c.logger.Debug("offsets committed", "offsets", offsetAttrs(offsets))
	return nil
}

func offsetAttrs(offsets map[string]map[int32]kgo.EpochOffset) map[string]map[int32]int64 {
	out := make(map[string]map[int32]int64, len(offsets))
	for t, ps := range offsets {
		out[t] = make(map[int32]int64, len(ps))
		for p, eo := range ps {
			out[t][p] = eo.Offset
		}
	}
	return out
}

// assigned starts a worker for each newly assigned partition.
func (s *session) assigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	c := s.c
	c.mu.Lock()
	if s.closing {
		c.mu.Unlock()
		return
	}
	for t, ps := range assigned {
		for _, p := range ps {
			tp := topicPartition{t, p}
			if c.workers[tp] != nil {
				continue
			}
			w := newWorker(s, t, p)
			c.workers[tp] = w
			go w.run()
		}
	}
	if c.state == StateConnecting {
		c.state = StateRunning
	}
	c.mu.Unlock()
	if len(assigned) > 0 {
		c.logger.Info("kafka partitions assigned", "group_id", c.cfg.GroupID, "partitions", assigned)
	}
}

// revoked stops the revoked partitions' workers after their in-flight
// record and commits what they finished, before the group moves the
// partitions elsewhere.
func (s *session) revoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	s.releaseMu.Lock()
	defer s.releaseMu.Unlock()
	ws := s.c.detach(revoked)
	s.release(ws, true)
	if len(ws) > 0 {
		s.c.logger.Info("kafka partitions revoked", "group_id", s.c.cfg.GroupID, "partitions", revoked)
	}
}

// lost stops the lost partitions' workers at once without committing: the
// group has already given them to another member.
func (s *session) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	s.releaseMu.Lock()
	defer s.releaseMu.Unlock()
	ws := s.c.detach(lost)
	s.release(ws, false)
	if len(ws) > 0 {
		s.c.logger.Warn("kafka partitions lost; unfinished records will be delivered again",
			"group_id", s.c.cfg.GroupID, "partitions", lost)
	}
}

// shutdown releases every partition gracefully, then leaves the group and
// closes the clients.
func (s *session) shutdown() {
	s.releaseMu.Lock()
	s.c.mu.Lock()
	s.closing = true
	s.c.mu.Unlock()
	ws := s.c.detach(nil)
	s.release(ws, true)
	s.releaseMu.Unlock()
	s.close()
	s.c.logger.Info("kafka consumer stopped", "group_id", s.c.cfg.GroupID,
		"handled", s.c.handled.Load(), "dead_lettered", s.c.deadLettered.Load())
}

// detach removes the workers of tps (all workers when tps is nil) from the
// consumer and returns them.
func (c *Consumer) detach(tps map[string][]int32) []*worker {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ws []*worker
	for tp, w := range c.workers {
		if tps == nil || slices.Contains(tps[tp.topic], tp.partition) {
			ws = append(ws, w)
			delete(c.workers, tp)
		}
	}
	return ws
}

// release stops ws. Gracefully, each worker finishes its in-flight record
// (within half of ShutdownTimeout, then its context is cancelled) and the finished
// offsets are committed; otherwise the workers are cancelled at once and
// nothing is committed. Records a worker had not finished stay uncommitted.
func (s *session) release(ws []*worker, graceful bool) {
	for _, w := range ws {
		w.stop()
		if !graceful {
			w.cancel()
		}
	}
	all := make(chan struct{})
	go func() {
		for _, w := range ws {
			<-w.done
		}
		close(all)
	}()
	b := splitShutdown(s.c.cfg.ShutdownTimeout)
	timeout := time.NewTimer(b.drain)
	defer timeout.Stop()
	select {
	case <-all:
	case <-timeout.C:
		// Half of the budget is the records': the rest is kept for the
		// cancelled handlers to return, the commit and leaving the group.
		if graceful {
			s.c.logger.Warn("in-flight records did not finish within half of SHUTDOWN_TIMEOUT; cancelling them so that what did finish can still be committed (they will be delivered again)",
				"waited", b.drain, "shutdown_timeout", s.c.cfg.ShutdownTimeout)
		} else {
			s.c.logger.Warn("cancelled in-flight records of lost partitions did not return within half of SHUTDOWN_TIMEOUT",
				"waited", b.drain, "shutdown_timeout", s.c.cfg.ShutdownTimeout)
		}
		for _, w := range ws {
			w.cancel()
		}
		select {
		case <-all:
		case <-time.After(b.grace):
			s.c.logger.Error("a handler ignores the cancellation of its context; releasing its partition without it")
		}
	}
	if graceful {
		ctx, cancel := context.WithTimeout(s.workCtx, b.commit)
		_ = s.commit(ctx, ws)
		cancel()
	}
	s.c.commitMu.Lock()
	for _, w := range ws {
		w.released = true
		w.cancel()
	}
	s.c.commitMu.Unlock()

	if len(ws) > 0 {
		tps := make(map[string][]int32)
		for _, w := range ws {
			tps[w.topic] = append(tps[w.topic], w.partition)
		}
		// A partition paused for backpressure must fetch again if it is
		// ever assigned back to this client.
		s.cl.ResumeFetchPartitions(tps)
	}
}

// shutdownBudget splits SHUTDOWN_TIMEOUT between the steps of releasing
// partitions, so that a graceful stop — drain, commit, leave the group —
// fits in it.
type shutdownBudget struct {
	drain  time.Duration // waiting for in-flight records
	grace  time.Duration // waiting for cancelled handlers to return
	commit time.Duration // the final offset commit
}

// splitShutdown gives half of d to the in-flight records, a quarter at most
// to the commit and to the cancelled handlers each; what is left of the
// quarters is for leaving the group.
func splitShutdown(d time.Duration) shutdownBudget {
	return shutdownBudget{drain: d / 2, grace: min(abandonGrace, d/4), commit: min(commitTimeout, d/4)}
}

// worker handles one assigned partition's records in order.
type worker struct {
	s         *session
	topic     string
	partition int32

	mu          sync.Mutex
	queue       []*kgo.Record
	paused      bool
	finished    kgo.EpochOffset // next offset to consume after the last finished record
	hasFinished bool

	wake     chan struct{} // records were queued
	quit     chan struct{} // closed: finish the in-flight record, start no other
	quitOnce sync.Once
	ctx      context.Context // the handler's; cancelled only when giving up on it
	cancel   context.CancelFunc
	done     chan struct{}

	committed int64 // guarded by c.commitMu
	released  bool  // guarded by c.commitMu

	// retryingSince is when the record being retried first failed with a
	// transient error (UnixNano), 0 when none is.
	retryingSince atomic.Int64
	dlqBlocked    atomic.Bool // a dead-letter write failed and is being retried
}

func newWorker(s *session, topic string, partition int32) *worker {
	ctx, cancel := context.WithCancel(s.workCtx)
	return &worker{
		s: s, topic: topic, partition: partition,
		wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
		ctx: ctx, cancel: cancel, committed: -1,
	}
}

func (w *worker) stop() { w.quitOnce.Do(func() { close(w.quit) }) }

func (w *worker) tps() map[string][]int32 { return map[string][]int32{w.topic: {w.partition}} }

// enqueue appends records for the worker, pausing the partition's fetches
// when too many wait.
func (w *worker) enqueue(recs []*kgo.Record) {
	w.mu.Lock()
	w.queue = append(w.queue, recs...)
	if len(w.queue) >= maxQueued && !w.paused {
		w.paused = true
		w.s.cl.PauseFetchPartitions(w.tps())
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// take returns the next queued records, up to max, waiting for one, or nil
// once the worker is told to stop.
func (w *worker) take(max int) []*kgo.Record {
	for {
		if stopped(w.quit) {
			return nil
		}
		w.mu.Lock()
		if len(w.queue) > 0 {
			n := min(max, len(w.queue))
			recs := slices.Clone(w.queue[:n])
			clear(w.queue[:n])
			w.queue = w.queue[n:]
			if w.paused && len(w.queue) <= maxQueued/2 {
				w.paused = false
				w.s.cl.ResumeFetchPartitions(w.tps())
			}
			w.mu.Unlock()
			return recs
		}
		w.mu.Unlock()
		select {
		case <-w.wake:
		case <-w.quit:
			return nil
		}
	}
}

func (w *worker) progress() (kgo.EpochOffset, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.finished, w.hasFinished
}

// run handles the partition's records in order until the worker is told to
// stop: in batches when the consumer has a BatchHandler, and one at a time
// (with retries) for a record a batch could not finish.
func (w *worker) run() {
	defer close(w.done)
	c := w.s.c
	var pending []*kgo.Record
	for {
		if stopped(w.quit) {
			return // what is pending stays unfinished and uncommitted
		}
		if len(pending) == 0 {
			if pending = w.take(c.batchMax); pending == nil {
				return
			}
		}
		first, correlation := 1, ""
		if c.batch != nil {
			n, corr, tried, ok := w.processBatch(pending)
			if !ok {
				return
			}
			if pending = pending[n:]; len(pending) == 0 {
				continue
			}
			if tried {
				first = 2 // the batch was the record's first attempt
			}
			correlation = corr
		}
		rec := pending[0]
		pending = pending[1:]
		if !w.process(rec, first, correlation) {
			return
		}
		w.finish(rec)
	}
}

// finish marks rec, and every record before it, done: its offset may be
// committed.
func (w *worker) finish(rec *kgo.Record) {
	w.mu.Lock()
	w.finished = kgo.EpochOffset{Epoch: rec.LeaderEpoch, Offset: rec.Offset + 1}
	w.hasFinished = true
	w.mu.Unlock()
	select {
	case w.s.c.progressed <- struct{}{}:
	default:
	}
}

// processBatch hands recs to the BatchHandler and settles the records it
// finished: handled ones are counted and logged, refused ones written to the
// DLQ; the record it stopped at is reported as a failed first attempt,
// unless the batch was not reached (ErrNotReached). It returns how many
// records are finished, the correlation id the next one was given (it keeps
// it for its further attempts), whether the next one had its first attempt
// in the batch, and false if the worker was told to stop while a DLQ write
// was pending (that record is unfinished).
func (w *worker) processBatch(recs []*kgo.Record) (n int, correlation string, tried, ok bool) {
	c := w.s.c
	metas := make([]*delivery.Meta, len(recs))
	for i, rec := range recs {
		metas[i] = &delivery.Meta{CorrelationID: correlationID(rec), Attempt: 1}
	}
	start := time.Now()
	n, errs, stop := c.callBatch(w.ctx, recs, metas)
	took := time.Since(start)
	share := took / time.Duration(max(n, 1))
	for i := range n {
		rec, meta, err := recs[i], metas[i], errs[i]
		ctx := delivery.WithMeta(w.ctx, meta)
		out := Outcome{
			Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
			Err: err, Duration: share, Attempts: 1, Event: meta.EventName, Duplicate: meta.Duplicate,
		}
		if err == nil {
			w.handled(ctx, rec, meta, out)
			w.finish(rec)
			continue
		}
		out.Kind, out.Reason = fault.Of(err)
		if out.Kind != fault.Permanent {
			// Not the BatchHandler's to report: the Handler takes it.
			w.batchStopped(recs[i], metas[i], err, took)
			return i, meta.CorrelationID, true, true
		}
		if !w.deadLetter(ctx, rec, meta, out, c.errorKind(out)) {
			return i, "", false, false
		}
		w.finish(rec)
	}
	if n == len(recs) {
		return n, "", false, true
	}
	if errors.Is(stop, ErrNotReached) {
		// Another batch's failure, reported by its own worker: this record
		// was not tried, so it is no failure of its own.
		ctx := delivery.WithMeta(w.ctx, metas[n])
		c.logger.LogAttrs(ctx, slog.LevelDebug, "record not reached in a merged transaction; trying it alone",
			recordAttrs(recs[n], metas[n], slog.String("error", stop.Error()))...)
		return n, metas[n].CorrelationID, false, true
	}
	if stop == nil {
		stop = errors.New("batch handler stopped without an error")
	}
	w.batchStopped(recs[n], metas[n], stop, took)
	return n, metas[n].CorrelationID, true, true
}

// batchStopped reports the failed batch attempt of rec, which the Handler
// takes next.
func (w *worker) batchStopped(rec *kgo.Record, meta *delivery.Meta, err error, took time.Duration) {
	c := w.s.c
	out := Outcome{
		Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
		Err: err, Duration: took, Attempts: 1, Event: meta.EventName,
	}
	out.Kind, out.Reason = fault.Of(err)
	c.noteError(err)
	ctx := delivery.WithMeta(w.ctx, meta)
	c.logger.LogAttrs(ctx, slog.LevelWarn, "record failed in a batch; retrying it alone",
		recordAttrs(rec, meta, slog.String("error_kind", out.Kind.String()), slog.String("reason", out.Reason),
			slog.String("error", err.Error()))...)
	c.emit(out)
}

// handled counts and logs a record whose effect is committed.
func (w *worker) handled(ctx context.Context, rec *kgo.Record, meta *delivery.Meta, out Outcome) {
	c := w.s.c
	c.handled.Add(1)
	if c.logger.Enabled(ctx, c.handledLevel) {
		attrs := recordAttrs(rec, meta, slog.String("outcome", string(out.Label())),
			slog.Int("attempts", out.Attempts), slog.Duration("duration", out.Duration))
		if meta.Summary != "" {
			attrs = append(attrs, slog.String("summary", meta.Summary))
		}
		c.logger.LogAttrs(ctx, c.handledLevel, "record handled", attrs...)
	}
	c.emit(out)
}

// Label says what the call came to, in the words of orders_events_total's
// outcome label and of the outcome attribute of the consumer's log lines:
// applied, duplicate, dead_lettered, or retried (the record stays
// unfinished).
func (o Outcome) Label() delivery.Outcome {
	switch {
	case o.Err == nil && o.Duplicate:
		return delivery.Duplicate
	case o.Err == nil:
		return delivery.Applied
	case o.DLQ:
		return delivery.DeadLettered
	}
	return delivery.Retried
}

// errorKind is the DLQ error_kind of a failed call the consumer gives up on:
// the permanent error's reason, or exhausted for an unclassified error on its
// last attempt; "" means try again.
func (c *Consumer) errorKind(out Outcome) string {
	switch {
	case out.Kind == fault.Permanent && out.Reason != "":
		return out.Reason
	case out.Kind == fault.Permanent:
		return fault.Permanent.String()
	case out.Kind == fault.Unclassified && out.Attempts >= c.cfg.MaxAttempts:
		return ErrorKindExhausted
	}
	return ""
}

// recordAttrs are the log attributes of a record: the message's, then where
// it is in the log, then extra.
func recordAttrs(rec *kgo.Record, meta *delivery.Meta, extra ...slog.Attr) []slog.Attr {
	a := append(meta.LogAttrs(),
		slog.String("topic", rec.Topic),
		slog.Int("partition", int(rec.Partition)),
		slog.Int64("offset", rec.Offset))
	if meta.EventName != "" {
		a = append(a, slog.String("event_name", meta.EventName))
	}
	return append(a, extra...)
}

// process hands rec to the handler until it is finished: handled, or
// acknowledged on the DLQ; first is the number of its first attempt here,
// and correlation the id a batch attempt gave it ("": take the record's). It
// returns false if the worker was told to stop first; rec is then unfinished
// and must not be committed.
func (w *worker) process(rec *kgo.Record, first int, correlation string) bool {
	c := w.s.c
	if correlation == "" {
		correlation = correlationID(rec)
	}
	meta := &delivery.Meta{CorrelationID: correlation}
	ctx := delivery.WithMeta(w.ctx, meta)
	c.logger.LogAttrs(ctx, slog.LevelDebug, "record received", recordAttrs(rec, meta, slog.Int("bytes", len(rec.Value)))...)

	bo := newBackoff(c.cfg.RetryInitial, c.cfg.RetryMax)
	defer w.retryingSince.Store(0)
	for attempt := first; ; attempt++ {
		meta.Attempt = attempt
		// Taken before the call, so that a RetryNow during it is not missed.
		wake := c.retrySignal()
		start := time.Now()
		err := c.call(ctx, rec)
		out := Outcome{
			Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
			Err: err, Duration: time.Since(start), Attempts: attempt,
			Event: meta.EventName, Duplicate: meta.Duplicate,
		}
		if err == nil {
			w.handled(ctx, rec, meta, out)
			return true
		}
		out.Kind, out.Reason = fault.Of(err)
		if w.ctx.Err() != nil {
			c.logger.LogAttrs(ctx, slog.LevelWarn, "record abandoned while stopping; it will be delivered again",
				recordAttrs(rec, meta, slog.Int("attempts", attempt), slog.String("error", err.Error()))...)
			c.emit(out)
			return false
		}
		if kind := c.errorKind(out); kind != "" {
			return w.deadLetter(ctx, rec, meta, out, kind)
		}

		wait := bo.NextBackOff()
		c.noteError(err)
		c.logger.LogAttrs(ctx, slog.LevelWarn, "record failed; retrying",
			recordAttrs(rec, meta, slog.String("error_kind", out.Kind.String()), slog.String("reason", out.Reason),
				slog.Int("attempts", attempt), slog.Duration("retry_in", wait),
				slog.String("error", err.Error()))...)
		c.emit(out)
		if out.Kind == fault.Transient {
			if w.retryingSince.Load() == 0 {
				w.retryingSince.Store(start.UnixNano())
			}
		} else {
			w.retryingSince.Store(0)
			// A dependency coming back says nothing of this error: its
			// tries keep their pace toward MAX_ATTEMPTS.
			wake = nil
		}
		ok, woken := pauseOrWake(w.ctx, w.quit, wake, wait)
		if !ok {
			c.logger.LogAttrs(ctx, slog.LevelInfo, "retry abandoned: partition released; the record will be delivered again",
				recordAttrs(rec, meta, slog.Int("attempts", attempt))...)
			return false
		}
		if woken {
			bo.Reset()
		}
	}
}

// deadLetter writes rec to the DLQ, retrying until acknowledged, and reports
// whether it was.
func (w *worker) deadLetter(ctx context.Context, rec *kgo.Record, meta *delivery.Meta, out Outcome, errorKind string) bool {
	c := w.s.c
	defer w.dlqBlocked.Store(false) // set by publish on a failed try
	if err := w.s.dlq.publish(ctx, w.quit, rec, meta, out.Err, errorKind, out.Attempts, &w.dlqBlocked); err != nil {
		c.logger.LogAttrs(ctx, slog.LevelWarn, "dead-letter write abandoned: partition released; the record will be delivered again",
			recordAttrs(rec, meta, slog.String("error_kind", errorKind), slog.String("error", err.Error()))...)
		c.emit(out)
		return false
	}
	c.deadLettered.Add(1)
	c.noteError(out.Err)
	level := slog.LevelWarn
	if errorKind == ErrorKindExhausted {
		level = slog.LevelError
	}
	c.logger.LogAttrs(ctx, level, "record sent to the dead-letter topic",
		recordAttrs(rec, meta, slog.String("outcome", string(delivery.DeadLettered)),
			slog.String("dlq_topic", w.s.dlq.Topic()), slog.String("error_kind", errorKind),
			slog.Int("attempts", out.Attempts), slog.Duration("duration", out.Duration),
			slog.String("error", out.Err.Error()))...)
	out.DLQ = true
	c.emit(out)
	return true
}

// call runs the handler, turning a panic into an unclassified error so one
// bad record cannot take the service down.
func (c *Consumer) call(ctx context.Context, rec *kgo.Record) (err error) {
	defer func() {
		if r := recover(); r != nil {
			c.logger.LogAttrs(ctx, slog.LevelError, "handler panicked",
				append(delivery.MetaFrom(ctx).LogAttrs(),
					slog.Any("panic", r), slog.String("stack", string(debug.Stack())))...)
			err = fmt.Errorf("handler panic: %v", r)
		}
	}()
	return c.handler(ctx, rec)
}

// callBatch runs the batch handler. A panic, or a result that does not add
// up, finishes no record: the first goes to the Handler, then batching
// resumes.
func (c *Consumer) callBatch(ctx context.Context, recs []*kgo.Record, metas []*delivery.Meta) (n int, errs []error, stop error) {
	defer func() {
		if r := recover(); r != nil {
			// About a batch, not one message: where it is in the log. Each
			// record is then tried alone, logged with its own ids.
			c.logger.LogAttrs(ctx, slog.LevelError, "batch handler panicked; its records are tried one by one",
				slog.String("topic", recs[0].Topic), slog.Int("partition", int(recs[0].Partition)),
				slog.Int64("first_offset", recs[0].Offset), slog.Int64("last_offset", recs[len(recs)-1].Offset),
				slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
			n, errs, stop = 0, nil, fmt.Errorf("batch handler panic: %v", r)
		}
	}()
	n, errs, stop = c.batch(ctx, recs, metas)
	if n < 0 || n > len(recs) || len(errs) < n {
		err := fmt.Errorf("batch handler finished %d of %d records with %d results", n, len(recs), len(errs))
		c.logger.LogAttrs(ctx, slog.LevelError, "batch handler result does not add up", slog.String("error", err.Error()))
		return 0, nil, err
	}
	return n, errs, stop
}

// correlationID returns the record's correlation_id header, or a new UUID
// when it has none or an empty one.
func correlationID(rec *kgo.Record) string {
	for _, h := range rec.Headers {
		if h.Key == HeaderCorrelationID && len(h.Value) > 0 {
			return string(h.Value)
		}
	}
	return uuid.NewString()
}
