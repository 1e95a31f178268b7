package kafka_test

import (
	"context"
	"errors"
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
// Below the threshold (an hour) it keeps failing and is not counted; above
// it (a nanosecond) it is.
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
				// Sampled over further attempts, not once: the partition
				// keeps waiting in backoff all along.
				n := calls.Load()
				kafkatest.Eventually(t, 20*time.Second, func() bool {
					if st := c.Status(); st.Retrying != 0 {
						t.Fatalf("Status.Retrying = %d before RetryingAfter (%s) has passed, want 0", st.Retrying, tc.after)
					}
					return calls.Load() >= n+3
				}, "further attempts in backoff")
				return
			}
			kafkatest.Eventually(t, 20*time.Second, func() bool { return c.Status().Retrying == tc.want },
				"Status.Retrying %d once RetryingAfter (%s) has passed", tc.want, tc.after)
		})
	}
}
