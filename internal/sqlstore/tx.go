package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/orderd/orderd/internal/order"
)

// InTx runs fn inside one database transaction, committing it when fn
// returns nil and rolling it back otherwise (also when fn panics). fn's own
// error is returned as it is. fn must do all its database work through the
// order.Tx it is given: on SQLite the transaction holds the store's only
// write connection.
//
// The order.Tx is a unit of work (see tx): rows are read once and kept,
// writes are kept in memory and reach the database when fn returns, in a few
// multi-row statements, just before the commit. On PostgreSQL the transaction
// is READ COMMITTED and every row it reads to change is locked (FOR UPDATE)
// until it ends, which is what keeps concurrent transactions correct. On
// SQLite it is BEGIN IMMEDIATE, so write transactions run one at a time.
func (s *Store) InTx(ctx context.Context, fn func(order.Tx) error) error {
	txCtx := ctx
	if s.dialect == DialectSQLite {
		// See stmtCache: no goroutine per statement or per result set.
		if err := ctx.Err(); err != nil {
			return err
		}
		txCtx = context.WithoutCancel(ctx)
	}
	sqlTx, err := s.db.BeginTx(txCtx, nil)
	if err != nil {
		return classify(fmt.Errorf("begin transaction: %w", err))
	}
	finished := false
	defer func() {
		// fn panicked or called runtime.Goexit (t.Fatal in a test).
		if !finished {
			_ = sqlTx.Rollback()
		}
	}()
	t := newTx(s, sqlTx)
	if s.dialect == DialectSQLite {
		t.q = &stmtCache{tx: sqlTx, stmts: make(map[string]*sql.Stmt)}
	}
	err = fn(t)
	if err == nil {
		err = t.flush(txCtx)
	}
	finished = true
	if err != nil {
		if rbErr := sqlTx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			s.log.WarnContext(ctx, "rollback failed", "error", rbErr, "cause", err)
		}
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return classify(fmt.Errorf("commit transaction: %w", err))
	}
	return nil
}

// stmtCache prepares each distinct statement once per transaction and reuses
// it. The SQLite driver compiles every statement it is not handed prepared,
// and a batch of events runs the same few statements hundreds of times in
// one transaction. (pgx caches prepared statements by itself.) The
// statements close with the transaction.
//
// Statements run without the caller's cancellation: the SQLite driver starts
// a goroutine per statement to watch a cancellable context (15% of the CPU of
// a batch), and a statement here is bounded anyway — by busy_timeout while it
// waits for the file, by its own work otherwise.
type stmtCache struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

func (c *stmtCache) prepare(ctx context.Context, query string) (*sql.Stmt, error) {
	ctx = context.WithoutCancel(ctx)
	if st, ok := c.stmts[query]; ok {
		return st, nil
	}
	st, err := c.tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.stmts[query] = st
	return st, nil
}

func (c *stmtCache) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := c.prepare(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(context.WithoutCancel(ctx), args...)
}

func (c *stmtCache) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := c.prepare(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(context.WithoutCancel(ctx), args...)
}

func (c *stmtCache) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := c.prepare(ctx, query)
	if err != nil {
		return c.tx.QueryRowContext(ctx, query, args...) // reports the same error through Scan
	}
	return st.QueryRowContext(context.WithoutCancel(ctx), args...)
}
