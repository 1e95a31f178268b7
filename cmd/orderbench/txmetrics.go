package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/orderd/orderd/internal/metrics"
)

// histogram is one of the service's Prometheus histograms as scraped: its
// sample count and sum, and its cumulative bucket counts by upper bound, in
// the ascending order of the exposition.
type histogram struct {
	count   uint64
	sum     float64
	buckets []bucket
}

type bucket struct {
	le    float64
	count uint64 // cumulative
}

// txFigures are the service's transaction histograms
// (metrics.TransactionDuration and metrics.CommitDuration) as scraped, or
// what they observed between two scrapes.
type txFigures struct {
	tx, commit histogram
}

// since returns what f observed after earlier, a scrape before it.
func (f txFigures) since(earlier txFigures) txFigures {
	return txFigures{tx: f.tx.since(earlier.tx), commit: f.commit.since(earlier.commit)}
}

// scrapeTransactions reads the transaction histograms from the service's
// /metrics.
func scrapeTransactions(ctx context.Context, url string) (txFigures, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/metrics", nil)
	if err != nil {
		return txFigures{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return txFigures{}, fmt.Errorf("GET /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return txFigures{}, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return txFigures{}, fmt.Errorf("GET /metrics: %w", err)
	}
	var h txFigures
	var ok1, ok2 bool
	h.tx, ok1 = histogramOf(mfs[metrics.TransactionDuration])
	h.commit, ok2 = histogramOf(mfs[metrics.CommitDuration])
	if !ok1 || !ok2 {
		return txFigures{}, fmt.Errorf("GET /metrics: no %s or %s", metrics.TransactionDuration, metrics.CommitDuration)
	}
	return h, nil
}

// histogramOf returns the one unlabelled histogram of mf.
func histogramOf(mf *dto.MetricFamily) (histogram, bool) {
	if mf == nil || len(mf.GetMetric()) != 1 || mf.GetMetric()[0].GetHistogram() == nil {
		return histogram{}, false
	}
	ph := mf.GetMetric()[0].GetHistogram()
	h := histogram{count: ph.GetSampleCount(), sum: ph.GetSampleSum()}
	for _, b := range ph.GetBucket() {
		h.buckets = append(h.buckets, bucket{le: b.GetUpperBound(), count: b.GetCumulativeCount()})
	}
	return h, true
}

// since returns what h observed after earlier, a scrape of the same
// histogram.
func (h histogram) since(earlier histogram) histogram {
	d := histogram{count: h.count - earlier.count, sum: h.sum - earlier.sum}
	for i, b := range h.buckets {
		c := b.count
		if i < len(earlier.buckets) && earlier.buckets[i].le == b.le {
			c -= earlier.buckets[i].count
		}
		d.buckets = append(d.buckets, bucket{le: b.le, count: c})
	}
	return d
}

// mean is the mean observation, or 0 without any.
func (h histogram) mean() time.Duration {
	if h.count == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.count) * float64(time.Second))
}

// upperBound returns the upper bound of the bucket that holds the p-th
// percentile (0 < p ≤ 100): the percentile is at most that. It is +Inf
// when the percentile lies beyond the last bucket, and 0 without any
// observation.
func (h histogram) upperBound(p float64) float64 {
	if h.count == 0 {
		return 0
	}
	rank := uint64(math.Ceil(p / 100 * float64(h.count)))
	for _, b := range h.buckets {
		if b.count >= rank {
			return b.le
		}
	}
	return math.Inf(1)
}

// String formats the figures for printResult.
func (f txFigures) String() string {
	bound := func(h histogram, p float64) string {
		le := h.upperBound(p)
		if math.IsInf(le, 1) {
			return "beyond the last bucket"
		}
		return "≤ " + ms(time.Duration(le*float64(time.Second)))
	}
	return fmt.Sprintf("%d committed, mean %s (p50 %s, p99 %s, slowest %s); their COMMITs mean %s (p50 %s, p99 %s, slowest %s)",
		f.tx.count, ms(f.tx.mean()), bound(f.tx, 50), bound(f.tx, 99), bound(f.tx, 100),
		ms(f.commit.mean()), bound(f.commit, 50), bound(f.commit, 99), bound(f.commit, 100))
}
