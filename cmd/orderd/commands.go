package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderd/orderd/internal/app"
	"github.com/orderd/orderd/internal/config"
	"github.com/orderd/orderd/internal/events"
	"github.com/orderd/orderd/internal/kafka"
	"github.com/orderd/orderd/internal/logging"
	"github.com/orderd/orderd/internal/sqlstore"
)

// version reports the module version or VCS revision the binary was built from.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v
}

// flags parses a subcommand's flags; --help prints its usage to stdout and
// returns errHelp, a bad flag prints the error and the usage to stderr.
func flags(name, summary string, args []string, stdout, stderr io.Writer, define func(*flag.FlagSet)) error {
	fs := flag.NewFlagSet("orderd "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if define != nil {
		define(fs)
	}
	usage := func(w io.Writer) {
		fs.SetOutput(w) // PrintDefaults writes to the output
		fmt.Fprintf(w, "Usage: orderd %s [flags]\n\n%s\n", name, summary)
		var n int
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(w, "\nFlags:")
			fs.PrintDefaults()
		}
		fmt.Fprintln(w, "\nConfiguration comes from the environment and .env; see .env.example.")
	}
	// Parse calls Usage for --help as for a bad flag, both on its output:
	// the usage is printed here instead, once, where each case wants it.
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return errHelp
		}
		usage(stderr) // after the error Parse printed
		return &usageError{err}
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Errorf("orderd %s: unexpected argument %q", name, fs.Arg(0))}
	}
	return nil
}

// setup loads the configuration and builds the logger every command uses.
func setup(getenv func(string) (string, bool), stderr io.Writer) (config.Config, *slog.Logger, func(), error) {
	cfg, err := config.LoadLookup(getenv, ".env")
	if err != nil {
		return config.Config{}, nil, nil, &usageError{fmt.Errorf("configuration: %w", err)}
	}
	color := false
	if f, ok := stderr.(*os.File); ok {
		color = isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
	}
	logger, closer, err := logging.New(logging.Options{
		Level: cfg.LogLevel, Format: cfg.LogFormat, File: cfg.LogFile, Stderr: stderr, Color: color,
	})
	if err != nil {
		return config.Config{}, nil, nil, &usageError{fmt.Errorf("LOG_FILE: %w", err)}
	}
	return cfg, logger, func() { _ = closer.Close() }, nil
}

func serve(ctx context.Context, args []string, getenv func(string) (string, bool), stdout, stderr io.Writer) error {
	var cpuProfile string
	if err := flags("serve", "Run the service: HTTP API, Kafka consumer and, with KAFKA_BROKER_URL=embedded\n(the default), the embedded broker.", args, stdout, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile (go tool pprof) to this file until the service stops")
	}); err != nil {
		return err
	}
	cfg, logger, done, err := setup(getenv, stderr)
	if err != nil {
		return err
	}
	defer done()
	if cpuProfile != "" {
		stop, err := startCPUProfile(cpuProfile)
		if err != nil {
			return &usageError{fmt.Errorf("-cpuprofile: %w", err)}
		}
		defer stop()
	}
	logger.Info("starting "+cfg.AppName, "version", version())
	logger.Debug("configuration", "config", cfg)
	tuneGC(cfg.DatabaseURL)
	a, err := app.New(ctx, cfg, logger, app.Options{Version: version()})
	if err != nil && ctx.Err() != nil {
		// Told to stop (SIGINT, SIGTERM) while still starting, e.g. while
		// waiting for the database: a stop as asked, not a failure.
		logger.Info("stopped during start-up", "cause", err)
		return nil
	}
	if err != nil {
		logger.Error("start-up failed", "err", err)
		return err
	}
	// Start-up (migrations, the embedded broker, the OpenAPI document)
	// leaves garbage that GOGC=400 would keep for a long while on an idle
	// instance: collect it and give the memory back now.
	debug.FreeOSMemory()
	go trimWhenIdle(ctx)
	return a.Run(ctx)
}

// startCPUProfile profiles the process into path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

// memoryLimit is the Go runtime's soft memory limit for serve unless
// GOMEMLIMIT sets another: the garbage collector works harder as the heap
// nears it instead of letting it double, which keeps a busy instance under
// 100 MB. It is soft: the service never fails for lack of it. It is the Go
// heap's share of that budget, so it depends on the database: SQLite's page
// caches and write-ahead log index live in the process, outside the Go heap,
// PostgreSQL's do not. orderbench's 200,000-event drain, three runs each:
// SQLite at 56 MiB peaked at 92.0–92.7 MiB RSS, at 68 MiB at 98.8–99.7 MiB;
// PostgreSQL at 56 MiB drained 17.9k–19.6k ev/s and peaked at 86.8–93.0 MiB,
// at 64 MiB 21.3k–23.4k ev/s and 85.3–86.8 MiB (the collector ran less
// often); 68 MiB drained as fast but one of five runs peaked at 95.2 MiB.
func memoryLimit(databaseURL string) int64 {
	if sqlstore.DialectOf(databaseURL) == sqlstore.DialectPostgres {
		return 64 << 20
	}
	return 56 << 20
}

// defaultGCPercent is serve's GOGC unless GOGC sets another. Decoding and
// batching allocate much short-lived memory: with Go's default of 100 the
// collector ran several times as often as it needs to, for 14% of the CPU
// in BenchmarkDrain/postgres. The memory limit still bounds the heap.
const defaultGCPercent = 400

func tuneGC(databaseURL string) {
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set { // the runtime reads it itself
		debug.SetMemoryLimit(memoryLimit(databaseURL))
	}
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
}

func migrate(ctx context.Context, args []string, getenv func(string) (string, bool), stdout, stderr io.Writer) error {
	if err := flags("migrate", "Apply the database schema to DATABASE_URL and exit.", args, stdout, stderr, nil); err != nil {
		return err
	}
	cfg, logger, done, err := setup(getenv, stderr)
	if err != nil {
		return err
	}
	defer done()
	st, err := sqlstore.Open(ctx, cfg.DatabaseURL, logger)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer st.Close()
	n, err := st.MigrateCount(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	switch n {
	case 0:
		fmt.Fprintf(stdout, "database schema is up to date (%s)\n", st.Dialect())
	case 1:
		fmt.Fprintf(stdout, "applied 1 migration (%s); database schema is up to date\n", st.Dialect())
	default:
		fmt.Fprintf(stdout, "applied %d migrations (%s); database schema is up to date\n", n, st.Dialect())
	}
	return nil
}

func broker(ctx context.Context, args []string, getenv func(string) (string, bool), stdout, stderr io.Writer) error {
	if err := flags("broker", "Run only the embedded Kafka-protocol broker on EMBEDDED_KAFKA_ADDR, with the\ntopics of KAFKA_TOPIC and KAFKA_DLQ_TOPIC created (KAFKA_PARTITIONS each) and its\nlog under EMBEDDED_KAFKA_DIR. Point service instances at it with\nKAFKA_BROKER_URL=<addr>.", args, stdout, stderr, nil); err != nil {
		return err
	}
	cfg, logger, done, err := setup(getenv, stderr)
	if err != nil {
		return err
	}
	defer done()
	ecfg := cfg.EmbeddedConfig()
	ecfg.Logger = logger.With("component", "embedded-kafka")
	b, err := kafka.StartEmbedded(ecfg)
	if err != nil {
		return fmt.Errorf("embedded broker (EMBEDDED_KAFKA_ADDR=%s): %w", cfg.EmbeddedKafkaAddr, err)
	}
	defer b.Close()
	fmt.Fprintln(stdout, b.Addr())
	<-ctx.Done()
	logger.Info("embedded Kafka broker stopping")
	return nil
}

func produce(ctx context.Context, args []string, getenv func(string) (string, bool), stdin io.Reader, stdout, stderr io.Writer) error {
	var (
		file   string
		sample int
		rate   int
		topic  string
		runID  string
	)
	err := flags("produce", "Publish events to KAFKA_BROKER_URL (the first KAFKA_TOPIC unless --topic), keyed by\ndata.orderId: JSON lines from --file or stdin (one envelope per line), or --sample N\ngenerated valid OrderCreated events. With KAFKA_BROKER_URL=embedded it publishes to\nEMBEDDED_KAFKA_ADDR (a running orderd or orderd broker).", args, stdout, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&file, "file", "", "read JSON lines from this file instead of stdin")
		fs.IntVar(&sample, "sample", 0, "publish N generated valid OrderCreated events instead of reading input")
		fs.IntVar(&rate, "rate", 0, "events per second (0 = as fast as the broker takes them)")
		fs.StringVar(&topic, "topic", "", "topic to publish to (default: the first of KAFKA_TOPIC)")
		fs.StringVar(&runID, "run", "", "prefix of generated order ids (default: sample-<unix time>)")
	})
	if err != nil {
		return err
	}
	if sample < 0 || rate < 0 {
		return &usageError{errors.New("orderd produce: --sample and --rate must not be negative")}
	}
	if sample > 0 && file != "" {
		return &usageError{errors.New("orderd produce: use --sample or --file, not both")}
	}
	cfg, logger, done, err := setup(getenv, stderr)
	if err != nil {
		return err
	}
	defer done()
	if topic == "" {
		topic = cfg.KafkaTopics[0]
	}
	p, err := kafka.NewProducer(cfg.KafkaConfig(), logger)
	if err != nil {
		return err
	}
	defer p.Close()

	var recs iter.Seq[*kgo.Record]
	var lineErr error
	if sample > 0 {
		if runID == "" {
			runID = fmt.Sprintf("sample-%d", time.Now().Unix())
		}
		recs = sampleRecords(topic, runID, sample)
	} else {
		in := stdin
		if file != "" {
			f, err := os.Open(file)
			if err != nil {
				return &usageError{fmt.Errorf("orderd produce: %w", err)}
			}
			defer f.Close()
			in = f
		}
		recs = lineRecords(topic, in, &lineErr)
	}
	start := time.Now()
	n, err := p.PublishAll(ctx, paced(ctx, recs, rate))
	if err == nil {
		err = lineErr
	}
	elapsed := time.Since(start)
	fmt.Fprintf(stdout, "published %d events to %s in %s (%.0f events/s)\n", n, topic, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
	return err
}

// sampleRecords yields n generated OrderCreated records.
func sampleRecords(topic, runID string, n int) iter.Seq[*kgo.Record] {
	return func(yield func(*kgo.Record) bool) {
		rng := rand.New(rand.NewPCG(uint64(len(runID)), uint64(time.Now().UnixNano())))
		for i := range n {
			key, value := events.SampleOrderCreated(runID, i, rng)
			if !yield(&kgo.Record{Topic: topic, Key: key, Value: value}) {
				return
			}
		}
	}
}

// lineRecords yields one record per non-empty input line, keyed by the
// event's data.orderId when the line is an envelope. Lines are published as
// they are, even when malformed: the consumer's checks and DLQ are the place
// where bad events are judged (and this is how to test them).
func lineRecords(topic string, in io.Reader, errp *error) iter.Seq[*kgo.Record] {
	return func(yield func(*kgo.Record) bool) {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64*1024), 16<<20)
		for sc.Scan() {
			line := sc.Bytes()
			if len(strings.TrimSpace(string(line))) == 0 {
				continue
			}
			value := append([]byte(nil), line...)
			var key []byte
			if ev, err := events.Decode(value); err == nil && ev.OrderID() != "" {
				key = []byte(ev.OrderID())
			}
			if !yield(&kgo.Record{Topic: topic, Key: key, Value: value}) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			*errp = fmt.Errorf("read input: %w", err)
		}
	}
}

// paced limits recs to rate per second (0 = unlimited).
func paced(ctx context.Context, recs iter.Seq[*kgo.Record], rate int) iter.Seq[*kgo.Record] {
	if rate <= 0 {
		return recs
	}
	interval := time.Second / time.Duration(rate)
	return func(yield func(*kgo.Record) bool) {
		next := time.Now()
		for r := range recs {
			if d := time.Until(next); d > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(d):
				}
			}
			next = next.Add(interval)
			if !yield(r) {
				return
			}
		}
	}
}
