package kafka

import (
	"errors"
	"log/slog"
	"maps"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
)

// DefaultRetentionCheck is how often the embedded broker looks for records
// to delete: Kafka's own log.retention.check.interval.ms.
const DefaultRetentionCheck = 5 * time.Minute

// EmbeddedRetention bounds what the embedded broker keeps. Without it the
// log grows with every event for as long as the broker runs (kfake applies
// no retention unless a topic asks for it). Unlike Kafka's retention.ms,
// which deletes by age whether anyone has read the records or not, only
// records the service's consumer group has committed are deleted, so a
// service stopped for longer than After loses nothing it has not handled.
// Other groups are not asked; what is deleted was committed, and so
// produced, at least After before, so they lose no more than Kafka's own
// retention of After would take.
type EmbeddedRetention struct {
	// After is how long a record is kept once Group has committed past it
	// (EMBEDDED_KAFKA_RETENTION); 0 keeps every record.
	After time.Duration
	// Group is the consumer group whose commits count (KAFKA_GROUP_ID).
	Group string
	// Topics are the topics trimmed (KAFKA_TOPIC). Others, the DLQ topic
	// among them, are never: nobody in the service reads the DLQ, and its
	// records are the only copy of the events that failed.
	Topics []string
	// Check is how often the broker looks; 0 means DefaultRetentionCheck.
	Check time.Duration
}

// commitSample is the group's committed offsets of the trimmed topics as
// seen at one check.
type commitSample struct {
	at      time.Time
	offsets map[string]map[int32]int64
}

// retainer deletes the records its group committed at least After ago. It
// learns when an offset was committed by sampling the group's commits at
// every check, so after a restart nothing is deleted for After: the samples
// are not kept on disk, and an offset of unknown age is never taken as old.
type retainer struct {
	cluster *kfake.Cluster
	cfg     EmbeddedRetention
	logger  *slog.Logger
	samples []commitSample // oldest first
}

// run checks every cfg.Check until stop is closed, then closes done.
func (r *retainer) run(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(r.cfg.Check)
	defer t.Stop()
	r.check(time.Now())
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			r.check(now)
		}
	}
}

// check samples the group's commits and deletes what the newest sample at
// least After old allows. A sample that finds the same offsets as the one
// before it is not kept: the older one already shows them, committed since
// earlier, so it allows the same deletions as soon. An idle group's samples
// are thus one, and a busy group's at most one per check in After.
func (r *retainer) check(now time.Time) {
	latest := r.sample(now)
	if n := len(r.samples); n == 0 || !sameOffsets(r.samples[n-1].offsets, latest.offsets) {
		r.samples = append(r.samples, latest)
	}
	cut := -1 // the newest sample old enough
	for i, s := range r.samples {
		if now.Sub(s.at) < r.cfg.After {
			break
		}
		cut = i
	}
	if cut < 0 {
		return
	}
	old := r.samples[cut]
	r.samples = r.samples[cut:] // older ones allow no more than it does
	var deleted int64
	for topic, parts := range old.offsets {
		for p, committed := range parts {
			// An operator may have moved the group back since, to read
			// again: what it has yet to read again stays (as of this
			// check; a move between the sample and the deletion is not
			// seen).
			current, ok := latest.offsets[topic][p]
			if !ok {
				continue
			}
			committed = min(committed, current)
			info := r.cluster.PartitionInfo(topic, p)
			if info == nil || committed <= info.LogStartOffset || committed > info.HighWatermark {
				continue
			}
			err := r.cluster.DeleteRecords(topic, p, committed)
			if err != nil {
				if !errors.Is(err, kerr.UnknownTopicOrPartition) {
					r.logger.Warn("embedded kafka: retention could not delete records",
						"topic", topic, "partition", p, "before_offset", committed, "err", err)
				}
				continue
			}
			deleted += committed - info.LogStartOffset
		}
	}
	if deleted > 0 {
		r.logger.Info("embedded kafka: retention deleted records the group committed before the retention period",
			"records", deleted, "group", r.cfg.Group, "retention", r.cfg.After)
	}
}

// sameOffsets reports whether two samples found the same committed offsets.
func sameOffsets(a, b map[string]map[int32]int64) bool {
	return maps.EqualFunc(a, b, maps.Equal)
}

// sample reads the group's committed offsets of the trimmed topics.
func (r *retainer) sample(now time.Time) commitSample {
	s := commitSample{at: now, offsets: map[string]map[int32]int64{}}
	g := r.cluster.GroupInfo(r.cfg.Group)
	if g == nil {
		return s
	}
	for _, topic := range r.cfg.Topics {
		for p, c := range g.Commits[topic] {
			if s.offsets[topic] == nil {
				s.offsets[topic] = map[int32]int64{}
			}
			s.offsets[topic][p] = c.Offset
		}
	}
	return s
}
