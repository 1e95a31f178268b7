package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderd/orderd/internal/breaker"
	"github.com/orderd/orderd/internal/fault"
	"github.com/orderd/orderd/internal/order"
)

// store is an order.Transactor whose transactions fail with err while it is set.
type store struct {
	calls atomic.Int64
	mu    sync.Mutex
	err   error
}

func (s *store) fail(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

func (s *store) InTx(ctx context.Context, fn func(order.Tx) error) error {
	s.calls.Add(1)
	s.mu.Lock()
	err := s.err
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	return fn(nil)
}

// notifier is an order.Notifier failing with err while it is set.
type notifier struct {
	calls atomic.Int64
	err   atomic.Pointer[error]
}

func (n *notifier) Notify(context.Context, order.Notification) error {
	n.calls.Add(1)
	if e := n.err.Load(); e != nil {
		return *e
	}
	return nil
}

var (
	errDown  = fault.AsTransient(errors.New("connection refused"))
	errRule  = fault.Permanentf("out_of_stock", "not enough stock")
	errOther = errors.New("something odd")
)

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newBreaker(t *testing.T, s breaker.Settings) *breaker.Breaker {
	t.Helper()
	if s.Name == "" {
		s.Name = "database"
	}
	b := breaker.New(s)
	t.Cleanup(b.Close)
	return b
}

func noop(order.Tx) error { return nil }

func TestOpensOnlyOnConsecutiveTransientFailures(t *testing.T) {
	tests := []struct {
		name     string
		errs     []error // the store's answers, one call each
		wantOpen bool
	}{
		{"three transient failures open it", []error{errDown, errDown, errDown}, true},
		{"two are not enough", []error{errDown, errDown}, false},
		{"a success in between resets the count", []error{errDown, errDown, nil, errDown, errDown}, false},
		{"a rule's refusal is a healthy answer", []error{errDown, errDown, errRule, errDown, errDown}, false},
		{"permanent errors never open it", []error{errRule, errRule, errRule, errRule}, false},
		{"unclassified errors never open it", []error{errOther, errOther, errOther, errOther}, false},
		{"cancelled calls are not counted", []error{errDown, context.Canceled, errDown, context.Canceled, errDown}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBreaker(t, breaker.Settings{Failures: 3, OpenFor: time.Hour})
			s := &store{}
			tx := breaker.NewTransactor(b, s)
			for _, e := range tt.errs {
				s.fail(e)
				err := tx.InTx(context.Background(), noop)
				if !errors.Is(err, e) {
					t.Fatalf("InTx = %v, want the store's error %v", err, e)
				}
				if e != nil && fault.KindOf(err) != fault.KindOf(e) {
					t.Fatalf("InTx error kind = %v, want %v (kept)", fault.KindOf(err), fault.KindOf(e))
				}
			}
			if got := b.State() == breaker.Open; got != tt.wantOpen {
				t.Fatalf("open = %v, want %v (state %v)", got, tt.wantOpen, b.State())
			}
		})
	}
}

func TestOpenFailsFastWithTransientError(t *testing.T) {
	b := newBreaker(t, breaker.Settings{Failures: 2, OpenFor: time.Hour})
	s := &store{}
	tx := breaker.NewTransactor(b, s)
	s.fail(errDown)
	for range 2 {
		_ = tx.InTx(context.Background(), noop)
	}
	if b.State() != breaker.Open {
		t.Fatalf("state = %v, want open", b.State())
	}
	s.fail(nil)
	before := s.calls.Load()
	for range 5 {
		err := tx.InTx(context.Background(), noop)
		if !errors.Is(err, breaker.ErrOpen) {
			t.Fatalf("InTx while open = %v, want ErrOpen", err)
		}
		if fault.KindOf(err) != fault.Transient {
			t.Fatalf("InTx while open: kind %v, want transient (retried, never dead-lettered)", fault.KindOf(err))
		}
		var be *breaker.Error
		if !errors.As(err, &be) || be.Breaker != "database" {
			t.Fatalf("InTx while open = %v, want a *breaker.Error of breaker database", err)
		}
	}
	if got := s.calls.Load() - before; got != 0 {
		t.Fatalf("the store was called %d times while the breaker was open", got)
	}
}

func TestHalfOpensAndClosesOnSuccessfulCall(t *testing.T) {
	var mu sync.Mutex
	var changes []string
	b := newBreaker(t, breaker.Settings{Failures: 1, OpenFor: 20 * time.Millisecond,
		OnChange: func(name string, from, to breaker.State) {
			mu.Lock()
			changes = append(changes, name+":"+from.String()+"->"+to.String())
			mu.Unlock()
		}})
	s := &store{}
	tx := breaker.NewTransactor(b, s)
	s.fail(errDown)
	_ = tx.InTx(context.Background(), noop)
	if b.State() != breaker.Open {
		t.Fatalf("state = %v, want open", b.State())
	}
	// Without any call, the breaker half-opens on its own.
	eventually(t, "half-open", func() bool { return b.State() == breaker.HalfOpen })

	// A failing probe opens it again; then a successful one closes it.
	if err := tx.InTx(context.Background(), noop); !errors.Is(err, errDown) {
		t.Fatalf("probe = %v, want the store's error", err)
	}
	if b.State() != breaker.Open {
		t.Fatalf("state after a failed probe = %v, want open", b.State())
	}
	s.fail(nil)
	eventually(t, "half-open again", func() bool { return b.State() == breaker.HalfOpen })
	if err := tx.InTx(context.Background(), noop); err != nil {
		t.Fatalf("probe = %v", err)
	}
	if b.State() != breaker.Closed {
		t.Fatalf("state after a successful probe = %v, want closed", b.State())
	}
	want := []string{
		"database:closed->open", "database:open->half_open", "database:half_open->open",
		"database:open->half_open", "database:half_open->closed",
	}
	eventually(t, "all changes reported", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(changes) == len(want)
	})
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(changes, want) {
		t.Fatalf("changes = %v, want %v", changes, want)
	}
}

func TestProbeClosesWithoutTraffic(t *testing.T) {
	var healthy atomic.Bool
	var probes atomic.Int64
	b := newBreaker(t, breaker.Settings{Failures: 1, OpenFor: 20 * time.Millisecond,
		Probe: func(context.Context) error {
			probes.Add(1)
			if healthy.Load() {
				return nil
			}
			return errDown
		}})
	s := &store{}
	s.fail(errDown)
	_ = breaker.NewTransactor(b, s).InTx(context.Background(), noop)
	if b.State() != breaker.Open {
		t.Fatalf("state = %v, want open", b.State())
	}
	// The probe fails while the system is down, which keeps it open…
	eventually(t, "two failed probes", func() bool { return probes.Load() >= 2 })
	if st := b.State(); st == breaker.Closed {
		t.Fatalf("state = %v after failed probes", st)
	}
	// …and closes it once the system is back.
	healthy.Store(true)
	eventually(t, "closed by a probe", func() bool { return b.State() == breaker.Closed })
}

func TestNotifierFailuresDoNotCountAgainstTheDatabase(t *testing.T) {
	db := newBreaker(t, breaker.Settings{Name: "database", Failures: 2, OpenFor: time.Hour})
	nb := newBreaker(t, breaker.Settings{Name: "notifier", Failures: 2, OpenFor: time.Hour})
	n := &notifier{}
	n.err.Store(&errDown)
	notify := breaker.NewNotifier(nb, n)
	tx := breaker.NewTransactor(db, &store{})

	// A use case notifying inside its transaction.
	useCase := func(order.Tx) error {
		if err := notify.Notify(context.Background(), order.Notification{OrderID: "o-1"}); err != nil {
			return fmt.Errorf("process o-1: %w", err)
		}
		return nil
	}
	for i := range 4 {
		err := tx.InTx(context.Background(), useCase)
		if fault.KindOf(err) != fault.Transient {
			t.Fatalf("call %d: %v, want a transient error", i, err)
		}
	}
	if nb.State() != breaker.Open {
		t.Errorf("notifier breaker = %v, want open", nb.State())
	}
	if db.State() != breaker.Closed {
		t.Errorf("database breaker = %v, want closed: the failures were the notifier's", db.State())
	}
	if got := n.calls.Load(); got != 2 {
		t.Errorf("notifier called %d times, want 2 (then failing fast)", got)
	}
}
