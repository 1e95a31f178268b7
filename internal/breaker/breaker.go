// Package breaker puts circuit breakers (sony/gobreaker) around the outside
// systems the event pipeline depends on: the database and the notifier.
//
// Only transient failures (fault.Transient: the system is unreachable or
// overloaded) count against a breaker; a rule's refusal or a malformed event
// is an answer from a healthy system and counts as a success. After
// Settings.Failures consecutive transient failures the breaker opens: calls
// fail fast with a transient error, so the consumer keeps the record and
// retries it with backoff instead of dead-lettering it. After
// Settings.OpenFor the breaker half-opens and lets one call through (or runs
// Settings.Probe itself, so that it recovers without traffic); success closes
// it, failure opens it again.
package breaker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/orderd/orderd/internal/fault"
	"github.com/orderd/orderd/internal/order"
)

// State is a breaker's state. Its value is the one the
// orders_circuit_breaker_state metric reports.
type State int

// The states of a Breaker.
const (
	// Closed lets every call through.
	Closed State = 0
	// HalfOpen lets one probe call through; its result closes or reopens the breaker.
	HalfOpen State = 1
	// Open fails every call fast.
	Open State = 2
)

// String returns "closed", "half_open" or "open", as readiness reports it.
func (s State) String() string {
	switch s {
	case HalfOpen:
		return "half_open"
	case Open:
		return "open"
	default:
		return "closed"
	}
}

// Defaults applied by New to zero Settings fields.
const (
	DefaultFailures = 5
	DefaultOpenFor  = 5 * time.Second
)

// ErrOpen is the cause of the error a breaker returns when it refuses a call.
var ErrOpen = errors.New("circuit breaker open")

// Error is a failure that a breaker counted, or its refusal of a call
// (Err is then ErrOpen). It keeps the failure's fault class, and tells an
// outer breaker that the failure belongs to another system.
type Error struct {
	Breaker string // the breaker's name
	Err     error
}

// Error returns the breaker's name and the failure.
func (e *Error) Error() string {
	if errors.Is(e.Err, ErrOpen) {
		return fmt.Sprintf("%s: circuit breaker open, failing fast", e.Breaker)
	}
	return e.Breaker + ": " + e.Err.Error()
}

// Unwrap returns the failure.
func (e *Error) Unwrap() error { return e.Err }

// Settings configure a Breaker.
type Settings struct {
	// Name identifies the breaker in errors, logs, readiness and metrics.
	Name string
	// Failures is how many consecutive transient failures open the breaker
	// (DefaultFailures when zero).
	Failures uint32
	// OpenFor is how long the breaker stays open before it half-opens
	// (DefaultOpenFor when zero).
	OpenFor time.Duration
	// Probe, when set, is run through the breaker as soon as it half-opens,
	// so that it closes once the system is back even when no other call
	// comes (e.g. a database ping). Nil waits for the next call.
	Probe func(ctx context.Context) error
	// OnChange, when set, is called after every state change, from its own
	// goroutine, in the order of the changes.
	OnChange func(name string, from, to State)
}

// Breaker is a circuit breaker counting only transient failures. It is safe
// for concurrent use.
type Breaker struct {
	name    string
	openFor time.Duration
	probe   func(ctx context.Context) error
	cb      *gobreaker.CircuitBreaker[struct{}]

	closed  atomic.Bool
	events  chan change
	done    chan struct{}
	mu      sync.Mutex
	timer   *time.Timer
	workers sync.WaitGroup
}

type change struct{ from, to State }

// New returns a closed breaker. Call Close when done with it: it stops the
// timer and goroutine that half-open and probe it.
func New(s Settings) *Breaker {
	if s.Failures == 0 {
		s.Failures = DefaultFailures
	}
	if s.OpenFor <= 0 {
		s.OpenFor = DefaultOpenFor
	}
	b := &Breaker{
		name: s.Name, openFor: s.OpenFor, probe: s.Probe,
		events: make(chan change, 64), done: make(chan struct{}),
	}
	failures := s.Failures
	b.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        s.Name,
		MaxRequests: 1,
		Timeout:     s.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		IsSuccessful: func(err error) bool {
			return fault.KindOf(err) != fault.Transient
		},
		IsExcluded: b.excluded,
		// Called with gobreaker's lock held: hand over, never call back.
		OnStateChange: func(_ string, from, to gobreaker.State) {
			select {
			case b.events <- change{state(from), state(to)}:
			case <-b.done:
			}
		},
	})
	b.workers.Add(1)
	go b.watch(s.OnChange)
	return b
}

// excluded reports errors that say nothing about this breaker's system: a
// call abandoned by its caller, or a failure another breaker already
// counted (e.g. the notifier's, surfacing through a database transaction).
func (b *Breaker) excluded(err error) bool {
	if errors.Is(err, context.Canceled) {
		return true
	}
	var be *Error
	return errors.As(err, &be) && be.Breaker != b.name
}

// watch reports state changes, half-opens the breaker when OpenFor has
// passed (gobreaker does so only when asked), and probes it when it does.
func (b *Breaker) watch(onChange func(string, State, State)) {
	defer b.workers.Done()
	for {
		select {
		case <-b.done:
			return
		case c := <-b.events:
			switch c.to {
			case Open:
				b.mu.Lock()
				if b.timer != nil {
					b.timer.Stop()
				}
				// A little after OpenFor, so that State sees it expired.
				b.timer = time.AfterFunc(b.openFor+time.Millisecond, func() { b.cb.State() })
				b.mu.Unlock()
			case HalfOpen:
				if b.probe != nil {
					b.workers.Add(1)
					go b.runProbe()
				}
			}
			if onChange != nil {
				onChange(b.name, c.from, c.to)
			}
		}
	}
}

func (b *Breaker) runProbe() {
	defer b.workers.Done()
	ctx, cancel := context.WithTimeout(context.Background(), max(b.openFor, 5*time.Second))
	defer cancel()
	go func() {
		select {
		case <-b.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	// A refusal means a real call is already probing; its result counts.
	_ = b.Do(ctx, b.probe)
}

// Name returns the breaker's name.
func (b *Breaker) Name() string { return b.name }

// OpenFor returns how long the breaker stays open before it half-opens.
func (b *Breaker) OpenFor() time.Duration { return b.openFor }

// State returns the breaker's current state.
func (b *Breaker) State() State { return state(b.cb.State()) }

// Do runs fn unless the breaker is open (or half-open with its probe in
// flight); then it returns at once a transient *Error wrapping ErrOpen.
// fn's transient failures are returned as a *Error of this breaker; its
// other errors are returned as they are.
func (b *Breaker) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	called := false
	_, err := b.cb.Execute(func() (struct{}, error) {
		called = true
		return struct{}{}, fn(ctx)
	})
	switch {
	case err == nil:
		return nil
	case !called:
		return fault.AsTransient(&Error{Breaker: b.name, Err: ErrOpen})
	case fault.KindOf(err) == fault.Transient && !b.excluded(err):
		return &Error{Breaker: b.name, Err: err}
	}
	return err
}

// Close stops the breaker's timer, watcher and probe; calls through it
// still work.
func (b *Breaker) Close() {
	if b.closed.CompareAndSwap(false, true) {
		close(b.done)
		b.mu.Lock()
		if b.timer != nil {
			b.timer.Stop()
		}
		b.mu.Unlock()
		b.workers.Wait()
	}
}

func state(s gobreaker.State) State {
	switch s {
	case gobreaker.StateHalfOpen:
		return HalfOpen
	case gobreaker.StateOpen:
		return Open
	default:
		return Closed
	}
}

// Transactor runs transactions through a breaker; it implements
// order.Transactor.
type Transactor struct {
	b    *Breaker
	next order.Transactor
}

// NewTransactor returns next guarded by b.
func NewTransactor(b *Breaker, next order.Transactor) *Transactor {
	return &Transactor{b: b, next: next}
}

// InTx runs fn in a transaction of the wrapped transactor, or fails fast
// with a transient error while the breaker is open.
func (t *Transactor) InTx(ctx context.Context, fn func(tx order.Tx) error) error {
	return t.b.Do(ctx, func(ctx context.Context) error { return t.next.InTx(ctx, fn) })
}

// Notifier sends notifications through a breaker; it implements
// order.Notifier.
type Notifier struct {
	b    *Breaker
	next order.Notifier
}

// NewNotifier returns next guarded by b.
func NewNotifier(b *Breaker, next order.Notifier) *Notifier {
	return &Notifier{b: b, next: next}
}

// Notify sends n through the wrapped notifier, or fails fast with a
// transient error while the breaker is open.
func (n *Notifier) Notify(ctx context.Context, msg order.Notification) error {
	return n.b.Do(ctx, func(ctx context.Context) error { return n.next.Notify(ctx, msg) })
}
