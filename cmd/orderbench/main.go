// Command orderbench measures the real orderd binary and prints figures:
// time to ready and idle memory, throughput and peak memory while draining
// a preloaded backlog, commit latency at a steady produce rate, and the
// throughput of a bare franz-go consumer on the same backlog as a ceiling.
//
// It builds ./cmd/orderd from the module it is run in (the static release
// build, CGO_ENABLED=0, unless -build asks for another), starts `orderd
// broker` (the embedded Kafka-protocol broker) and `orderd serve` as
// subprocesses on free 127.0.0.1 ports, and gives every store (SQLite,
// PostgreSQL) a fresh database, fresh topics and fresh consumer groups.
// Everything it starts is stopped on every exit path; -timeout bounds the
// whole run.
//
//	go run ./cmd/orderbench                      # both stores, defaults
//	go run ./cmd/orderbench -store sqlite -events 20000 -latency-duration 5s
//	go run ./cmd/orderbench -markdown            # also a table for docs/BENCHMARKS.md
//	go run ./cmd/orderbench -store postgres -timeline 1s  # the latency phase second by second
package main

import (
	"context"
	"debug/buildinfo"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// options are the command's flags.
type options struct {
	stores          []string
	events          int
	partitions      int
	rate            int
	latencyDuration time.Duration
	timeout         time.Duration
	markdown        bool
	cpuProfile      string
	build           string        // which build of orderd: buildStatic, buildCgo or buildCgoStatic
	stock           int           // stock records inserted before the drain (seedStock)
	timeline        time.Duration // width of the latency phase's slices printed; 0: none
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "orderbench:", err)
		os.Exit(1)
	}
}

// parseFlags reads args into options.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	var stores string
	fs := flag.NewFlagSet("orderbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&stores, "store", "both", "database to measure: sqlite, postgres or both")
	fs.IntVar(&o.events, "events", 200000, "OrderCreated events preloaded for the throughput phase")
	fs.IntVar(&o.partitions, "partitions", 6, "partitions of the input topic")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write the CPU profile of each store's throughput and latency service to `PREFIX`-STORE.prof")
	fs.IntVar(&o.rate, "rate", 5000, "events per second produced in the latency phase")
	fs.DurationVar(&o.latencyDuration, "latency-duration", 20*time.Second, "how long the latency phase produces")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Minute, "bound on the whole run")
	fs.IntVar(&o.stock, "stock", 0, "stock records inserted into the fresh database before the preload: the `N` of a catalogue, the sample events' 100 products first (with stock enough for every order), the rest never ordered; 0: none, so no order reserves stock")
	fs.DurationVar(&o.timeline, "timeline", 0, "also print the service's latency percentiles for each `SLICE` of the latency phase (by produce time), e.g. 1s: whether the tail is spread or comes in bursts; 0: not printed")
	fs.BoolVar(&o.markdown, "markdown", false, "also print a markdown table of the figures")
	fs.StringVar(&o.build, "build", buildStatic, "which build of orderd to measure: "+buildStatic+" (CGO_ENABLED=0, the README's release build: SQLite translated to Go), "+buildCgo+" (the toolchain's cgo default, as `go run` builds where a C compiler is installed: SQLite's C library, the C library linked dynamically) or "+buildCgoStatic+" (SQLite's C library in a static executable, the README's release build with a C compiler)")
	cgo := fs.Bool("cgo", false, "the same as -build "+buildCgo)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: go run ./cmd/orderbench [flags]\n\nMeasures the orderd binary built from this module against the embedded broker.\nPostgreSQL: TEST_DATABASE_URL (default "+defaultPostgresURL+").\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *cgo {
		if o.build != buildStatic && o.build != buildCgo {
			return o, fmt.Errorf("-cgo is -build %s: it cannot go with -build %s", buildCgo, o.build)
		}
		o.build = buildCgo
	}
	if _, ok := builds[o.build]; !ok {
		return o, fmt.Errorf("-build %q: want %s, %s or %s", o.build, buildStatic, buildCgo, buildCgoStatic)
	}
	switch stores {
	case "both":
		o.stores = []string{storeSQLite, storePostgres}
	case storeSQLite, storePostgres:
		o.stores = []string{stores}
	default:
		return o, fmt.Errorf("-store %q: want sqlite, postgres or both", stores)
	}
	if o.events < 1 || o.partitions < 1 || o.rate < 1 || o.latencyDuration <= 0 || o.timeout <= 0 {
		return o, errors.New("-events, -partitions, -rate, -latency-duration and -timeout must be positive")
	}
	if o.timeline < 0 {
		return o, errors.New("-timeline must not be negative")
	}
	if o.stock < 0 {
		return o, errors.New("-stock must not be negative")
	}
	return o, nil
}

// run builds orderd, starts the broker, measures each store and prints the
// figures to stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.timeout)
	defer cancel()

	stores, err := reachableStores(ctx, stdout, opts.stores)
	if err != nil {
		return err
	}

	tmp, err := os.MkdirTemp("", "orderbench-")
	if err != nil {
		return fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)

	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "building orderd from %s\n", root)
	bin, err := buildOrderd(ctx, root, tmp, opts.build)
	if err != nil {
		return err
	}
	if err := printEnvironment(ctx, stdout, args, root, bin); err != nil {
		return err
	}

	if err := embeddedDefaults(ctx, stdout, bin, tmp); err != nil {
		return fmt.Errorf("embedded defaults: %w", err)
	}
	b, err := startBroker(ctx, bin, tmp, opts.partitions)
	if err != nil {
		return err
	}
	defer b.kill()
	fmt.Fprintf(stdout, "broker: orderd broker on %s\n", b.addr)

	var results []result
	for _, store := range stores {
		db, err := newDatabase(ctx, store, tmp)
		if err != nil {
			return err
		}
		res, err := benchStore(ctx, stdout, bench{opts: opts, bin: bin, tmp: tmp, broker: b.addr, db: db})
		db.drop()
		if err != nil {
			return fmt.Errorf("%s: %w", store, err)
		}
		printResult(stdout, res)
		results = append(results, res)
	}
	if err := b.terminate(10 * time.Second); err != nil {
		return err
	}
	if opts.markdown && len(results) > 0 {
		printMarkdown(stdout, opts, results)
	}
	return nil
}

// reachableStores returns the stores to measure: all of them, or without
// PostgreSQL when it is unreachable and not the only one asked for.
func reachableStores(ctx context.Context, w io.Writer, stores []string) ([]string, error) {
	if !slices.Contains(stores, storePostgres) {
		return stores, nil
	}
	err := checkPostgres(ctx)
	if errors.Is(err, errPostgresUnreachable) && len(stores) > 1 {
		fmt.Fprintf(w, "postgres: skipped: %v\n", err)
		return slices.DeleteFunc(slices.Clone(stores), func(s string) bool { return s == storePostgres }), nil
	}
	return stores, err
}

// printEnvironment prints what the figures depend on: the command line,
// the Go toolchain, the CPUs and the orderd build with the checkout's
// revision and whether it links the C library, as the executable records.
func printEnvironment(ctx context.Context, w io.Writer, args []string, root, bin string) error {
	goVersion, err := output(ctx, "go", "version")
	if err != nil {
		return err
	}
	orderdVersion, err := output(ctx, bin, "version")
	if err != nil {
		return err
	}
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = shellQuote(a)
	}
	fmt.Fprintf(w, "command: %s\n", strings.TrimSpace("go run ./cmd/orderbench "+strings.Join(quoted, " ")))
	fmt.Fprintf(w, "go: %s\n", goVersion)
	fmt.Fprintf(w, "cpu: %d × %s\n", runtime.NumCPU(), cpuModel())
	revision, err := output(ctx, "git", "-C", root, "describe", "--always", "--dirty")
	if err != nil {
		revision = "unknown revision (" + err.Error() + ")"
	}
	version, engine, _ := strings.Cut(orderdVersion, "\n")
	fmt.Fprintf(w, "orderd: %s, checkout %s\n", version, revision)
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return fmt.Errorf("build settings of %s: %w", bin, err)
	}
	cgo := "not recorded"
	for _, st := range info.Settings {
		if st.Key == "CGO_ENABLED" {
			cgo = st.Value
		}
	}
	build := "CGO_ENABLED=" + cgo
	switch linked, err := staticallyLinked(bin); {
	case err != nil:
		return err
	case cgo == "0":
		build += " (static, the README's release build)"
	case linked:
		build += " (static, with SQLite's C library: the README's release build with a C compiler)"
	default:
		build += " (links the C library, as go run does where a C compiler is installed)"
	}
	fmt.Fprintf(w, "build: %s\n", build)
	fmt.Fprintf(w, "%s\n", engine)
	fmt.Fprintf(w, "date: %s\n", time.Now().UTC().Format(time.RFC3339))
	return nil
}

// shellQuote quotes a for a POSIX shell when it needs it.
func shellQuote(a string) string {
	if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}();&|<>~#!") {
		return a
	}
	return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
}

// cpuModel returns the CPU model name from /proc/cpuinfo, or "unknown CPU".
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
