package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/orderd/orderd/internal/fault"
	"github.com/orderd/orderd/internal/order"
)

// InTx runs fn inside one database transaction, committing it when fn
// returns nil and rolling it back otherwise (also when fn panics). fn's own
// error is returned as it is. fn must do all its database work through the
// order.Tx it is given: on SQLite the transaction holds the store's only
// write connection.
//
// On PostgreSQL the transaction is READ COMMITTED; Tx.Order locks the order
// row and Reserve/Release are conditional single-row updates, which is what
// keeps concurrent transactions correct. On SQLite it is BEGIN IMMEDIATE, so
// write transactions run one at a time.
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
	t := &tx{s: s, q: sqlTx}
	if s.dialect == DialectSQLite {
		t.q = &stmtCache{tx: sqlTx, stmts: make(map[string]*sql.Stmt)}
	}
	err = fn(t)
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

// tx is one transaction as the use cases see it (order.Tx). Statements go
// through q: the transaction itself, or on SQLite its statement cache.
type tx struct {
	s *Store
	q querier
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

var _ order.Tx = (*tx)(nil)
var _ order.Transactor = (*Store)(nil)

// Order loads an order with its items, locking it until the transaction ends.
func (t *tx) Order(ctx context.Context, id string) (*order.Order, error) {
	return t.s.loadOrder(ctx, t.q, id, true)
}

// CreateOrder inserts an order with its items; an existing id is a conflict.
func (t *tx) CreateOrder(ctx context.Context, o *order.Order) error {
	return t.s.createOrder(ctx, t.q, o)
}

// UpdateOrder saves an order's status, computed fields and reserved flags.
func (t *tx) UpdateOrder(ctx context.Context, o *order.Order) error {
	return t.s.updateOrder(ctx, t.q, o)
}

// Stocks loads the stock records of several products in one query.
func (t *tx) Stocks(ctx context.Context, productIDs []string) (map[string]order.Stock, error) {
	out := make(map[string]order.Stock, len(productIDs))
	if len(productIDs) == 0 {
		return out, nil
	}
	args := make([]any, len(productIDs))
	for i, id := range productIDs {
		args[i] = id
	}
	rows, err := t.q.QueryContext(ctx, `SELECT product_id, available, reserved FROM stock
		WHERE product_id IN (`+placeholders(1, len(args))+`)`, args...)
	if err != nil {
		return nil, classify(fmt.Errorf("load stock: %w", err))
	}
	defer rows.Close()
	for rows.Next() {
		var st order.Stock
		if err := rows.Scan(&st.ProductID, &st.Available, &st.Reserved); err != nil {
			return nil, classify(fmt.Errorf("load stock: %w", err))
		}
		out[st.ProductID] = st
	}
	if err := rows.Err(); err != nil {
		return nil, classify(fmt.Errorf("load stock: %w", err))
	}
	return out, nil
}

// Reserve moves qty from available to reserved in one conditional update, so
// that concurrent transactions can never take more than there is.
func (t *tx) Reserve(ctx context.Context, productID string, qty int64) (bool, error) {
	if qty <= 0 {
		return false, fmt.Errorf("reserve %d of product %s: quantity must be positive", qty, productID)
	}
	res, err := t.q.ExecContext(ctx, `UPDATE stock
		SET available = available - $2, reserved = reserved + $2, updated_at = $3
		WHERE product_id = $1 AND available >= $2`, productID, qty, t.s.timeArg(t.s.now()))
	if err != nil {
		return false, classify(fmt.Errorf("reserve %d of product %s: %w", qty, productID, err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, classify(fmt.Errorf("reserve %d of product %s: %w", qty, productID, err))
	}
	return n == 1, nil
}

// Release moves qty from reserved back to available. Releasing more than is
// reserved, or for a product without stock, is a bug and fails.
func (t *tx) Release(ctx context.Context, productID string, qty int64) error {
	if qty <= 0 {
		return fmt.Errorf("release %d of product %s: quantity must be positive", qty, productID)
	}
	res, err := t.q.ExecContext(ctx, `UPDATE stock
		SET available = available + $2, reserved = reserved - $2, updated_at = $3
		WHERE product_id = $1 AND reserved >= $2`, productID, qty, t.s.timeArg(t.s.now()))
	if err != nil {
		return classify(fmt.Errorf("release %d of product %s: %w", qty, productID, err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return classify(fmt.Errorf("release %d of product %s: %w", qty, productID, err))
	}
	if n == 0 {
		return fmt.Errorf("release %d of product %s: no stock record with that many reserved", qty, productID)
	}
	return nil
}

// MarkProcessed records eventID in the inbox as applied, reporting false when
// it was already there. On PostgreSQL a concurrent transaction inserting the
// same id waits for this one and then finds it.
func (t *tx) MarkProcessed(ctx context.Context, eventID, eventName string) (bool, error) {
	return t.mark(ctx, eventID, eventName, outcomeApplied, order.Refusal{})
}

// MarkRefused records eventID in the inbox as refused, reporting false when it
// was already there.
func (t *tx) MarkRefused(ctx context.Context, eventID, eventName string, r order.Refusal) (bool, error) {
	return t.mark(ctx, eventID, eventName, outcomeRefused, r)
}

// The inbox's outcome column.
const (
	outcomeApplied = "applied"
	outcomeRefused = "refused"
)

func (t *tx) mark(ctx context.Context, eventID, eventName, outcome string, r order.Refusal) (bool, error) {
	res, err := t.q.ExecContext(ctx, `INSERT INTO processed_events (event_id, event_name, processed_at, outcome, reason, detail)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING`,
		eventID, eventName, t.s.timeArg(t.s.now()), outcome, storable(r.Reason), storable(r.Detail))
	if err != nil {
		return false, classify(fmt.Errorf("mark event %s %s: %w", eventID, outcome, err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, classify(fmt.Errorf("mark event %s %s: %w", eventID, outcome, err))
	}
	return n == 1, nil
}

// Savepoint runs fn inside a savepoint, rolled back to when fn fails. On
// PostgreSQL this also clears the aborted state a failed statement leaves,
// so the transaction goes on with the next event.
func (t *tx) Savepoint(ctx context.Context, fn func() error) error {
	if _, err := t.q.ExecContext(ctx, "SAVEPOINT event"); err != nil {
		return classify(fmt.Errorf("savepoint: %w", err))
	}
	if err := fn(); err != nil {
		if _, rbErr := t.q.ExecContext(ctx, "ROLLBACK TO SAVEPOINT event"); rbErr != nil {
			// The transaction cannot go on; committing it must not be tried.
			return fault.AsTransient(fmt.Errorf("roll back to savepoint after %w: %w", err, rbErr))
		}
		return err
	}
	if t.s.dialect == DialectPostgres {
		// Left for the commit to release: one round trip less per event.
		// The service gives PostgreSQL one event per transaction, so
		// savepoints never pile up (beyond 64 PostgreSQL would slow down).
		return nil
	}
	if _, err := t.q.ExecContext(ctx, "RELEASE SAVEPOINT event"); err != nil {
		return classify(fmt.Errorf("release savepoint: %w", err))
	}
	return nil
}

// Inbox returns the inbox entry of eventID.
func (t *tx) Inbox(ctx context.Context, eventID string) (order.InboxEntry, bool, error) {
	var outcome, reason, detail string
	err := t.q.QueryRowContext(ctx, `SELECT outcome, reason, detail FROM processed_events WHERE event_id = $1`,
		eventID).Scan(&outcome, &reason, &detail)
	if errors.Is(err, sql.ErrNoRows) {
		return order.InboxEntry{}, false, nil
	}
	if err != nil {
		return order.InboxEntry{}, false, classify(fmt.Errorf("read inbox entry of event %s: %w", eventID, err))
	}
	if outcome != outcomeRefused {
		return order.InboxEntry{}, true, nil
	}
	return order.InboxEntry{Refused: true, Refusal: order.Refusal{Reason: reason, Detail: detail}}, true, nil
}

// storable makes a message safe for a TEXT column on both databases: valid
// UTF-8 without NUL (PostgreSQL refuses both), at most 1,000 bytes.
func storable(s string) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
	if len(s) > 1000 {
		s = strings.ToValidUTF8(s[:1000], "")
	}
	return s
}
