package kafka

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Defaults applied by NewConsumer and NewDLQ to zero Config fields.
const (
	DefaultMaxAttempts     = 5
	DefaultShutdownTimeout = 30 * time.Second
	DefaultRetryInitial    = 100 * time.Millisecond
	DefaultRetryMax        = 30 * time.Second
)

// consumerDefaults returns cfg with zero retry and shutdown settings replaced by
// their defaults.
func (c Config) consumerDefaults() Config {
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.RetryInitial <= 0 {
		c.RetryInitial = DefaultRetryInitial
	}
	if c.RetryMax <= 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.RetryingAfter <= 0 {
		c.RetryingAfter = RetryingAfter
	}
	if c.RetryMax < c.RetryInitial {
		c.RetryMax = c.RetryInitial
	}
	if c.AutoOffsetReset == "" {
		c.AutoOffsetReset = "earliest"
	}
	return c
}

// newBackoff returns an exponential backoff (×2 per step, ±20% jitter, so
// that instances that lost a dependency together do not all try again at
// the same moment) between initial and max. It is not safe for concurrent
// use: each retry loop makes its own.
func newBackoff(initial, max time.Duration) *backoff.ExponentialBackOff {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     initial,
		RandomizationFactor: 0.2,
		Multiplier:          2,
		MaxInterval:         max,
	}
	b.Reset()
	return b
}

// pause waits for d. It returns false, early, when ctx is done or stop is
// closed (a nil stop never closes), so that retry loops end as soon as their
// partition is revoked or the service shuts down.
func pause(ctx context.Context, stop <-chan struct{}, d time.Duration) bool {
	ok, _ := pauseOrWake(ctx, stop, nil, d)
	return ok
}

// pauseOrWake is pause that also ends, early, when wake is closed (a nil
// wake never closes): ok then, and woken true.
func pauseOrWake(ctx context.Context, stop, wake <-chan struct{}, d time.Duration) (ok, woken bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true, false
	case <-wake:
		return true, true
	case <-ctx.Done():
		return false, false
	case <-stop:
		return false, false
	}
}

// stopped reports whether stop has been closed.
func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}
