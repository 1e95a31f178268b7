package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/orderd/orderd/internal/sqlstore"
)

// The stores orderbench measures.
const (
	storeSQLite   = "sqlite"
	storePostgres = "postgres"
)

// defaultPostgresURL is the PostgreSQL used when TEST_DATABASE_URL is unset,
// the same as the tests'.
const defaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// errPostgresUnreachable marks a PostgreSQL that cannot be used, so that
// -store=both can skip it.
var errPostgresUnreachable = errors.New("PostgreSQL unreachable")

// database is a fresh, empty database for one store's runs.
type database struct {
	store string
	url   string // DATABASE_URL for orderd
	drop  func() // removes it; safe to call once the service stopped
	open  func() (*sql.DB, error)
}

// newDatabase creates a fresh database for store: an SQLite file under tmp,
// or a new schema in the PostgreSQL of TEST_DATABASE_URL.
func newDatabase(ctx context.Context, store, tmp string) (*database, error) {
	if store == storeSQLite {
		dir, err := os.MkdirTemp(tmp, "sqlite-")
		if err != nil {
			return nil, fmt.Errorf("sqlite directory: %w", err)
		}
		return databaseAt(store, "sqlite://"+filepath.Join(dir, "orders.db"), func() { _ = os.RemoveAll(dir) }), nil
	}
	return newPostgresSchema(ctx)
}

// databaseAt is the database of store at dbURL (orderd's DATABASE_URL),
// which drop removes.
func databaseAt(store, dbURL string, drop func()) *database {
	open := func() (*sql.DB, error) { return sqlstore.OpenSQL(dbURL) }
	return &database{store: store, url: dbURL, drop: drop, open: open}
}

// postgresURL returns TEST_DATABASE_URL, or defaultPostgresURL when it is
// unset; the server must be on the loopback interface.
func postgresURL() (*url.URL, error) {
	base := os.Getenv("TEST_DATABASE_URL")
	if base == "" {
		base = defaultPostgresURL
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("TEST_DATABASE_URL: %w", err)
	}
	if !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("TEST_DATABASE_URL: host %q is not 127.0.0.1 or localhost; orderbench only talks to this machine", u.Hostname())
	}
	return u, nil
}

// checkPostgres returns an error wrapping errPostgresUnreachable when the
// PostgreSQL of TEST_DATABASE_URL does not answer within 5 s.
func checkPostgres(ctx context.Context) error {
	u, err := postgresURL()
	if err != nil {
		return err
	}
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		return fmt.Errorf("TEST_DATABASE_URL: %w", err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("%w at %s (set TEST_DATABASE_URL): %v", errPostgresUnreachable, u.Redacted(), err)
	}
	return nil
}

// newPostgresSchema creates a schema with a random name in the PostgreSQL
// of TEST_DATABASE_URL and returns a database whose URL has its search_path
// set to it.
func newPostgresSchema(ctx context.Context) (*database, error) {
	u, err := postgresURL()
	if err != nil {
		return nil, err
	}
	base := u.String()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "orderbench_" + hex.EncodeToString(b[:])
	if err := execPostgres(ctx, base, "CREATE SCHEMA "+schema); err != nil {
		return nil, fmt.Errorf("create schema %s: %w", schema, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return databaseAt(storePostgres, u.String(), func() { dropSchema(base, schema) }), nil
}

// execPostgres runs one statement on the database at dbURL.
func execPostgres(ctx context.Context, dbURL, stmt string) error {
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err = db.ExecContext(ctx, stmt)
	return err
}

// dropSchema drops schema, reporting a failure on stderr: it runs on the
// way out, when there is no one else to tell, and even after Ctrl-C.
func dropSchema(base, schema string) {
	if err := execPostgres(context.Background(), base, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
		fmt.Fprintf(os.Stderr, "orderbench: drop schema %s: %v\n", schema, err)
	}
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// orderCounts returns how many orders the database holds, how many of them
// are in status processing, and how many of their items reserved stock.
func (d *database) orderCounts(ctx context.Context) (total, processing, reserved int64, err error) {
	db, err := d.open()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("open %s: %w", d.store, err)
	}
	defer db.Close()
	err = db.QueryRowContext(ctx,
		`SELECT count(*), count(CASE WHEN status = 'processing' THEN 1 END),
			(SELECT count(*) FROM order_items WHERE reserved) FROM orders`).Scan(&total, &processing, &reserved)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("count orders in %s: %w", d.store, err)
	}
	return total, processing, reserved, nil
}

// sampleProducts is how many products the sample OrderCreated events draw
// from, "prod-000" to "prod-099" (events.SampleOrderCreated).
const sampleProducts = 100

// seedStock inserts n stock records in one statement: the sample products
// first, with more available than any run orders, then "catalogue-N"
// products no event names. The service has migrated the database; nothing
// has analyzed the new rows yet, as after a shop loads its catalogue.
func (d *database) seedStock(ctx context.Context, n int) error {
	db, err := d.open()
	if err != nil {
		return fmt.Errorf("open %s: %w", d.store, err)
	}
	defer db.Close()
	const available = 1 << 40
	if d.store == storePostgres {
		_, err = db.ExecContext(ctx, `INSERT INTO stock (product_id, available, updated_at)
			SELECT CASE WHEN g < $2 THEN 'prod-' || lpad(g::text, 3, '0') ELSE 'catalogue-' || g END, $3, now()
			FROM generate_series(0, $1 - 1) AS g`, n, sampleProducts, available)
	} else {
		// The service stores SQLite times as fixed-width RFC 3339 text.
		_, err = db.ExecContext(ctx, `WITH RECURSIVE g (n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n + 1 < ?)
			INSERT INTO stock (product_id, available, updated_at)
			SELECT CASE WHEN n < ? THEN printf('prod-%03d', n) ELSE 'catalogue-' || n END, ?, ? FROM g`,
			n, sampleProducts, available, time.Now().UTC().Format("2006-01-02T15:04:05.000000Z"))
	}
	if err != nil {
		return fmt.Errorf("insert %d stock records into %s: %w", n, d.store, err)
	}
	return nil
}
