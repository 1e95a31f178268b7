package app

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderd/orderd/internal/breaker"
	"github.com/orderd/orderd/internal/httpapi"
)

// Breaker names, as readiness (circuit_breaker_<name>) and the
// orders_circuit_breaker_state metric show them.
const (
	breakerDatabase = "database"
	breakerNotifier = "notifier"
)

// newBreakers builds the database and notifier breakers. The database one
// probes with a ping, so it closes once the database is back even when no
// record is waiting; the notifier has no probe and closes on the next
// successful notification.
func (a *App) newBreakers(opts Options) {
	onChange := func(name string, from, to breaker.State) {
		switch to {
		case breaker.Open:
			// An outage beginning is an error (LOG_FILE holds it); a probe
			// that finds it still there is a warning.
			level := slog.LevelError
			if from == breaker.HalfOpen {
				level = slog.LevelWarn
			}
			a.logger.Log(context.Background(), level, "circuit breaker open: failing fast and pausing consumption",
				"breaker", name, "from", from.String(), "probe_in", a.breakerOpenFor)
		case breaker.HalfOpen:
			a.logger.Info("circuit breaker half-open: probing", "breaker", name)
		case breaker.Closed:
			a.logger.Info("circuit breaker closed: resuming", "breaker", name)
		}
		a.gate.breakerOpen(name, to == breaker.Open)
		if to == breaker.Closed && a.consumer != nil {
			// The system is back: partitions waiting in backoff (up to
			// 30 s by then) try their records now, not when it ends.
			a.consumer.RetryNow()
		}
	}
	a.breakerOpenFor = opts.BreakerOpenFor
	if a.breakerOpenFor <= 0 {
		a.breakerOpenFor = breaker.DefaultOpenFor
	}
	a.dbBreaker = breaker.New(breaker.Settings{
		Name: breakerDatabase, Failures: opts.BreakerFailures, OpenFor: a.breakerOpenFor,
		Probe: a.store.Ping, OnChange: onChange,
	})
	a.notifyBreaker = breaker.New(breaker.Settings{
		Name: breakerNotifier, Failures: opts.BreakerFailures, OpenFor: a.breakerOpenFor,
		OnChange: onChange,
	})
}

func (a *App) breakers() []*breaker.Breaker {
	var bs []*breaker.Breaker
	for _, b := range []*breaker.Breaker{a.dbBreaker, a.notifyBreaker} {
		if b != nil {
			bs = append(bs, b)
		}
	}
	return bs
}

// breakerComponent is a breaker's readiness: open is not ready; half-open
// is (the system answered a ping or is being probed by a record).
func breakerComponent(b *breaker.Breaker) httpapi.Component {
	switch st := b.State(); st {
	case breaker.Closed:
		return httpapi.Component{Status: "ok", Required: true}
	case breaker.HalfOpen:
		return httpapi.Component{Status: st.String(), Detail: "probing after failures", Required: true}
	default:
		return httpapi.Component{Status: st.String(), Required: true,
			Detail: "consecutive transient failures: failing fast, consumption paused; next probe within " + b.OpenFor().String()}
	}
}

// fetchGate pauses the consumer's fetching while any circuit breaker is
// open, and resumes it when none is. It is a set of franz-go hooks on the
// consumer's client: the consumer makes a new client each time it starts,
// and each one is paused as soon as it can be if a breaker is open then.
//
// Records already fetched still reach the handler and fail fast with a
// transient error, so their partitions wait with backoff; nothing is
// dead-lettered. Fetching resumes when a breaker half-opens, so that a
// waiting record can serve as the probe.
type fetchGate struct {
	topics []string
	logger *slog.Logger

	mu      sync.Mutex
	open    map[string]bool // breakers that are open
	pending *kgo.Client     // created, not yet usable (before its first connection)
	client  *kgo.Client     // the consumer's live client
	paused  bool            // whether client's topics are paused
}

func newFetchGate(topics []string, logger *slog.Logger) *fetchGate {
	return &fetchGate{topics: topics, logger: logger, open: map[string]bool{}}
}

var (
	_ kgo.HookNewClient     = (*fetchGate)(nil)
	_ kgo.HookBrokerConnect = (*fetchGate)(nil)
	_ kgo.HookClientClosed  = (*fetchGate)(nil)
)

// OnNewClient notes a new consumer client. franz-go calls it before the
// client's consumer is initialised, so pausing waits for OnBrokerConnect.
func (g *fetchGate) OnNewClient(cl *kgo.Client) {
	g.mu.Lock()
	g.pending, g.client, g.paused = cl, nil, false
	g.mu.Unlock()
}

// OnBrokerConnect makes the client usable on its first connection attempt,
// which comes after its initialisation and before its first fetch, and
// pauses it if a breaker is open.
func (g *fetchGate) OnBrokerConnect(kgo.BrokerMetadata, time.Duration, net.Conn, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.pending != nil {
		g.client, g.pending = g.pending, nil
		g.apply()
	}
}

// OnClientClosed forgets a closed client.
func (g *fetchGate) OnClientClosed(cl *kgo.Client) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.client == cl {
		g.client, g.paused = nil, false
	}
	if g.pending == cl {
		g.pending = nil
	}
}

// breakerOpen records whether breaker name is open and pauses or resumes
// fetching accordingly.
func (g *fetchGate) breakerOpen(name string, open bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if open {
		g.open[name] = true
	} else {
		delete(g.open, name)
	}
	g.apply()
}

// Paused reports whether the consumer's live client has its fetching
// paused (a breaker is open and the consumer runs).
func (g *fetchGate) Paused() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.paused
}

// apply brings the live client in line; g.mu is held.
func (g *fetchGate) apply() {
	want := len(g.open) > 0
	if g.client == nil || g.paused == want {
		return
	}
	if want {
		g.client.PauseFetchTopics(g.topics...)
		g.logger.Info("consumer fetching paused while a circuit breaker is open", "topics", g.topics)
	} else {
		g.client.ResumeFetchTopics(g.topics...)
		g.logger.Info("consumer fetching resumed", "topics", g.topics)
	}
	g.paused = want
}
