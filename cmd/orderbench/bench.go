package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Bounds of the waits on the service, well inside any sensible -timeout.
const (
	readyTimeout = 2 * time.Minute
	stopTimeout  = 45 * time.Second // above orderd's SHUTDOWN_TIMEOUT of 30s
	idleWait     = 3 * time.Second
	drainPoll    = 20 * time.Millisecond
	latencyPoll  = time.Millisecond
	rssPoll      = 100 * time.Millisecond
)

// bench is what one store's measurement needs.
type bench struct {
	opts   options
	bin    string
	tmp    string
	broker string
	db     *database
}

// result holds one store's figures.
type result struct {
	store      string
	events     int
	partitions int

	ready   time.Duration // exec to /readyz 200, on a fresh database
	idleRSS int64

	stock           int           // stock records inserted before the drain
	stockSeeded     time.Duration // how long inserting them took
	preload         time.Duration
	drainFromReady  time.Duration
	drainFromStart  time.Duration
	peakRSS         int64 // VmHWM just before the service stopped (throughput and latency phases)
	peakSampledRSS  int64 // largest VmRSS sampled every rssPoll
	hwmAfterDrain   int64 // VmHWM once the backlog was drained
	orders          int64
	processing      int64
	reservedItems   int64 // order items that reserved stock
	dlq             int64
	errorLogLines   int
	latencyRate     int
	latency         latencyFigures // the service's
	bare            bareResult
	floor           latencyFigures // a bare consumer's at the same rate
	throughput      float64        // events / drainFromReady
	drainCPU        cpuUse         // while draining
	drainIO         ioUse          // while draining
	latencyIO       ioUse          // in the latency phase
	drainTx         txFigures      // the service's transactions while draining
	latencyTx       txFigures      // and in the latency phase
	throughputStart float64        // events / drainFromStart
}

// peak is the peak RSS: VmHWM, or the largest sampled VmRSS when the
// kernel's lazily updated VmHWM lags behind it.
func (r result) peak() int64 { return max(r.peakRSS, r.peakSampledRSS) }

// percentOfBare is the service's throughput as a percentage of the bare
// consumer's.
func (r result) percentOfBare() float64 {
	if r.bare.throughput == 0 {
		return 0
	}
	return 100 * r.throughput / r.bare.throughput
}

// names are the topics and groups of one store's runs, fresh per run.
type names struct {
	topic, dlq, startGroup, group, bareGroup, floorTopic, floorGroup string
}

// newNames returns names for store that no earlier run used.
func newNames(store string) names {
	run := fmt.Sprintf("bench-%s-%d", store, time.Now().UnixNano())
	return names{
		topic:      run,
		dlq:        run + "-dlq",
		startGroup: run + "-start",
		group:      run + "-serve",
		bareGroup:  run + "-bare",
		floorTopic: run + "-floor",
		floorGroup: run + "-floor",
	}
}

// benchStore runs the five phases on one store and returns the figures;
// progress goes to w.
func benchStore(ctx context.Context, w io.Writer, b bench) (result, error) {
	res := result{store: b.db.store, events: b.opts.events, partitions: b.opts.partitions, latencyRate: b.opts.rate}
	n := newNames(b.db.store)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.broker))
	if err != nil {
		return res, fmt.Errorf("admin client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if err := createTopics(ctx, adm, b.opts.partitions, n.topic, n.dlq); err != nil {
		return res, err
	}
	cfg := serviceConfig{broker: b.broker, databaseURL: b.db.url, topic: n.topic, dlqTopic: n.dlq, group: n.startGroup, partitions: b.opts.partitions}

	fmt.Fprintf(w, "\n== %s: topic %s (%d partitions), group %s\n", b.db.store, n.topic, b.opts.partitions, n.group)
	fmt.Fprintln(w, "a. start + idle")
	if err := startIdle(ctx, b, cfg, &res); err != nil {
		return res, err
	}

	if b.opts.stock > 0 {
		fmt.Fprintf(w, "   %d stock records\n", b.opts.stock)
		started := time.Now()
		if err := b.db.seedStock(ctx, b.opts.stock); err != nil {
			return res, err
		}
		res.stock, res.stockSeeded = b.opts.stock, time.Since(started)
	}

	fmt.Fprintf(w, "b. preload %d events, then drain\n", b.opts.events)
	res.preload, err = preload(ctx, b.broker, n.topic, n.topic+"-pre", b.opts.events)
	if err != nil {
		return res, err
	}
	backlog, err := endOffsets(ctx, adm, n.topic)
	if err != nil {
		return res, err
	}
	if got := backlog.sum(); got != int64(b.opts.events) {
		return res, fmt.Errorf("topic %s holds %d records after preloading %d", n.topic, got, b.opts.events)
	}
	cfg.group = n.group
	if b.opts.cpuProfile != "" {
		cfg.cpuProfile, err = filepath.Abs(b.opts.cpuProfile + "-" + b.db.store + ".prof")
		if err != nil {
			return res, err
		}
	}
	svc, err := startService(b.bin, b.tmp, "serve", cfg)
	if err != nil {
		return res, err
	}
	defer svc.kill()
	rss := sampleRSS(svc.pid(), rssPoll)
	if err := drain(ctx, adm, svc, b, n, backlog, &res); err != nil {
		rss.finish()
		return res, err
	}

	fmt.Fprintf(w, "c. latency at %d/s for %s\n", b.opts.rate, b.opts.latencyDuration)
	err = latency(ctx, adm, svc, b, n, &res)
	res.peakSampledRSS = rss.finish()
	if err != nil {
		return res, err
	}
	if res.peakRSS, err = procStatusKB(svc.pid(), "VmHWM"); err != nil {
		return res, err
	}
	res.errorLogLines = svc.errorLines()
	if err := svc.terminate(stopTimeout); err != nil {
		return res, err
	}
	if res.dlq, err = countRecords(ctx, adm, n.dlq); err != nil {
		return res, err
	}

	fmt.Fprintln(w, "d. bare franz-go consumer on the same backlog")
	res.bare, err = bareConsume(ctx, b.broker, n.topic, n.bareGroup, backlog)
	if err != nil {
		return res, err
	}
	if res.bare.records != int64(b.opts.events) {
		return res, fmt.Errorf("bare consumer read %d of the %d preloaded records", res.bare.records, b.opts.events)
	}

	fmt.Fprintf(w, "e. bare franz-go consumer at %d/s for %s (latency floor)\n", b.opts.rate, b.opts.latencyDuration)
	if err := createTopics(ctx, adm, b.opts.partitions, n.floorTopic); err != nil {
		return res, err
	}
	res.floor, err = bareLatency(ctx, adm, b, n.floorTopic, n.floorGroup)
	return res, err
}

// createTopics creates topics with the given partitions on the broker.
func createTopics(ctx context.Context, adm *kadm.Client, partitions int, topics ...string) error {
	resps, err := adm.CreateTopics(ctx, int32(partitions), 1, nil, topics...)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		return fmt.Errorf("create topics %v: %w", topics, err)
	}
	return nil
}

// countRecords returns how many records topic holds.
func countRecords(ctx context.Context, adm *kadm.Client, topic string) (int64, error) {
	ends, err := endOffsets(ctx, adm, topic)
	if err != nil {
		return 0, err
	}
	return ends.sum(), nil
}

// startIdle is phase a: start the service on the fresh database and empty
// topic, time it to ready, let it idle and read its memory, and stop it.
func startIdle(ctx context.Context, b bench, cfg serviceConfig, res *result) error {
	svc, err := startService(b.bin, b.tmp, "serve-start", cfg)
	if err != nil {
		return err
	}
	defer svc.kill()
	ready, err := svc.waitReady(ctx, readyTimeout)
	if err != nil {
		return err
	}
	res.ready = ready.Sub(svc.started)
	if err := sleep(ctx, idleWait); err != nil {
		return err
	}
	if err := svc.exitedErr(); err != nil {
		return err
	}
	if res.idleRSS, err = procStatusKB(svc.pid(), "VmRSS"); err != nil {
		return err
	}
	return svc.terminate(stopTimeout)
}

// drain is phase b: wait for the service to be ready and to commit the
// whole backlog, then check that every event became an order.
func drain(ctx context.Context, adm *kadm.Client, svc *service, b bench, n names, backlog offsets, res *result) error {
	ready, err := svc.waitReady(ctx, readyTimeout)
	if err != nil {
		return err
	}
	cpuStart, cpuErr := sampleCPU(svc.pid())
	ioStart, ioErr := sampleIO(svc.pid())
	drained, err := waitCommitted(ctx, svc.name, svc.exitedErr, fetchCommitted(adm, n.group, n.topic), backlog, drainPoll)
	if err != nil {
		return err
	}
	// The service started with the drain: all it committed so far is the
	// drain's.
	if res.drainTx, err = scrapeTransactions(ctx, svc.url); err != nil {
		return err
	}
	if cpuEnd, err := sampleCPU(svc.pid()); err == nil && cpuErr == nil {
		res.drainCPU = cpuBetween(cpuStart, cpuEnd)
	}
	if ioEnd, err := sampleIO(svc.pid()); err == nil && ioErr == nil {
		res.drainIO = ioBetween(ioStart, ioEnd, b.opts.events)
	}
	if res.hwmAfterDrain, err = procStatusKB(svc.pid(), "VmHWM"); err != nil {
		return err
	}
	res.drainFromReady, res.drainFromStart = drained.Sub(ready), drained.Sub(svc.started)
	res.throughput = float64(b.opts.events) / res.drainFromReady.Seconds()
	res.throughputStart = float64(b.opts.events) / res.drainFromStart.Seconds()
	return checkOrders(ctx, b.db, int64(b.opts.events), res)
}

// latency is phase c: produce at a steady rate to the caught-up service
// while watching the group's commits, then wait until everything is
// committed and check the orders again.
func latency(ctx context.Context, adm *kadm.Client, svc *service, b bench, n names, res *result) error {
	var produced int
	var err error
	ioStart, ioErr := sampleIO(svc.pid())
	res.latency, produced, err = measureLatency(ctx, adm, b, n.topic, n.group, svc.name, svc.exitedErr)
	if err != nil {
		return err
	}
	if ioEnd, err := sampleIO(svc.pid()); err == nil && ioErr == nil {
		res.latencyIO = ioBetween(ioStart, ioEnd, produced)
	}
	after, err := scrapeTransactions(ctx, svc.url)
	if err != nil {
		return err
	}
	res.latencyTx = after.since(res.drainTx)
	return checkOrders(ctx, b.db, int64(b.opts.events+produced), res)
}

// bareLatency is phase e: the latency phase with a bare franz-go consumer
// in place of the service, on a fresh topic: what producing, fetching and
// committing through this broker cost on this machine with nothing done
// with the records.
func bareLatency(ctx context.Context, adm *kadm.Client, b bench, topic, group string) (latencyFigures, error) {
	f, err := followBare(ctx, b.broker, topic, group)
	if err != nil {
		return latencyFigures{}, err
	}
	lat, _, err := measureLatency(ctx, adm, b, topic, group, "the bare consumer", f.err)
	if stopErr := f.stop(); err == nil {
		err = stopErr
	}
	return lat, err
}

// latencyFigures are one latency phase's produce → commit latencies.
type latencyFigures struct {
	samples, unseen    int
	p50, p90, p99, max time.Duration
	resolution         time.Duration // mean interval between two polls of the committed offsets
	timeline           []timeSlice   // with -timeline
}

// measureLatency produces at the bench's rate to topic for its duration
// while watching group's commits, waits until everything produced is
// committed (failing if exited reports an error first), and returns the
// latencies and how many records it produced. name is the consumer's, for
// errors.
func measureLatency(ctx context.Context, adm *kadm.Client, b bench, topic, group, name string, exited func() error) (latencyFigures, int, error) {
	watch := watchCommits(ctx, fetchCommitted(adm, group, topic), latencyPoll)
	recs, err := producePaced(ctx, b.broker, topic, topic+"-lat", b.opts.rate, b.opts.latencyDuration)
	if err != nil {
		watch.finish()
		return latencyFigures{}, 0, err
	}
	// Wait on what the watch has seen, so that every commit is in its log.
	ends, err := endOffsets(ctx, adm, topic)
	if err == nil {
		_, err = waitCommitted(ctx, name, exited, watch.seen, ends, drainPoll)
	}
	watch.finish()
	if err != nil {
		return latencyFigures{}, 0, err
	}
	lat, unseen := commitLatencies(recs, watch.advances)
	f := latencyFigures{samples: len(lat), unseen: unseen, resolution: watch.meanInterval()}
	f.p50, f.p90, f.p99 = percentile(lat, 50), percentile(lat, 90), percentile(lat, 99)
	f.timeline = latencyTimeline(recs, watch.advances, b.opts.timeline)
	if len(lat) > 0 {
		f.max = lat[len(lat)-1]
	}
	return f, len(recs), nil
}

// checkOrders fails unless the database holds exactly want orders, all in
// status processing: every event produced is a valid OrderCreated the
// rules accept, so one fewer order is a lost event, and an order not
// processed one the service refused, whose drain would not be the
// throughput it claims.
func checkOrders(ctx context.Context, db *database, want int64, res *result) error {
	total, processing, reserved, err := db.orderCounts(ctx)
	if err != nil {
		return err
	}
	res.orders, res.processing, res.reservedItems = total, processing, reserved
	switch {
	case total != want:
		return fmt.Errorf("LOST EVENTS: the database holds %d orders but %d events were produced and committed", total, want)
	case processing != want:
		return fmt.Errorf("NOT PROCESSED: %d of the %d orders are in status processing; the others were refused (see the service's DLQ and log)", processing, want)
	}
	return nil
}

// embeddedDefaults runs `orderd` as a newcomer does — no configuration but a
// free port for HTTP and for the embedded broker — and reports its time to
// ready and its idle memory. The embedded broker then runs in its process.
func embeddedDefaults(ctx context.Context, w io.Writer, bin, tmp string) error {
	httpPort, err := freePort()
	if err != nil {
		return err
	}
	kafkaPort, err := freePort()
	if err != nil {
		return err
	}
	p, err := startProc(bin, tmp, "embedded", map[string]string{
		"APP_PORT":            strconv.Itoa(httpPort),
		"EMBEDDED_KAFKA_ADDR": "127.0.0.1:" + strconv.Itoa(kafkaPort),
	})
	if err != nil {
		return err
	}
	svc := &service{proc: p, url: "http://127.0.0.1:" + strconv.Itoa(httpPort)}
	defer svc.kill()
	ready, err := svc.waitReady(ctx, readyTimeout)
	if err != nil {
		return err
	}
	if err := sleep(ctx, idleWait); err != nil {
		return err
	}
	rss, err := procStatusKB(svc.pid(), "VmRSS")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "embedded defaults: `orderd` with no configuration ready (/readyz 200) %s after exec; idle RSS %s (%.1f MB) %s after ready\n",
		secs(ready.Sub(svc.started)), mib(rss), float64(rss)/1e6, idleWait)
	return svc.terminate(stopTimeout)
}
