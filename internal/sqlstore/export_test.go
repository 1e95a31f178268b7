package sqlstore

import (
	"context"
	"database/sql"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// MigrateDownTo undoes migrations down to version, for the tests of the
// down migrations; the service itself only migrates up.
func (s *Store) MigrateDownTo(ctx context.Context, version int64) error {
	p, err := s.migrator(ctx)
	if err != nil {
		return err
	}
	_, err = p.DownTo(ctx, version)
	return err
}

// Collation returns the collation PostgreSQL reports for table.column in
// the store's schema; "" is the database's default.
func (s *Store) Collation(ctx context.Context, table, column string) (string, error) {
	var c sql.NullString
	err := s.db.QueryRowContext(ctx, `SELECT collation_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2`, table, column).Scan(&c)
	return c.String, err
}

// DB is the store's write pool, for tests of the schema itself.
func (s *Store) DB() *sql.DB { return s.db }

// CheckpointRounds is how many rounds the SQLite checkpointer has run.
func (s *Store) CheckpointRounds() int64 { return s.rounds.Load() }

// RestAfter is the checkpointer's rest after a round that took d.
var RestAfter = restAfter

// The preload's reads by order_items.order_id, for plan tests.
const (
	PreloadItemsPG = preloadItemsPG
	PreloadStockPG = preloadStockPG
)

// ExplainInTx returns PostgreSQL's plan for query in a transaction begun as
// InTx begins its transactions (beginPG), then rolls it back.
func (s *Store) ExplainInTx(ctx context.Context, query string, args ...any) (string, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	var plan strings.Builder
	err = conn.Raw(func(dc any) error {
		p := &pgTx{conn: dc.(*stdlib.Conn).Conn()}
		defer p.rollback(ctx)
		b := p.newBatch()
		b.Queue("EXPLAIN "+query, args...).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var line string
				if err := rows.Scan(&line); err != nil {
					return err
				}
				plan.WriteString(line + "\n")
			}
			return rows.Err()
		})
		return p.send(ctx, b)
	})
	return plan.String(), err
}
