package main

import (
	"math"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/orderd/orderd/internal/metrics"
)

// TestScrapeTransactions scrapes the service's own metrics handler twice and
// checks what the transaction histograms observed in between: the count,
// the mean and the buckets that hold p50 and p99.
func TestScrapeTransactions(t *testing.T) {
	m := metrics.New(nil)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()

	m.Transaction(time.Second, 100*time.Millisecond) // before: not counted
	before, err := scrapeTransactions(t.Context(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	for range 98 {
		m.Transaction(2*time.Millisecond, 300*time.Microsecond)
	}
	m.Transaction(40*time.Millisecond, 20*time.Millisecond)
	m.Transaction(45*time.Second, 3*time.Second) // beyond both last buckets
	after, err := scrapeTransactions(t.Context(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	f := after.since(before)

	if f.tx.count != 100 || f.commit.count != 100 {
		t.Fatalf("counts %d and %d, want 100 each", f.tx.count, f.commit.count)
	}
	if got, want := f.tx.mean(), (98*2*time.Millisecond+40*time.Millisecond+45*time.Second)/100; absDiff(got, want) > time.Microsecond {
		t.Errorf("transactions' mean %v, want %v", got, want)
	}
	for _, c := range []struct {
		name string
		h    histogram
		p    float64
		want float64
	}{
		{"transactions p50", f.tx, 50, 0.0025},
		{"transactions p99", f.tx, 99, 0.05},
		{"transactions p100", f.tx, 100, math.Inf(1)},
		{"commits p50", f.commit, 50, 0.0005},
		{"commits p99", f.commit, 99, 0.025},
	} {
		if got := c.h.upperBound(c.p); got != c.want {
			t.Errorf("%s at most %v, want %v", c.name, got, c.want)
		}
	}
	if got := (histogram{}).upperBound(99); got != 0 {
		t.Errorf("an empty histogram's p99 bound %v, want 0", got)
	}
}

func absDiff(a, b time.Duration) time.Duration {
	if a > b {
		return a - b
	}
	return b - a
}
