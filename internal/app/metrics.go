package app

import (
	"context"
	"net/http"
	"time"

	"github.com/orderd/orderd/internal/fault"
	"github.com/orderd/orderd/internal/kafka"
	"github.com/orderd/orderd/internal/metrics"
)

// defaultLagInterval is how often the consumer lag gauge is refreshed.
const defaultLagInterval = 5 * time.Second

// newMetrics builds the registry and the gauges read at scrape time.
func (a *App) newMetrics(eventNames []string) {
	a.metrics = metrics.New(eventNames)
	a.metrics.ConsumerState(func() string { return string(a.consumer.State()) },
		string(kafka.StateConnecting), string(kafka.StateRunning), string(kafka.StateStopped))
	a.metrics.FetchPaused(a.gate.Paused)
	for _, b := range a.breakers() {
		a.metrics.CircuitBreaker(b.Name(), func() float64 { return float64(b.State()) })
	}
}

// instrumentHTTP counts the requests h serves by the route pattern that
// serves them, found on a mux holding the same patterns as the API's.
func (a *App) instrumentHTTP(h http.Handler, patterns []string) http.Handler {
	routes := http.NewServeMux()
	for _, p := range patterns {
		routes.Handle(p, http.NotFoundHandler())
	}
	return a.metrics.Instrument(h, func(r *http.Request) string {
		_, pattern := routes.Handler(r)
		return pattern
	})
}

// observe counts one handler call from the consumer's report of it.
// The outcome label is the consumer's own word for the call, the one its log
// lines carry.
func (a *App) observe(o kafka.Outcome) {
	if o.DLQ {
		a.metrics.DeadLettered(dlqErrorKind(o))
	}
	event := o.Event
	if event == "" {
		event = metrics.UnknownEvent
	}
	a.metrics.Event(event, o.Label(), o.Duration)
}

// dlqErrorKind is the error_kind the consumer wrote on the DLQ record: the
// permanent error's reason, or "exhausted" for an unclassified error that
// used up its attempts.
func dlqErrorKind(o kafka.Outcome) string {
	if o.Kind == fault.Permanent {
		if o.Reason != "" {
			return o.Reason
		}
		return fault.Permanent.String()
	}
	return kafka.ErrorKindExhausted
}

// refreshLag sets the consumer lag gauge from the group's committed
// offsets every interval until ctx is done. It reads them from the broker,
// so the lag shows whether this instance consumes or not.
func (a *App) refreshLag(ctx context.Context, every time.Duration) {
	kcfg := a.cfg.KafkaConfig()
	lags := newLagReckoner(kcfg.AutoOffsetReset == "latest")
	failing := false
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lctx, cancel := context.WithTimeout(ctx, max(every, 5*time.Second))
		offs, err := a.admin.GroupOffsets(lctx, kcfg.GroupID, kcfg.Topics...)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			a.metrics.LagRefreshFailed()
			if !failing {
				a.logger.Warn("consumer lag refresh failed; the lag metric keeps its last values", "err", err)
			}
			failing = true
		default:
			if failing {
				a.logger.Info("consumer lag refresh works again")
			}
			failing = false
			a.metrics.SetLag(lags.lag(offs))
		}
		t.Reset(every)
	}
}

// lagReckoner turns a group's offsets into its lag. Where the group has
// committed nothing on a partition, the lag counts from the log start
// (KAFKA_AUTO_OFFSET_RESET=earliest, where the group will read it all),
// but with latest the group skips what was there when it began, so it
// counts from the end offset first seen without a commit: otherwise a
// partition that gets no new record, so no commit, showed its whole log as
// lag for good.
type lagReckoner struct {
	latest   bool
	baseline map[string]map[int32]int64 // latest: the end first seen without a commit
}

func newLagReckoner(latest bool) *lagReckoner {
	return &lagReckoner{latest: latest, baseline: map[string]map[int32]int64{}}
}

func (r *lagReckoner) lag(offs map[string]map[int32]kafka.PartitionOffsets) map[string]map[int32]int64 {
	lag := make(map[string]map[int32]int64, len(offs))
	for topic, ps := range offs {
		lag[topic] = make(map[int32]int64, len(ps))
		for p, o := range ps {
			if !r.latest || o.Committed >= 0 {
				delete(r.baseline[topic], p)
				lag[topic][p] = o.Lag()
				continue
			}
			if r.baseline[topic] == nil {
				r.baseline[topic] = map[int32]int64{}
			}
			from, ok := r.baseline[topic][p]
			if !ok {
				from = o.End
				r.baseline[topic][p] = from
			}
			lag[topic][p] = max(o.End-from, 0)
		}
	}
	return lag
}
