package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

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
// is READ COMMITTED, every order it reads is locked (FOR UPDATE) until it
// ends, and stock is written as changes that must still fit the row when
// written; where one does not, fn runs again in a new transaction that locks
// the stock it reads (see tx and inPgTx; order.Transactor allows it). That
// is what keeps concurrent transactions correct. It runs on pgx directly.
// On SQLite it is BEGIN IMMEDIATE, so write transactions run one at a time.
func (s *Store) InTx(ctx context.Context, fn func(order.Tx) error) error {
	if s.dialect == DialectPostgres {
		return s.inPgTx(ctx, fn)
	}
	// See stmtCache: no goroutine per statement or per result set.
	if err := ctx.Err(); err != nil {
		return err
	}
	start := time.Now()
	txCtx := context.WithoutCancel(ctx)
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
	cache := &stmtCache{s: s, tx: sqlTx, stmts: make(map[string]*sql.Stmt)}
	t := newTx(s, cache)
	err = fn(t)
	if err == nil {
		err = t.flush(txCtx)
	}
	finished = true
	if err != nil {
		if rbErr := sqlTx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			s.log.WarnContext(ctx, "rollback failed", "error", rbErr, "cause", err)
		}
	} else if commit, cerr := timed(sqlTx.Commit); cerr != nil {
		err = classify(fmt.Errorf("commit transaction: %w", cerr))
	} else {
		s.noteWrite()
		s.observed(start, commit)
	}
	cache.share(ctx) // the write connection is free again
	return err
}

// ObserveTransactions has f told of each committed InTx: how long it took
// from its begin to the end of its COMMIT (a rerun included), and how long
// the COMMIT alone took, the wait until the database had made it durable.
// Call it before the first transaction; f must be safe for concurrent use.
func (s *Store) ObserveTransactions(f func(total, commit time.Duration)) { s.observeTx = f }

// observed reports a committed transaction that began at start and whose
// COMMIT took commit.
func (s *Store) observed(start time.Time, commit time.Duration) {
	if s.observeTx != nil {
		s.observeTx(time.Since(start), commit)
	}
}

// timed runs do and returns how long it took.
func timed(do func() error) (time.Duration, error) {
	start := time.Now()
	err := do()
	return time.Since(start), err
}

// stmtCache prepares each distinct statement once per transaction and reuses
// it. The SQLite driver compiles every statement it is not handed prepared,
// and compiling the multi-row statements of a batch cost as much as running
// them. A statement the transaction had to compile is also prepared on the
// store once the transaction is over (share), for every later transaction to
// reuse: statement shapes are few (see execRows and inChunks). (pgx caches
// prepared statements by itself.) The transaction's own statements close
// with it.
//
// Statements run without the caller's cancellation: the SQLite driver starts
// a goroutine per statement to watch a cancellable context (15% of the CPU of
// a batch), and a statement here is bounded anyway — by busy_timeout while it
// waits for the file, by its own work otherwise.
type stmtCache struct {
	s      *Store
	tx     *sql.Tx
	stmts  map[string]*sql.Stmt
	wanted []string // compiled here, to be shared
}

// maxShared bounds the statements a store keeps prepared; the shapes the
// store uses come to far fewer.
const maxShared = 256

func (c *stmtCache) prepare(ctx context.Context, query string) (*sql.Stmt, error) {
	ctx = context.WithoutCancel(ctx)
	if st, ok := c.stmts[query]; ok {
		return st, nil
	}
	var st *sql.Stmt
	c.s.sharedMu.Lock()
	shared := c.s.shared[query]
	c.s.sharedMu.Unlock()
	if shared != nil {
		st = c.tx.StmtContext(ctx, shared) // reuses it on this connection
	} else {
		var err error
		if st, err = c.tx.PrepareContext(ctx, query); err != nil {
			return nil, err
		}
		c.wanted = append(c.wanted, query)
	}
	c.stmts[query] = st
	return st, nil
}

// share prepares on the store the statements this transaction compiled for
// itself. It runs when the transaction is over, since the store's one
// write connection is the transaction's until then.
func (c *stmtCache) share(ctx context.Context) {
	for _, q := range c.wanted {
		c.s.sharedMu.Lock()
		_, done := c.s.shared[q]
		full := len(c.s.shared) >= maxShared
		c.s.sharedMu.Unlock()
		if done || full {
			continue
		}
		st, err := c.s.db.PrepareContext(context.WithoutCancel(ctx), q)
		if err != nil {
			return // the next transaction compiles it again
		}
		c.s.sharedMu.Lock()
		if _, done := c.s.shared[q]; done {
			_ = st.Close()
		} else {
			c.s.shared[q] = st
		}
		c.s.sharedMu.Unlock()
	}
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
