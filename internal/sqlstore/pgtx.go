package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/orderd/orderd/internal/order"
)

// inPgTx is InTx on PostgreSQL. The transaction runs on one connection of
// the pool through pgx itself rather than database/sql, so that statements
// can share a round trip (a pgx batch, pipelined): BEGIN goes with the
// transaction's first statements instead of by itself, and Preload's reads
// go together. A transaction of a batch of events thus costs three round
// trips (BEGIN and the reads, the writes, COMMIT) instead of six. At 5,000
// events/s on the 2-core machine, where a transaction holds about five
// events, a timing patch had the six take 5.7 ms on average, each round
// trip 0.6 ms or more, waiting for a busy CPU on both ends.
//
// The first run reads stock without locking it (see tx). When its write
// finds that other transactions took what it reserved meanwhile
// (errStockTaken), it is rolled back and fn runs again with the stock rows
// locked as they are read: what fn decides then holds.
//
// Looking for a row that is not there locks nothing, so two transactions
// can both decide to insert the same new key (two deliveries of one event,
// or POST /orders racing the order's OrderCreated); the second one's insert
// fails (errConcurrent). It is rolled back and fn runs again, and finds the
// row: a duplicate, or an order to compare. Without this, a client racing
// another for the same new order would be answered 503 instead of 200 or
// 409. At most pgRuns runs in all; then the transient error is returned.
func (s *Store) inPgTx(ctx context.Context, fn func(order.Tx) error) error {
	start := time.Now()
	lockStock := false
	for run := 1; ; run++ {
		tctx, cancel := s.bounded(ctx)
		commit, err := s.tryPgTx(tctx, fn, lockStock)
		cancel()
		err = s.overdue(ctx, err)
		if err == nil {
			s.observed(start, commit)
			return nil
		}
		if run == pgRuns || ctx.Err() != nil {
			return err
		}
		switch {
		case errors.Is(err, errStockTaken) && !lockStock:
			s.log.DebugContext(ctx, "transaction run again with its stock locked", "cause", err)
			lockStock = true
		case errors.Is(err, errConcurrent):
			s.log.DebugContext(ctx, "transaction run again: another inserted a key it looked for", "cause", err)
		default:
			return err
		}
	}
}

// pgRuns bounds the runs of one inPgTx.
const pgRuns = 3

// tryPgTx runs fn in one transaction of inPgTx, reading stock FOR UPDATE
// when lockStock is set, and returns how long its COMMIT took.
func (s *Store) tryPgTx(ctx context.Context, fn func(order.Tx) error, lockStock bool) (time.Duration, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return 0, classify(fmt.Errorf("begin transaction: %w", err))
	}
	defer conn.Close()
	// A panic in fn leaves Raw, which discards the connection, and with it
	// the transaction.
	var commit time.Duration
	err = conn.Raw(func(dc any) error {
		p := &pgTx{conn: dc.(*stdlib.Conn).Conn(), ctx: ctx, timeout: s.pgTimeout}
		t := newTx(s, nil)
		t.pg, t.lockStock = p, lockStock
		err := fn(t)
		if err == nil {
			err = p.aborted()
		}
		if err == nil {
			err = t.flush(ctx)
		}
		if err != nil {
			if rbErr := p.rollback(); rbErr != nil {
				s.log.WarnContext(ctx, "rollback failed", "error", rbErr, "cause", err)
			}
			return err
		}
		d, err := timed(p.commit)
		if err != nil {
			return classify(fmt.Errorf("commit transaction: %w", err))
		}
		commit = d
		return nil
	})
	return commit, err
}

// pgTx is a transaction on one pgx connection that begins with its first
// statement.
type pgTx struct {
	conn *pgx.Conn
	// ctx is inPgTx's, bounded by pgTimeout: every statement runs under it,
	// whatever context the use case passes, so that a server that hangs
	// fails the transaction in time.
	ctx     context.Context
	timeout time.Duration // pgTimeout, for the rollback
	begun   bool          // BEGIN was sent (it may have failed: rollback anyway)
	failed  error         // the first statement that failed, which aborted the transaction
}

// aborted reports a transaction that PostgreSQL aborted because a
// statement failed, which fn went on past (Apply keeps the events before
// the one that failed): nothing of it can commit, and that statement's
// error, not "current transaction is aborted" from the next one, is what
// happened.
func (p *pgTx) aborted() error {
	if !p.begun || p.conn.PgConn().TxStatus() != 'E' {
		return nil
	}
	cause := p.failed
	if cause == nil {
		cause = errors.New("no statement error seen")
	}
	return classify(fmt.Errorf("the transaction was aborted by a statement that failed: %w", cause))
}

// note keeps the first statement error, and returns err.
func (p *pgTx) note(err error) error {
	if err != nil && p.failed == nil {
		p.failed = err
	}
	return err
}

// newBatch returns a batch that begins the transaction first, when no
// statement has yet.
func (p *pgTx) newBatch() *pgx.Batch {
	b := &pgx.Batch{}
	if !p.begun {
		for _, stmt := range beginPG {
			b.Queue(stmt)
		}
	}
	return b
}

// beginPG begins a transaction of InTx. Every statement such a transaction
// runs — the unit of work's reads, its writes and the triggers they fire —
// finds its rows by key, with an index to do it with, so the transaction
// forbids the planner a sequential scan wherever an index serves. Without
// that, the plan rests on the tables' statistics, and a table with none yet
// (a new database: the autovacuum daemon analyzes a table only a minute or
// more after it fills) gets the planner's default guess: each of a full
// batch's 256 order ids matches 1/200 of order_items, so together most of
// it. The batch's preload then read the whole table and compared every row
// with every id (a Parallel Seq Scan, 167 ms, in auto_explain's log), more
// the larger the table. Under a backlog that is a spiral: slower batches, a
// longer backlog, only full batches; orderbench at 5,000/s printed p99
// 3.0-40.1 s in five runs of the code before, and a preload took up to
// 1.27 s (docs/BENCHMARKS.md, item 30). With enable_seqscan off a sequential
// scan is only the planner's last resort: a statement with no usable index
// still runs.
var beginPG = []string{"BEGIN", "SET LOCAL enable_seqscan = off"}

// send runs b in one round trip, calling each queued statement's function
// with its result; it returns the first error.
func (p *pgTx) send(_ context.Context, b *pgx.Batch) error {
	p.begun = true
	return p.note(p.conn.SendBatch(p.ctx, b).Close())
}

// query runs one statement, beginning the transaction in the same round trip
// when it is the first.
func (p *pgTx) query(_ context.Context, query string, args ...any) (rowSet, error) {
	if p.begun {
		rows, err := p.conn.Query(p.ctx, query, args...)
		if err != nil {
			return nil, p.note(err)
		}
		return pgxRows{rows, p}, nil
	}
	b := p.newBatch()
	b.Queue(query, args...)
	p.begun = true
	br := p.conn.SendBatch(p.ctx, b)
	for range beginPG {
		if _, err := br.Exec(); err != nil {
			return nil, p.note(errors.Join(err, br.Close()))
		}
	}
	rows, err := br.Query()
	if err != nil {
		return nil, p.note(errors.Join(err, br.Close()))
	}
	return batchRows{pgxRows{rows, p}, br}, nil
}

func (p *pgTx) commit() error {
	if !p.begun {
		return nil // nothing was read or written
	}
	tag, err := p.conn.Exec(p.ctx, "COMMIT")
	if err != nil {
		return err
	}
	if tag.String() == "ROLLBACK" {
		// A statement failed and the server aborted the transaction.
		return pgx.ErrTxCommitRollback
	}
	return nil
}

func (p *pgTx) rollback() error {
	if !p.begun || p.conn.IsClosed() {
		// Nothing to undo, or the connection broke (a cancelled context
		// closes it) and the server undid the transaction with it.
		return nil
	}
	// Even when the transaction's context has ended, but not for ever.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(p.ctx), p.timeout)
	defer cancel()
	_, err := p.conn.Exec(ctx, "ROLLBACK")
	return err
}

// pgxRows is pgx's rows as a rowSet, of a statement of p.
type pgxRows struct {
	pgx.Rows
	p *pgTx
}

func (r pgxRows) Close() error {
	r.Rows.Close()
	return r.p.note(r.Rows.Err())
}

// batchRows are the rows of the last statement of a batch; closing them
// closes the batch.
type batchRows struct {
	pgxRows
	br pgx.BatchResults
}

func (r batchRows) Close() error {
	return errors.Join(r.pgxRows.Close(), r.p.note(r.br.Close()))
}

// The reads of preloadPG that find rows by order_items.order_id, which no
// unique index covers (see beginPG). The stock of the named products ($1)
// and of the orders' items ($2) is found by the query itself, since the
// items are only known once read. (As a UNION, not "= ANY($1) OR IN (…)",
// which PostgreSQL runs as a scan of the whole stock table.) The stock read
// locks its rows only in a transaction that locks stock (see tx).
//
// The product ids are collected into an array first (ARRAY(…), run once
// before the rest), so the stock rows are then looked up by key in stock's
// index whatever the planner guesses. As "IN (subquery)" it was a join,
// and on tables without statistics the guess for the subquery's rows
// (thousands, for 256 order ids) made it a merge join along all of stock's
// index: with 100,000 stock rows, 49–53 ms to read the 256 wanted, against
// 4.2–4.5 ms this way (EXPLAIN ANALYZE on such a database; BENCHMARKS items
// 32 and 34).
//
// Where no product has a stock record (a shop that tracks no stock, §5),
// the EXISTS, checked first, skips collecting the ids: about 1 ms of a full
// batch of new orders, whose ids are all looked for in order_items.
const (
	preloadItemsPG = itemsQuery + `= ANY($1) ORDER BY order_id, line_no`
	preloadStockPG = stockQuery + `= ANY(ARRAY(SELECT unnest(CAST($1 AS TEXT[]))
			UNION SELECT product_id FROM order_items WHERE order_id = ANY($2)))
			AND EXISTS (SELECT FROM stock) ORDER BY product_id`
	preloadStockLockedPG = preloadStockPG + ` FOR UPDATE`
)

// preloadPG is Preload on PostgreSQL: the inbox entries, the orders (locked,
// in id order) with their items, then the stock of the products named and
// of those orders' items (locked, in id order, when the transaction locks
// stock), in one round trip. Rows the transaction keeps already are not read
// again.
func (t *tx) preloadPG(ctx context.Context, k order.Keys) error {
	inboxRows := t.missingInbox(k.Events)
	orderIDs := missing(t, t.orders, k.OrderIDs)
	products := missing(t, t.stock, t.products(k))
	if len(inboxRows) == 0 && len(orderIDs) == 0 && len(products) == 0 {
		return nil
	}

	b := t.pg.newBatch()
	if err := t.s.inboxReads(inboxRows, func(query string, args []any) error {
		b.Queue(query, args...).Query(func(rows pgx.Rows) error {
			return t.scanInbox(rows)
		})
		return nil
	}); err != nil {
		return err
	}
	var found []string
	items := make(map[string][]order.Item, len(orderIDs))
	if len(orderIDs) > 0 {
		b.Queue(t.s.orderSelect()+" WHERE id = ANY($1) ORDER BY id FOR UPDATE", orderIDs).Query(func(rows pgx.Rows) error {
			var err error
			found, err = t.scanOrders(rows)
			return err
		})
		b.Queue(preloadItemsPG, orderIDs).Query(func(rows pgx.Rows) error {
			return scanItems(rows, items)
		})
	}
	if len(products) > 0 || len(orderIDs) > 0 {
		query := preloadStockPG
		if t.lockStock {
			query = preloadStockLockedPG
		}
		b.Queue(query, products, orderIDs).Query(func(rows pgx.Rows) error {
			return t.scanStock(rows)
		})
	}
	if err := t.pg.send(ctx, b); err != nil {
		return classify(fmt.Errorf("preload: %w", err))
	}
	markAbsent(t.inbox, inboxRows)
	for _, id := range found {
		t.orders[id].cur.Items = items[id] // cur and base are one value until changed
	}
	markAbsent(t.orders, orderIDs)
	// Now with the found orders' items: the products without a stock row.
	markAbsent(t.stock, missing(t, t.stock, t.products(k)))
	return nil
}
