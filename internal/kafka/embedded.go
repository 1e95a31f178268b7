package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// withoutClientMetrics is the APIs the embedded broker offers: a released
// Kafka's (kversion.Stable, which kfake also answers features from) without
// client metrics (KIP-714: GetTelemetrySubscriptions, PushTelemetry). kfake
// subscribes every client to them and nobody reads what they push, while
// franz-go builds new compressors for each push: 9.3 of the 11.2 MB an idle
// embedded instance allocated in 40 s (pprof allocs). A client of a broker
// without them pushes nothing.
func withoutClientMetrics() *kversion.Versions {
	v := kversion.Stable()
	v.SetMaxKeyVersion(int16(kmsg.GetTelemetrySubscriptions), -1)
	v.SetMaxKeyVersion(int16(kmsg.PushTelemetry), -1)
	return v
}

// DefaultEmbeddedAddr is where the embedded broker listens when
// EmbeddedConfig.Addr is empty; it is the address Kafka tools try first.
const DefaultEmbeddedAddr = "127.0.0.1:9092"

// EmbeddedMaxMessageBytes is the embedded broker's message.max.bytes: room
// for a MaxRecordBytes record and the headers the DLQ adds to it.
const EmbeddedMaxMessageBytes = MaxRecordBytes + 1<<20

// groupsLogCompactBytes is the size at which the broker rewrites the log
// of committed offsets it keeps in its data directory (kfake's
// state.log.compact.bytes; its default is 10 MiB). Every offset commit
// appends to that log, and the rewrite reads and decodes all of it while
// the broker serves nothing else, so the pause grows with the threshold.
// At 5,000 events/s the service's commits grow it by 0.3-0.5 MB/s. With
// 10 MiB, the slowest records of orderbench's bare consumer mostly took
// 170-310 ms; with 256 KiB, 11-14 ms (docs/BENCHMARKS.md, item 21). A
// rewrite keeps the latest commit of each group's partitions, about 100
// bytes each, so the log stays below the threshold for up to some 2,500 of
// them (about 400 groups of 6 partitions) whose offsets have not expired;
// beyond that every commit would rewrite it.
const groupsLogCompactBytes = 256 << 10

// EmbeddedConfig configures the in-process Kafka-protocol broker.
type EmbeddedConfig struct {
	// Addr is the host:port to listen on (EMBEDDED_KAFKA_ADDR); port 0
	// picks a free port. Empty means DefaultEmbeddedAddr.
	Addr string
	// DataDir keeps the log, topics and committed offsets on disk
	// (EMBEDDED_KAFKA_DIR); empty keeps everything in memory only.
	DataDir string
	// SyncWrites has each produced batch written to disk (fsync) before it
	// is acknowledged (EMBEDDED_KAFKA_SYNC), so that it survives a power
	// loss too, not only the process's crash.
	SyncWrites bool
	// Partitions is the partition count of topics created at start
	// (KAFKA_PARTITIONS); below 1 means 1.
	Partitions int
	// Topics are created at start when missing, e.g. the input topics and
	// the DLQ topic. Topics already in DataDir are kept as they are.
	Topics []string
	// Retention bounds what the broker keeps; its zero value keeps every
	// record.
	Retention EmbeddedRetention
	// Logger receives the broker's own log lines; nil discards them.
	Logger *slog.Logger
	// Opts are extra kfake options, e.g. SASL or TLS in tests.
	Opts []kfake.Opt
}

// Embedded is a running single-node kfake broker.
type Embedded struct {
	cluster *kfake.Cluster
	addr    string
	unlock  func()
	once    sync.Once
	// stopRetention and retentionDone end the retainer, when there is one.
	stopRetention chan struct{}
	retentionDone chan struct{}
}

// StartEmbedded starts a single-node broker listening on exactly cfg.Addr,
// reloads what an earlier run left in cfg.DataDir, and creates the missing
// topics of cfg.Topics. Topics are never created implicitly by clients, so a
// misspelt topic name fails instead of silently appearing.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultEmbeddedAddr
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	partitions := int32(max(cfg.Partitions, 1))

	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return nil, fmt.Errorf("EMBEDDED_KAFKA_ADDR: %q is not host:port: %w", cfg.Addr, err)
	}

	unlock := func() {}
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("EMBEDDED_KAFKA_DIR: %w", err)
		}
		var err error
		if unlock, err = lockDataDir(cfg.DataDir); err != nil {
			return nil, err
		}
	}

	var listenErr error
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ClusterID("orderd-embedded"),
		kfake.DefaultNumPartitions(int(partitions)),
		// kfake's default message.max.bytes is Kafka's ~1 MiB: an
		// oversized record would be refused at produce time, and one that
		// got in compressed could not be dead-lettered whole. Accept what
		// the consumer fetches and the DLQ writes (MaxRecordBytes + headers).
		// The commit log's rewrite threshold: see groupsLogCompactBytes.
		kfake.BrokerConfigs(map[string]string{
			"message.max.bytes":       strconv.Itoa(EmbeddedMaxMessageBytes),
			"state.log.compact.bytes": strconv.Itoa(groupsLogCompactBytes),
		}),
		kfake.WithLogger(kfakeSlog{l: logger}),
		kfake.MaxVersions(withoutClientMetrics()),
		// kfake binds 127.0.0.1 on its own; we bind what was asked for.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			ln, err := net.Listen(network, cfg.Addr)
			listenErr = err
			return ln, err
		}),
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
		if cfg.SyncWrites {
			opts = append(opts, kfake.SyncWrites())
		}
	}
	opts = append(opts, cfg.Opts...)

	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		unlock()
		switch {
		case errors.Is(listenErr, syscall.EADDRINUSE):
			return nil, fmt.Errorf("EMBEDDED_KAFKA_ADDR: %s is already in use (another broker running?): %w", cfg.Addr, err)
		case listenErr != nil:
			return nil, fmt.Errorf("EMBEDDED_KAFKA_ADDR: cannot listen on %s: %w", cfg.Addr, err)
		case cfg.DataDir != "":
			return nil, fmt.Errorf("EMBEDDED_KAFKA_DIR: starting broker on %s: %w", cfg.DataDir, err)
		default:
			return nil, fmt.Errorf("embedded kafka: %w", err)
		}
	}
	e := &Embedded{cluster: cluster, addr: cluster.ListenAddrs()[0], unlock: unlock}

	for _, topic := range cfg.Topics {
		if topic == "" {
			continue
		}
		err := cluster.CreateTopic(topic, partitions, nil)
		switch {
		case err == nil:
			logger.Debug("embedded kafka: topic created", "topic", topic, "partitions", partitions)
		case errors.Is(err, kerr.TopicAlreadyExists):
			if n := len(cluster.PartitionInfos(topic)); n != int(partitions) {
				logger.Warn("embedded kafka: topic kept with its existing partition count",
					"topic", topic, "partitions", n, "configured", partitions)
			}
		default:
			e.Close()
			return nil, fmt.Errorf("embedded kafka: create topic %q: %w", topic, err)
		}
	}
	var retention time.Duration // 0: every record kept
	if r := cfg.Retention; r.After > 0 && r.Group != "" && len(r.Topics) > 0 {
		retention = r.After
		if r.Check <= 0 {
			r.Check = DefaultRetentionCheck
		}
		e.stopRetention, e.retentionDone = make(chan struct{}), make(chan struct{})
		rt := &retainer{cluster: cluster, cfg: r, logger: logger}
		go rt.run(e.stopRetention, e.retentionDone)
	}
	logger.Info("embedded kafka broker listening", "addr", e.addr, "data_dir", cfg.DataDir, "topics", strings.Join(cfg.Topics, ","),
		"retention", retention, "retention_group", cfg.Retention.Group)
	return e, nil
}

// Addr returns the address the broker listens on, with the real port when
// port 0 was asked for.
func (e *Embedded) Addr() string { return e.addr }

// Cluster returns the underlying kfake cluster, for fault injection in tests.
// It must not be used after Close.
func (e *Embedded) Cluster() *kfake.Cluster { return e.cluster }

// Close stops the broker and, with a data directory, writes its state to
// disk. Calling it again does nothing.
func (e *Embedded) Close() {
	e.once.Do(func() {
		if e.stopRetention != nil {
			close(e.stopRetention)
			<-e.retentionDone
		}
		e.cluster.Close()
		e.unlock()
	})
}

// lockDataDir takes an exclusive lock on dir so two brokers never write the
// same log; the lock dies with the process, so a crash leaves nothing stale.
func lockDataDir(dir string) (func(), error) {
	path := filepath.Join(dir, "orderd.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("EMBEDDED_KAFKA_DIR: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("EMBEDDED_KAFKA_DIR: %s is used by another running broker: %w", dir, err)
	}
	return func() { f.Close() }, nil
}

// kfakeSlog sends kfake's log lines to slog. kfake's info level narrates
// every request, so it goes to debug with kfake's own debug lines.
type kfakeSlog struct{ l *slog.Logger }

func (k kfakeSlog) Logf(level kfake.LogLevel, format string, args ...any) {
	var sl slog.Level
	switch level {
	case kfake.LogLevelNone:
		return
	case kfake.LogLevelError:
		sl = slog.LevelError
	case kfake.LogLevelWarn:
		sl = slog.LevelWarn
	default:
		sl = slog.LevelDebug
	}
	ctx := context.Background()
	if !k.l.Enabled(ctx, sl) {
		return
	}
	k.l.Log(ctx, sl, "embedded kafka: "+fmt.Sprintf(format, args...))
}
