package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// offsets is one topic's offset per partition.
type offsets map[int32]int64

// sum returns the total of all partitions' offsets.
func (o offsets) sum() int64 {
	var n int64
	for _, v := range o {
		n += v
	}
	return n
}

// reached reports whether o is at least target on every partition of target.
func (o offsets) reached(target offsets) bool {
	for p, end := range target {
		if o[p] < end {
			return false
		}
	}
	return true
}

// endOffsets returns the end offset of every partition of topic.
func endOffsets(ctx context.Context, adm *kadm.Client, topic string) (offsets, error) {
	listed, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	out := offsets{}
	listed.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// committedOffsets returns group's committed offsets on topic; partitions
// without a commit are absent.
func committedOffsets(ctx context.Context, adm *kadm.Client, group, topic string) (offsets, error) {
	resp, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("committed offsets of group %s: %w", group, err)
	}
	out := offsets{}
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil && o.At >= 0 {
			out[o.Partition] = o.At
		}
	})
	return out, nil
}

// committedProbe returns a group's committed offsets on the benchmark topic.
type committedProbe func(ctx context.Context) (offsets, error)

// fetchCommitted is the committedProbe that asks the broker.
func fetchCommitted(adm *kadm.Client, group, topic string) committedProbe {
	return func(ctx context.Context) (offsets, error) { return committedOffsets(ctx, adm, group, topic) }
}

// waitCommitted calls probe every interval until the committed offsets
// reach target, and returns when they did. It fails when exited reports
// that the consumer, called name in errors, stopped.
func waitCommitted(ctx context.Context, name string, exited func() error, probe committedProbe, target offsets, interval time.Duration) (time.Time, error) {
	var last offsets
	var lastErr error
	for {
		if err := exited(); err != nil {
			return time.Time{}, err
		}
		c, err := probe(ctx)
		if err == nil && c.reached(target) {
			return time.Now(), nil
		}
		if err != nil {
			lastErr = err
		} else {
			last = c
		}
		if err := sleep(ctx, interval); err != nil {
			return time.Time{}, fmt.Errorf("waiting for %s to commit %d records (committed %d, last error %v): %w",
				name, target.sum(), last.sum(), lastErr, err)
		}
	}
}

// procStatusKB returns a field of /proc/<pid>/status given in kB (VmRSS,
// VmHWM) in bytes.
func procStatusKB(pid int, field string) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("memory of pid %d (needs Linux /proc): %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != field {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/status %s %q: %w", pid, field, v, err)
		}
		return kb * 1024, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}

// rssSampler records the largest VmRSS of a process, read every interval.
type rssSampler struct {
	stop chan struct{}
	done chan struct{}
	max  int64
}

// sampleRSS starts sampling pid's VmRSS until stopped.
func sampleRSS(pid int, interval time.Duration) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if rss, err := procStatusKB(pid, "VmRSS"); err == nil {
				s.max = max(s.max, rss)
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// finish stops sampling and returns the largest VmRSS seen, in bytes.
func (s *rssSampler) finish() int64 {
	close(s.stop)
	<-s.done
	return s.max
}

// produced is one record of the latency phase: when it was handed to the
// producer and where it landed.
type produced struct {
	partition int32
	offset    int64
	at        time.Time
}

// advance is a committed offset of a partition seen for the first time.
type advance struct {
	offset int64
	at     time.Time
}

// commitWatch polls a group's committed offsets as often as it can (at
// most every interval) and records every advance per partition.
type commitWatch struct {
	stop context.CancelFunc
	done chan struct{}

	mu       sync.Mutex
	last     offsets // the highest committed offsets seen
	lastErr  error   // the last poll error
	advances map[int32][]advance
	polls    int
	span     time.Duration
}

// watchCommits starts polling probe.
func watchCommits(ctx context.Context, probe committedProbe, interval time.Duration) *commitWatch {
	ctx, stop := context.WithCancel(ctx)
	w := &commitWatch{stop: stop, done: make(chan struct{}), last: offsets{}, advances: map[int32][]advance{}}
	go func() {
		defer close(w.done)
		start := time.Now()
		w.poll(ctx, probe, interval)
		w.mu.Lock()
		w.span = time.Since(start)
		w.mu.Unlock()
	}()
	return w
}

// poll calls probe every interval until ctx is done. A commit's time is
// when the first answer that shows it arrived.
func (w *commitWatch) poll(ctx context.Context, probe committedProbe, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		c, err := probe(ctx)
		if ctx.Err() != nil {
			return
		}
		w.record(c, err, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// record notes one poll's answer, seen at now.
func (w *commitWatch) record(c offsets, err error, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.polls++
	if err != nil {
		w.lastErr = err
		return
	}
	for p, at := range c {
		if at > w.last[p] {
			w.last[p] = at
			w.advances[p] = append(w.advances[p], advance{offset: at, at: now})
		}
	}
}

// seen is a committedProbe: the highest committed offsets the watch has
// seen so far, or its last poll error when it has seen none.
func (w *commitWatch) seen(context.Context) (offsets, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.last) == 0 && w.lastErr != nil {
		return nil, w.lastErr
	}
	return maps.Clone(w.last), nil
}

// finish stops polling; afterwards advances and meanInterval may be read.
func (w *commitWatch) finish() {
	w.stop()
	<-w.done
}

// meanInterval is the mean time between two polls: the resolution of the
// commit times.
func (w *commitWatch) meanInterval() time.Duration {
	if w.polls < 2 {
		return w.span
	}
	return w.span / time.Duration(w.polls-1)
}

// commitLatencies returns, for every record of recs whose commit was seen,
// the time from its produce to the first observed commit past its offset,
// sorted; and how many records were never seen committed. advances must be
// in increasing offset order per partition.
func commitLatencies(recs []produced, advances map[int32][]advance) (lat []time.Duration, unseen int) {
	lat = make([]time.Duration, 0, len(recs))
	for _, r := range recs {
		d, ok := commitSeen(r, advances)
		if !ok {
			unseen++
			continue
		}
		lat = append(lat, d)
	}
	slices.Sort(lat)
	return lat, unseen
}

// commitSeen returns the time from r's produce to the first observed commit
// past its offset, and whether one was seen. advances must be in increasing
// offset order per partition.
func commitSeen(r produced, advances map[int32][]advance) (time.Duration, bool) {
	adv := advances[r.partition]
	i := sort.Search(len(adv), func(i int) bool { return adv[i].offset > r.offset })
	if i == len(adv) {
		return 0, false
	}
	return adv[i].at.Sub(r.at), true
}

// timeSlice is the latencies of the records produced in one slice of a
// latency phase.
type timeSlice struct {
	from          time.Duration // since the phase's first record
	count         int
	p50, p99, max time.Duration
}

// latencyTimeline splits the records whose commit was seen into slices of
// width by their produce time, from the first record's, and gives each
// slice's percentiles: whether a tail is spread over the phase or comes in
// bursts.
func latencyTimeline(recs []produced, advances map[int32][]advance, width time.Duration) []timeSlice {
	if len(recs) == 0 || width <= 0 {
		return nil
	}
	start := recs[0].at
	for _, r := range recs {
		if r.at.Before(start) {
			start = r.at
		}
	}
	var buckets [][]time.Duration
	for _, r := range recs {
		d, ok := commitSeen(r, advances)
		if !ok {
			continue
		}
		k := int(r.at.Sub(start) / width)
		for len(buckets) <= k {
			buckets = append(buckets, nil)
		}
		buckets[k] = append(buckets[k], d)
	}
	out := make([]timeSlice, len(buckets))
	for k, lat := range buckets {
		slices.Sort(lat)
		out[k] = timeSlice{from: time.Duration(k) * width, count: len(lat), p50: percentile(lat, 50), p99: percentile(lat, 99)}
		if len(lat) > 0 {
			out[k].max = lat[len(lat)-1]
		}
	}
	return out
}

// percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of
// sorted, or 0 when it is empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted)) + 0.999999999)
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// bareResult is what the bare consumer measured.
type bareResult struct {
	records    int64
	fromStart  time.Duration // client creation to the last commit
	fromFirst  time.Duration // first record received to the last commit
	throughput float64       // records / fromFirst
}

// bareClient is a plain franz-go group consumer of topic from its start, in
// group, that commits only when told to; extra options come last.
func bareClient(brokerAddr, topic, group string, extra ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(brokerAddr),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
	}, extra...)...)
}

// fetchErrors joins the errors of a poll's fetches, or returns nil.
func fetchErrors(fetches kgo.Fetches) error {
	var errs []error
	fetches.EachError(func(t string, p int32, err error) {
		errs = append(errs, fmt.Errorf("%s[%d]: %w", t, p, err))
	})
	return errors.Join(errs...)
}

// bareConsume drains topic up to target with a plain franz-go group
// consumer in a new group that commits after every poll and does nothing
// with the records: the ceiling of what a Kafka consumer can do here.
func bareConsume(ctx context.Context, brokerAddr, topic, group string, target offsets) (bareResult, error) {
	start := time.Now()
	cl, err := bareClient(brokerAddr, topic, group)
	if err != nil {
		return bareResult{}, fmt.Errorf("bare consumer: %w", err)
	}
	defer cl.Close()
	var res bareResult
	var first time.Time
	next := offsets{}
	for !next.reached(target) {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("bare consumer: %w", err)
		}
		if err := fetchErrors(fetches); err != nil {
			return res, fmt.Errorf("bare consumer fetch: %w", err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if first.IsZero() {
				first = time.Now()
			}
			if r.Offset < target[r.Partition] {
				res.records++
			}
			next[r.Partition] = r.Offset + 1
		})
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			return res, fmt.Errorf("bare consumer commit: %w", err)
		}
	}
	end := time.Now()
	res.fromStart, res.fromFirst = end.Sub(start), end.Sub(first)
	res.throughput = float64(res.records) / res.fromFirst.Seconds()
	return res, nil
}

// bareFollower is a plain franz-go group consumer that keeps up with a
// topic and commits synchronously after every poll that returned records.
type bareFollower struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	failed error
}

// followBare starts a bareFollower on topic in group and returns once the
// group has assigned it the topic's partitions.
func followBare(ctx context.Context, brokerAddr, topic, group string) (*bareFollower, error) {
	assigned := make(chan struct{})
	var once sync.Once
	cl, err := bareClient(brokerAddr, topic, group,
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			once.Do(func() { close(assigned) })
		}))
	if err != nil {
		return nil, fmt.Errorf("bare follower: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	f := &bareFollower{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		defer cl.Close()
		f.fail(f.follow(ctx, cl))
	}()
	select {
	case <-assigned:
		return f, nil
	case <-f.done:
		return nil, f.err()
	case <-time.After(readyTimeout):
		_ = f.stop()
		return nil, fmt.Errorf("bare follower: no partitions assigned within %s", readyTimeout)
	}
}

// follow polls and commits until ctx is done.
func (f *bareFollower) follow(ctx context.Context, cl *kgo.Client) error {
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err := fetchErrors(fetches); err != nil {
			return fmt.Errorf("bare follower fetch: %w", err)
		}
		if fetches.NumRecords() == 0 {
			continue
		}
		if err := cl.CommitUncommittedOffsets(ctx); err != nil && ctx.Err() == nil {
			return fmt.Errorf("bare follower commit: %w", err)
		}
	}
}

func (f *bareFollower) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failed == nil {
		f.failed = err
	}
}

// err is why the follower stopped on its own, or nil while it runs.
func (f *bareFollower) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failed == nil {
		select {
		case <-f.done:
			return errors.New("bare follower stopped")
		default:
		}
	}
	return f.failed
}

// stop stops the follower and returns why it had stopped before, if it had.
func (f *bareFollower) stop() error {
	err := f.err()
	f.cancel()
	<-f.done
	return err
}
