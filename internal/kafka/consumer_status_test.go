package kafka_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/orderd/orderd/internal/fault"
	"github.com/orderd/orderd/internal/kafka"
	"github.com/orderd/orderd/internal/kafka/kafkatest"
)

// TestConsumerRetryNow: a partition waiting in backoff after a transient
// error is counted in Status.Retrying, and RetryNow (the app calls it when a
// circuit breaker closes) has it try the record again at once rather than
// when its backoff ends, here an hour away.
func TestConsumerRetryNow(t *testing.T) {
	kc := kafkatest.New(t, 1, []string{ctTopic, ctDLQ})
	kc.Produce(&kgo.Record{Topic: ctTopic, Value: []byte("r|0")})
	var back atomic.Bool
	var calls atomic.Int32
	h := func(ctx context.Context, rec *kgo.Record) error {
		up := back.Load()
		calls.Add(1) // after the read: two calls seen means the second read done
		if !up {
			return fault.AsTransient(errors.New("database unreachable"))
		}
		return nil
	}
	cfg := ctConfig(kc)
	cfg.RetryInitial, cfg.RetryMax = time.Hour, time.Hour
	c := ctNew(t, cfg, h)
	ctRun(t, c)

	kafkatest.Eventually(t, 20*time.Second, func() bool { return c.Status().Retrying == 1 }, "the partition waiting in backoff")
	if st := c.Status(); st.State != kafka.StateRunning || !strings.Contains(st.LastError, "database unreachable") {
		t.Errorf("Status = %+v, want running with the transient error", st)
	}
	c.RetryNow() // the dependency is not back yet: one more failed attempt
	kafkatest.Eventually(t, 20*time.Second, func() bool { return calls.Load() == 2 }, "a second attempt after RetryNow")
	back.Store(true)
	c.RetryNow()
	kafkatest.Eventually(t, 20*time.Second, func() bool { return kc.Committed(ctGroup, ctTopic)[0] == 1 },
		"the record handled and committed after RetryNow")
	if st := c.Status(); st.Retrying != 0 {
		t.Errorf("Status.Retrying = %d after the record was handled, want 0", st.Retrying)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("handler called %d times, want 3", n)
	}
}

// TestConsumerGroupFailureIsConnecting: while the group cannot be joined
// (here the broker refuses JoinGroup) the consumer reports connecting, with
// the group's error, not running with no partitions; once it joins it is
// running with its partitions.
func TestConsumerGroupFailureIsConnecting(t *testing.T) {
	kc := kafkatest.New(t, 2, []string{ctTopic, ctDLQ})
	refused := kc.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.JoinGroup}, Err: kerr.GroupAuthorizationFailed, Count: -1})
	c := ctNew(t, ctConfig(kc), newRecorder().handler("a"))
	ctRun(t, c)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := refused.Wait(ctx, 2); err != nil {
		t.Fatalf("JoinGroup not tried twice: %v", err)
	}
	kafkatest.Eventually(t, 20*time.Second, func() bool {
		st := c.Status()
		return st.State == kafka.StateConnecting && strings.Contains(st.LastError, "GROUP_AUTHORIZATION_FAILED")
	}, "connecting with the group's error, while the group refuses the member")
	if st := c.Status(); len(st.Assigned) != 0 || strings.Contains(st.LastError, "fetch ") {
		t.Errorf("Status = %+v, want no partitions and the error not reported as a partition's fetch", st)
	}

	refused.Remove()
	kafkatest.Eventually(t, 30*time.Second, func() bool {
		st := c.Status()
		return st.State == kafka.StateRunning && len(st.Assigned[ctTopic]) == 2
	}, "running with both partitions once the group is joined")
}

// TestConsumerRetryNowLeavesOtherErrors: RetryNow wakes only partitions
// waiting on a transient error. One retrying an unclassified error keeps
// its backoff, here an hour, so that a dependency coming back does not
// spend its MAX_ATTEMPTS sooner.
func TestConsumerRetryNowLeavesOtherErrors(t *testing.T) {
	kc := kafkatest.New(t, 1, []string{ctTopic, ctDLQ})
	kc.Produce(&kgo.Record{Topic: ctTopic, Value: []byte("r|0")})
	var calls atomic.Int32
	h := func(ctx context.Context, rec *kgo.Record) error {
		calls.Add(1)
		return errors.New("a bug, not an outage")
	}
	cfg := ctConfig(kc)
	cfg.RetryInitial, cfg.RetryMax = time.Hour, time.Hour
	c := ctNew(t, cfg, h)
	ctRun(t, c)

	kafkatest.Eventually(t, 20*time.Second, func() bool { return calls.Load() == 1 }, "the first attempt")
	time.Sleep(100 * time.Millisecond) // into its backoff
	c.RetryNow()
	time.Sleep(500 * time.Millisecond) // a woken retry comes at once
	if n := calls.Load(); n != 1 {
		t.Errorf("handler called %d times after RetryNow, want 1: an unclassified error keeps its backoff", n)
	}
}

// TestConsumerRetryingThreshold: a partition in backoff on a transient
// error counts in Status.Retrying only once it has waited there for
// Config.RetryingAfter, so that one lost race does not flip readiness.
// Below the threshold (an hour) it keeps failing and is not counted, for
// longer than the default threshold (so that a Status reading the constant
// instead of the Config fails here); above it (a nanosecond) it is.
func TestConsumerRetryingThreshold(t *testing.T) {
	cases := []struct {
		name  string
		after time.Duration
		want  int
	}{
		{"below the threshold", time.Hour, 0},
		{"beyond the threshold", time.Nanosecond, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kc := kafkatest.New(t, 1, []string{ctTopic, ctDLQ})
			kc.Produce(&kgo.Record{Topic: ctTopic, Value: []byte("r|0")})
			var calls atomic.Int32
			h := func(ctx context.Context, rec *kgo.Record) error {
				calls.Add(1)
				return fault.AsTransient(errors.New("database unreachable"))
			}
			cfg := ctConfig(kc) // backoff of 5 to 40 ms: many attempts soon
			cfg.RetryingAfter = tc.after
			c := ctNew(t, cfg, h)
			ctRun(t, c)

			// Several attempts: the partition has waited in backoff between
			// them, and its first failure is long enough ago for the tiny
			// threshold.
			kafkatest.Eventually(t, 20*time.Second, func() bool { return calls.Load() >= 3 }, "attempts in backoff")
			if st := c.Status(); !strings.Contains(st.LastError, "database unreachable") {
				t.Errorf("Status.LastError = %q, want the transient error", st.LastError)
			}
			if tc.want == 0 {
				// Sampled over further attempts, not once, for longer than
				// the default threshold: the partition keeps waiting in
				// backoff all along.
				n, past := calls.Load(), time.Now().Add(kafka.RetryingAfter+time.Second)
				kafkatest.Eventually(t, 30*time.Second, func() bool {
					if st := c.Status(); st.Retrying != 0 {
						t.Fatalf("Status.Retrying = %d before RetryingAfter (%s) has passed, want 0", st.Retrying, tc.after)
					}
					return calls.Load() >= n+3 && time.Now().After(past)
				}, "further attempts in backoff, past the default threshold")
				return
			}
			kafkatest.Eventually(t, 20*time.Second, func() bool { return c.Status().Retrying == tc.want },
				"Status.Retrying %d once RetryingAfter (%s) has passed", tc.want, tc.after)
		})
	}
}

// TestConsumerDLQBlockedFollowsThePublisher: while a record's dead-letter
// write fails, Status.DLQBlocked counts its partition. The flag belongs to
// the worker that publishes: when the partition is released (Stop) and
// assigned again (Start) it neither stays set nor lands on the new worker,
// which is counted only when its own write fails. Whether the DLQ is mended
// while the partition is released or after it is assigned again, the record
// ends on the DLQ exactly once and its offset is committed.
func TestConsumerDLQBlockedFollowsThePublisher(t *testing.T) {
	for _, mendWhileReleased := range []bool{true, false} {
		name := "mended after reassigned"
		if mendWhileReleased {
			name = "mended while released"
		}
		t.Run(name, func(t *testing.T) {
			// Not retriable, so that each try fails at once rather than
			// after franz-go's own retries.
			f := newDLQFailing(t, kerr.PolicyViolation)
			kc, faulted, rec, c, failures := f.kc, f.faulted, f.rec, f.c, &f.failures

			kafkatest.Eventually(t, 20*time.Second, func() bool { return c.Status().DLQBlocked == 1 },
				"the partition blocked on its failing dead-letter write")
			// ok|0's commit is asynchronous: it may follow the failing write.
			kafkatest.Eventually(t, 20*time.Second, func() bool { return kc.Committed(ctGroup, ctTopic)[0] == 1 },
				"offset 1 (the poison record's) committed while the DLQ write fails")

			c.Stop() // releases the partition mid-write: the record stays uncommitted
			if st := c.Status(); st.DLQBlocked != 0 || len(st.Assigned) != 0 {
				t.Errorf("Status after Stop = %+v, want no partition and none blocked", st)
			}
			if got := kc.Committed(ctGroup, ctTopic)[0]; got != 1 {
				t.Fatalf("committed offset %d after Stop, want 1: the record was not dead-lettered", got)
			}
			if end := sum(kc.EndOffsets(ctDLQ)); end != 0 {
				t.Fatalf("DLQ has %d records while failing", end)
			}

			if mendWhileReleased {
				faulted.Remove()
				c.Start()
				// The new worker's write succeeds at its first try: it is
				// never blocked, whatever its predecessor was.
				kafkatest.Eventually(t, 30*time.Second, func() bool {
					if st := c.Status(); st.DLQBlocked != 0 {
						t.Fatalf("Status.DLQBlocked = %d after Start with the DLQ mended, want 0", st.DLQBlocked)
					}
					return kc.Committed(ctGroup, ctTopic)[0] == 3
				}, "all records committed after Start")
			} else {
				before := failures.Load()
				c.Start()
				// The new worker is counted once its own write fails.
				kafkatest.Eventually(t, 20*time.Second, func() bool {
					return failures.Load() > before && len(c.Status().Assigned[ctTopic]) == 1 && c.Status().DLQBlocked == 1
				}, "the reassigned partition blocked on its own failing dead-letter write")
				faulted.Remove()
				kafkatest.Eventually(t, 30*time.Second, func() bool { return kc.Committed(ctGroup, ctTopic)[0] == 3 },
					"all records committed after the DLQ is mended")
			}
			if st := c.Status(); st.DLQBlocked != 0 || st.DeadLettered != 1 {
				t.Errorf("Status = %+v, want none blocked and 1 record dead-lettered", st)
			}
			f.stop()
			f.checkPoisonDeadLettered(t)
			// The poison record is handled again after the release (its
			// write was abandoned); the others once each.
			calls, _ := rec.snapshot()
			var got []string
			for _, c := range calls {
				got = append(got, c.value)
			}
			if want := []string{"ok|0", "permanent|1", "permanent|1", "ok|2"}; !slices.Equal(got, want) {
				t.Errorf("handler calls %v, want %v", got, want)
			}
		})
	}
}
