package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/orderd/orderd/internal/order"
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

// InboxTable is the inbox's table (see inboxInOrders).
func (s *Store) InboxTable() string { return s.inboxTable() }

const ProcessedEventQuery = processedEventQuery

// CheckpointRounds is how many rounds the SQLite checkpointer has run.
func (s *Store) CheckpointRounds() int64 { return s.rounds.Load() }

// RestAfter is the checkpointer's rest after a round that took d.
var RestAfter = restAfter

// The preload's reads by order_items.order_id, for plan tests.
const (
	PreloadItemsPG = preloadItemsPG
	PreloadStockPG = preloadStockPG
)

// ExplainInTx returns the plan for query as the first statement of an InTx
// transaction, so in the round trip that begins it (beginPG). With analyze
// the query runs, and the plan says which of its parts never did.
func (s *Store) ExplainInTx(ctx context.Context, analyze bool, query string, args ...any) (string, error) {
	explain := "EXPLAIN "
	if analyze {
		explain = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) "
	}
	var plan strings.Builder
	err := s.InTx(ctx, func(ot order.Tx) error {
		rows, err := ot.(*tx).query(ctx, explain+query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				return err
			}
			plan.WriteString(line + "\n")
		}
		return rows.Err()
	})
	return plan.String(), err
}

// ExecInTx runs stmt in the transaction of an InTx function (a test's SET
// LOCAL).
func ExecInTx(ctx context.Context, ot order.Tx, stmt string) error {
	rows, err := ot.(*tx).query(ctx, stmt)
	if err != nil {
		return err
	}
	return rows.Close()
}

// SetPGTimeout changes the bound on PostgreSQL transactions and reads.
func (s *Store) SetPGTimeout(d time.Duration) { s.pgTimeout = d }

// InboxReadPlan returns the plans of the inbox's read of keys, as Preload
// runs it: EXPLAIN QUERY PLAN's details on SQLite, EXPLAIN's lines on
// PostgreSQL.
func (s *Store) InboxReadPlan(ctx context.Context, keys []order.EventKey) (string, error) {
	var plan strings.Builder
	err := s.InTx(ctx, func(ot order.Tx) error {
		return s.inboxReads(keys, func(query string, args []any) error {
			explain := "EXPLAIN "
			if s.dialect != DialectPostgres {
				explain = "EXPLAIN QUERY PLAN "
			}
			rows, err := ot.(*tx).query(ctx, explain+query, args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var id, parent, unused int
				var line string
				dest := []any{&line}
				if s.dialect != DialectPostgres {
					dest = []any{&id, &parent, &unused, &line}
				}
				if err := rows.Scan(dest...); err != nil {
					return err
				}
				plan.WriteString(line + "\n")
			}
			return rows.Err()
		})
	})
	return plan.String(), err
}
