// Package sqlstoretest opens real, migrated and isolated stores for tests of
// any package: a SQLite file in the test's temporary directory, or a fresh
// PostgreSQL schema in the database named by TEST_DATABASE_URL.
//
// PostgreSQL tests skip when the server cannot be reached, unless the
// environment variable CI is non-empty: then they fail.
package sqlstoretest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/orderd/orderd/internal/sqlstore"
)

// DefaultDatabaseURL is the PostgreSQL used when TEST_DATABASE_URL is unset.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// DatabaseURL returns TEST_DATABASE_URL, or DefaultDatabaseURL when it is unset.
func DatabaseURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultDatabaseURL
}

var (
	probeOnce sync.Once
	probeErr  error
)

// reachable reports, once per process, why PostgreSQL cannot be used (nil
// when it can).
func reachable() error {
	probeOnce.Do(func() {
		db, err := sql.Open("pgx", DatabaseURL())
		if err != nil {
			probeErr = err
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		probeErr = db.PingContext(ctx)
	})
	return probeErr
}

// requirePostgres skips t when PostgreSQL is unreachable, or fails it when
// the environment variable CI is set.
func requirePostgres(t testing.TB) {
	t.Helper()
	if err := reachable(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL at TEST_DATABASE_URL is unreachable and CI is set: %v", err)
		}
		t.Skipf("PostgreSQL at TEST_DATABASE_URL is unreachable (set CI to make this fail): %v", err)
	}
}

// Dialects returns the dialects every store test runs against: "sqlite" and
// "postgres". When PostgreSQL is unreachable and CI is set it fails t at
// once; otherwise Open skips the postgres subtests.
func Dialects(t testing.TB) []string {
	t.Helper()
	if err := reachable(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL at TEST_DATABASE_URL is unreachable and CI is set: %v", err)
		}
		t.Logf("PostgreSQL at TEST_DATABASE_URL is unreachable; postgres subtests will skip: %v", err)
	}
	return []string{sqlstore.DialectSQLite, sqlstore.DialectPostgres}
}

// Open returns a migrated store of dialect ("sqlite" or "postgres") that no
// other test shares, closed and removed when t ends.
func Open(t testing.TB, dialect string) *sqlstore.Store {
	t.Helper()
	return OpenURL(t, URL(t, dialect))
}

// URL returns a database URL of dialect that no other test shares, and
// removes what it names when t ends; the schema is not migrated. Use it to
// open several stores on one database (e.g. two service instances).
func URL(t testing.TB, dialect string) string {
	t.Helper()
	switch dialect {
	case sqlstore.DialectSQLite:
		return "sqlite://" + filepath.Join(t.TempDir(), "orders.db")
	case sqlstore.DialectPostgres:
		requirePostgres(t)
		return freshSchema(t)
	default:
		t.Fatalf("sqlstoretest: unknown dialect %q", dialect)
		return ""
	}
}

// OpenURL opens and migrates a store on url and closes it when t ends.
func OpenURL(t testing.TB, dbURL string) *sqlstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := sqlstore.Open(ctx, dbURL, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("sqlstoretest: open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("sqlstoretest: close: %v", err)
		}
	})
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("sqlstoretest: migrate: %v", err)
	}
	return s
}

// freshSchema creates a schema with a random name, returns DatabaseURL with
// its search_path set to it, and drops it when t ends.
func freshSchema(t testing.TB) string {
	t.Helper()
	var b [8]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])

	u, err := url.Parse(DatabaseURL())
	if err != nil {
		t.Fatalf("sqlstoretest: TEST_DATABASE_URL: %v", err)
	}
	exec := func(stmt string) error {
		db, err := sql.Open("pgx", u.String())
		if err != nil {
			return err
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err = db.ExecContext(ctx, stmt)
		return err
	}
	if err := exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("sqlstoretest: create schema: %v", err)
	}
	// Registered before the stores' cleanups, so it runs after they close.
	t.Cleanup(func() {
		if err := exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
			t.Errorf("sqlstoretest: drop schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
