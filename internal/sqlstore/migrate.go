package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"hash/fnv"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// migrations is the schema, one goose SQL file set for both dialects; the
// Go migrations (byteOrderKeys, itemsReferenceOrders, inboxByOrder,
// itemsInOrders, inboxInOrders) are added in migrator.
//
//go:embed migrations/*.sql
var migrations embed.FS

// Migrate brings the schema up to date; running it again changes nothing.
// On PostgreSQL concurrent migrators (several instances starting at once)
// take turns on an advisory lock scoped to the current schema.
func (s *Store) Migrate(ctx context.Context) error {
	_, err := s.MigrateCount(ctx)
	return err
}

// MigrateCount is Migrate, and reports how many migrations it applied: 0
// when the schema was up to date.
func (s *Store) MigrateCount(ctx context.Context) (applied int, err error) {
	p, err := s.migrator(ctx)
	if err != nil {
		return 0, err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return 0, classify(fmt.Errorf("migrate: %w", err))
	}
	if len(results) > 0 {
		s.noteWrite()
	}
	return len(results), nil
}

// migrator is goose's provider for the store's dialect and schema.
func (s *Store) migrator(ctx context.Context) (*goose.Provider, error) {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	opts := []goose.ProviderOption{
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(s.log),
		goose.WithGoMigrations(s.byteOrderKeys(), s.itemsReferenceOrders(), s.inboxByOrder(), s.itemsInOrders(), s.inboxInOrders()),
	}
	dialect := goose.DialectSQLite3
	if s.dialect == DialectPostgres {
		dialect = goose.DialectPostgres
		id, err := s.lockID(ctx)
		if err != nil {
			return nil, err
		}
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(id), lock.WithLockTimeout(1, 300))
		if err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, s.db, fsys, opts...)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return p, nil
}

// lockID derives the migration lock from the schema the tables go to, so
// that migrations of different schemas in one database (parallel tests) do
// not wait for each other.
func (s *Store) lockID(ctx context.Context) (int64, error) {
	var schema sql.NullString
	if err := s.db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return 0, classify(fmt.Errorf("migrate: find current schema: %w", err))
	}
	if !schema.Valid {
		return 0, fmt.Errorf("migrate: no schema of the search_path exists")
	}
	h := fnv.New64a()
	h.Write([]byte("orderd migrations " + schema.String))
	return int64(h.Sum64() >> 1), nil
}

// onPostgres is a step of a Go migration that runs statements in order on
// PostgreSQL and nothing on SQLite, where such a migration only records its
// version.
func (s *Store) onPostgres(what string, statements ...string) *goose.GoFunc {
	return s.byDialect(what, nil, statements)
}

// byDialect is a step of a Go migration that runs the statements of the
// store's dialect in order.
func (s *Store) byDialect(what string, sqlite, postgres []string) *goose.GoFunc {
	return &goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error {
		statements := sqlite
		if s.dialect == DialectPostgres {
			statements = postgres
		}
		for _, q := range statements {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		return nil
	}}
}
