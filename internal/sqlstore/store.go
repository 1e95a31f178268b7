// Package sqlstore is the SQL adapter of the order domain: one implementation
// of order.Transactor and order.Tx, plus the reads the HTTP API needs, over
// SQLite (SQLite's C library where cgo is on, else modernc.org/sqlite, pure
// Go: see SQLiteEngine) and PostgreSQL (pgx: its database/sql
// pool, and pgx itself inside write transactions, see inPgTx). Both dialects
// share one schema and, but for how statements reach the database, one code
// path.
//
// SQLite runs in WAL mode with synchronous=FULL: every commit is on disk
// before it returns, so a Kafka offset committed after it can never point
// past an effect that a power loss took back (NORMAL would only survive
// process crashes). Writes go through a pool of one connection and begin with
// BEGIN IMMEDIATE, so writers of this process queue in Go instead of racing
// for SQLite's lock; busy_timeout covers other processes on the same file.
// Reads use a separate pool of read-only snapshot transactions.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/orderd/orderd/internal/fault"
)

// The dialects a Store speaks, as Dialect reports them.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

// Pool sizes and timeouts, chosen for a 2-core machine.
const (
	// postgresMaxConns bounds the PostgreSQL pool: enough for the consumer's
	// partitions and the HTTP API to work at once without queueing on a
	// server that has two cores to serve them.
	postgresMaxConns = 8
	// sqliteReaders bounds the SQLite read pool; WAL lets readers run
	// alongside the single writer.
	sqliteReaders = 4
	// sqliteBusyTimeout is how long SQLite waits for another process's lock.
	sqliteBusyTimeout = 5 * time.Second
	// checkpointEvery is the shortest rest of the background checkpointer
	// between two rounds; it copies the SQLite write-ahead log into the
	// database file after writes. Small rounds often hold the writer less
	// than large ones seldom: at 5,000 events/s, produce → commit p99 was
	// 20.0–24.2 ms in alternating runs with rounds at most every 50 ms
	// against 26.9–40.9 ms with one every 200 ms; 18.6–82.6 ms (median
	// 21.6) over all ten runs of that day (docs/BENCHMARKS.md, item 26).
	checkpointEvery = 50 * time.Millisecond
	// checkpointRest is how long the checkpointer rests after a round, as
	// a multiple of the round's own time, when that is longer than
	// checkpointEvery. While a backlog drains, a round takes 35–92 ms
	// (medians); a round every 50 ms would checkpoint over half the time
	// and slow the writer's own I/O (drains 19,161–19,749 ev/s against
	// 20,005–22,501 with 200 ms). Resting three times as long keeps the
	// checkpointer to about a quarter of the time (drains 20,325–23,234
	// ev/s, item 26).
	checkpointRest = 3
	// walAutoCheckpoint is the WAL size, in pages, at which the writer
	// checkpoints by itself: a backstop for when the background
	// checkpointer falls behind (SQLite's default is 1,000).
	walAutoCheckpoint = 8000
	// connectTimeout bounds one PostgreSQL connection attempt when the URL
	// sets no connect_timeout.
	connectTimeout = 5 * time.Second
)

// Store is the order database. It is safe for concurrent use.
type Store struct {
	dialect string
	// db runs transactions and writes; rdb runs reads. They are the same pool
	// on PostgreSQL and for an in-memory SQLite database.
	db, rdb *sql.DB
	log     *slog.Logger
	now     func() time.Time

	// shared holds statements prepared on db (SQLite), see stmtCache.
	sharedMu sync.Mutex
	shared   map[string]*sql.Stmt

	stopCheckpointer func() // SQLite: see startCheckpointer
	// wrote is signalled (without blocking) after every write to a SQLite
	// database: the checkpointer runs a round only after one, so an idle
	// store makes no call at all.
	wrote chan struct{}
	// rounds counts the checkpointer's rounds, for tests.
	rounds atomic.Int64
	// observeTx, when set (ObserveTransactions), is told of each committed
	// InTx.
	observeTx func(total, commit time.Duration)
	// dbFile is the SQLite database file, open for the checkpointer's syncs.
	// It is closed only after the connections: closing any descriptor of
	// the file drops the process's POSIX locks on it, SQLite's included.
	dbFile *os.File
	// where names the database for the log (see Where).
	where []any
	// pgTimeout bounds each PostgreSQL transaction and read (see bounded).
	pgTimeout time.Duration
}

// pgTimeout is the longest a PostgreSQL transaction or read may take. A
// server that hangs (a lock an operator holds, a frozen network) would
// otherwise stall a partition, or an HTTP request, with nothing logged;
// past it the work fails as transient, is logged and retried, and counts
// toward the circuit breaker. A healthy server takes well under a second
// for the largest batch.
const pgTimeout = 15 * time.Second

// bounded returns ctx bounded by pgTimeout on PostgreSQL. SQLite's
// statements are not cancelled (see stmtCache); its busy timeout bounds
// its waits for a lock.
func (s *Store) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.dialect != DialectPostgres {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.pgTimeout)
}

// overdue says so when err is bounded's deadline rather than ctx's own end.
func (s *Store) overdue(ctx context.Context, err error) error {
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return fault.AsTransient(fmt.Errorf("PostgreSQL did not answer within %s: %w", s.pgTimeout, err))
	}
	return err
}

// Open prepares a Store for url: sqlite://PATH (sqlite://orders.db,
// sqlite:///abs/path, sqlite://:memory:) or postgres://… / postgresql://…
// (any pgx connection URL; unknown parameters such as search_path are sent to
// the server as settings). A PostgreSQL store connects lazily: Open checks the
// URL and Ping or the first query reaches the server. A SQLite store opens its
// file at once. Call Migrate before use and Close when done.
func Open(ctx context.Context, url string, logger *slog.Logger) (*Store, error) {
	return open(ctx, url, logger, sqliteBusyTimeout)
}

// open is Open with SQLite's busy timeout as a parameter, for tests.
func open(ctx context.Context, url string, logger *slog.Logger, busyTimeout time.Duration) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{log: logger, now: time.Now, shared: make(map[string]*sql.Stmt), pgTimeout: pgTimeout}
	var err error
	switch DialectOf(url) {
	case DialectSQLite:
		err = s.openSQLite(ctx, strings.TrimPrefix(url, "sqlite://"), busyTimeout)
	case DialectPostgres:
		err = s.openPostgres(url)
	default:
		return nil, unsupportedScheme(url)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// OpenSQL opens the database a DATABASE_URL names as a plain *sql.DB, with
// the driver this build's store uses (see SQLiteEngine), for tools and tests
// that inspect it beside a running service. It neither migrates nor checks
// the database; a SQLite connection waits for the writer's lock as the
// store's readers do.
func OpenSQL(url string) (*sql.DB, error) {
	switch DialectOf(url) {
	case DialectSQLite:
		return sql.Open(sqliteDriver, sqliteDSN(strings.TrimPrefix(url, "sqlite://"), false, sqliteBusyTimeout.Milliseconds()))
	case DialectPostgres:
		return sql.Open("pgx", url)
	}
	return nil, unsupportedScheme(url)
}

// DialectOf reports which database a DATABASE_URL names, by its scheme:
// DialectSQLite, DialectPostgres, or "" for a scheme Open refuses.
func DialectOf(url string) string {
	switch {
	case strings.HasPrefix(url, "sqlite://"):
		return DialectSQLite
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		return DialectPostgres
	}
	return ""
}

// unsupportedScheme is the error for a DATABASE_URL whose scheme is neither
// SQLite's nor PostgreSQL's.
func unsupportedScheme(url string) error {
	return fmt.Errorf("database url: unsupported scheme in %q: want sqlite://PATH or postgres://…", redactedScheme(url))
}

// redactedScheme returns only the scheme of a URL, so that an unsupported URL
// with a password in it is never echoed.
func redactedScheme(url string) string {
	if i := strings.Index(url, "://"); i >= 0 {
		return url[:i+3] + "…"
	}
	if len(url) > 16 {
		return url[:16] + "…"
	}
	return url
}

func (s *Store) openSQLite(ctx context.Context, path string, busyTimeout time.Duration) error {
	s.dialect = DialectSQLite
	if path == "" {
		return errors.New("database url: sqlite:// needs a path, e.g. sqlite://orders.db")
	}
	if strings.ContainsAny(path, "?#") {
		return fmt.Errorf("database url: sqlite path %q must not contain '?' or '#'", path)
	}
	busy := busyTimeout.Milliseconds()
	if path == ":memory:" {
		// Every connection to :memory: is its own database, so one
		// connection serves reads and writes and is never closed while
		// the Store is open.
		db, err := sql.Open(sqliteDriver, sqliteDSN(path, true, busy))
		if err != nil {
			return fmt.Errorf("open sqlite :memory:: %w", err)
		}
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
		s.db, s.rdb = db, db
	} else {
		w, err := sql.Open(sqliteDriver, sqliteDSN(path, true, busy))
		if err != nil {
			return fmt.Errorf("open sqlite %s: %w", path, err)
		}
		w.SetMaxOpenConns(1)
		w.SetMaxIdleConns(1)
		r, err := sql.Open(sqliteDriver, sqliteDSN(path, false, busy))
		if err != nil {
			_ = w.Close()
			return fmt.Errorf("open sqlite %s: %w", path, err)
		}
		r.SetMaxOpenConns(sqliteReaders)
		r.SetMaxIdleConns(sqliteReaders)
		r.SetConnMaxIdleTime(5 * time.Minute)
		s.db, s.rdb = w, r
	}
	// Connect the writer now: it switches the file to WAL before any reader
	// opens it, and a bad path fails here rather than on the first event.
	if err := s.db.PingContext(ctx); err != nil {
		_ = s.Close()
		return classify(fmt.Errorf("open sqlite %s: %w", path, err))
	}
	if s.rdb != s.db {
		if err := s.startCheckpointer(path); err != nil {
			_ = s.Close()
			return err
		}
	}
	s.where = []any{"dialect", s.dialect, "path", path, "engine", SQLiteEngine}
	return nil
}

// startCheckpointer runs SQLite's WAL checkpoints in the background, on a
// connection of the read pool, instead of in the writer's commits: copying
// the log into the database file (page writes and an fsync) took 7% of the
// service's CPU on the one write path that every event waits for. PASSIVE
// checkpoints never block the writer or readers; they copy what no reader
// still needs.
//
// The log itself starts over only when a write transaction begins with all
// of it copied and the database file synced, which a checkpoint beside a
// steady stream of commits never achieves: commits land while it copies, so
// it ends incomplete, and SQLite syncs the database file only after a
// complete one. The log then grew to walAutoCheckpoint pages, and the writer
// checkpointed by itself: at 5,000 events/s, a commit of 13–21 ms every
// 400 ms or so, the tail of the latency. So each round, while something is
// being written, has two more steps:
//
//   - an fsync of the database file, still beside the writer, for the pages
//     the checkpoint copied;
//   - a checkpoint on the write connection, between two write transactions,
//     which copies only what was committed meanwhile and syncs that; the
//     next write transaction starts the log over. Alone it took 0.9 ms
//     (p50), against 6.7 ms with the previous step's pages still to write;
//     under orderbench's 5,000 events/s it held the writer 3.5–4 ms.
func (s *Store) startCheckpointer(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0) // writable: Windows syncs only such handles
	if err != nil {
		return fmt.Errorf("open sqlite %s for the checkpointer: %w", path, err)
	}
	s.dbFile = f
	s.wrote = make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		pace := time.NewTimer(0)
		defer pace.Stop()
		var last walState
		for {
			// A round after writes, then a rest (see checkpointRest).
			select {
			case <-ctx.Done():
				return
			case <-s.wrote:
			}
			select {
			case <-ctx.Done():
				return
			case <-pace.C:
			}
			s.rounds.Add(1)
			start := time.Now()
			err := s.checkpointRound(ctx, &last)
			pace.Reset(restAfter(time.Since(start)))
			if err != nil && ctx.Err() == nil {
				s.log.Debug("background checkpoint failed; the writer checkpoints by itself past its limit", "error", err)
			}
		}
	}()
	s.stopCheckpointer = func() {
		cancel()
		<-done
	}
	return nil
}

// restAfter is the checkpointer's rest after a round that took d.
func restAfter(d time.Duration) time.Duration {
	return max(checkpointEvery, checkpointRest*d)
}

// noteWrite tells the checkpointer (SQLite) that something was committed.
func (s *Store) noteWrite() {
	select {
	case s.wrote <- struct{}{}:
	default: // a round is due already, or there is no checkpointer
	}
}

// checkpointRound is one round of startCheckpointer; last is the state the
// previous round left.
func (s *Store) checkpointRound(ctx context.Context, last *walState) error {
	st, err := checkpoint(ctx, s.rdb)
	if err != nil {
		return err
	}
	if st.busy != 0 || st == *last {
		return nil // another checkpoint is running, or nothing was written
	}
	if err := s.dbFile.Sync(); err != nil {
		return fmt.Errorf("sync the database file: %w", err)
	}
	*last, err = checkpoint(ctx, s.db)
	return err
}

// walState is what PRAGMA wal_checkpoint reports: whether it was blocked,
// the pages in the log and how many of them are copied.
type walState struct{ busy, log, copied int }

// checkpoint runs a PASSIVE checkpoint on a connection of db.
func checkpoint(ctx context.Context, db *sql.DB) (walState, error) {
	var st walState
	err := db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&st.busy, &st.log, &st.copied)
	return st, err
}

func (s *Store) openPostgres(url string) error {
	s.dialect = DialectPostgres
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// pgx redacts the password in its parse errors.
		return fmt.Errorf("database url: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = connectTimeout
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(postgresMaxConns)
	db.SetMaxIdleConns(postgresMaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	db.SetConnMaxLifetime(30 * time.Minute)
	s.db, s.rdb = db, db
	s.where = []any{"dialect", s.dialect, "host", cfg.Host, "port", cfg.Port, "database", cfg.Database}
	return nil
}

// Where returns the log attributes that name the database: its dialect, and
// its path or server and name (never a password). The caller logs them once
// the database answered: a PostgreSQL store connects only then (see Open).
func (s *Store) Where() []any { return s.where }

// Dialect reports which database the store talks to: "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect }

// Ping checks that the database answers; a failure to reach it is transient.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.PingContext(ctx); err != nil {
		return classify(fmt.Errorf("ping %s: %w", s.dialect, err))
	}
	return nil
}

// Close closes the store's connections. It is safe to call more than once.
func (s *Store) Close() error {
	if s.stopCheckpointer != nil {
		s.stopCheckpointer()
	}
	s.sharedMu.Lock()
	for q, st := range s.shared {
		_ = st.Close()
		delete(s.shared, q)
	}
	s.sharedMu.Unlock()
	err := s.db.Close()
	if s.rdb != s.db {
		err = errors.Join(err, s.rdb.Close())
	}
	if s.dbFile != nil {
		err = errors.Join(err, s.dbFile.Close())
		s.dbFile = nil
	}
	return err
}
