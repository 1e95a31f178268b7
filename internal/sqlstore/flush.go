package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/orderd/orderd/internal/fault"
	"github.com/orderd/orderd/internal/order"
)

// The types of the columns of the rows flush writes, as PostgreSQL names
// them (see execRows).
var (
	inboxTypes = []string{"TEXT", "TEXT", "TEXT", "TIMESTAMPTZ", "TEXT", "TEXT", "TEXT"}
	orderTypes = []string{"TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "BIGINT", "TEXT", "TEXT",
		"BIGINT", "BIGINT", "BIGINT", "BIGINT", "TEXT", "TEXT", "TIMESTAMPTZ", "TIMESTAMPTZ", "TEXT"}
	itemTypes   = []string{"TEXT", "INTEGER", "TEXT", "BIGINT", "BIGINT", "BIGINT", "BOOLEAN"}
	orderUpdate = []string{"TEXT", "TEXT", "BIGINT", "BIGINT", "BIGINT", "BIGINT", "TEXT", "TEXT", "TIMESTAMPTZ"}
	itemUpdate  = []string{"TEXT", "INTEGER", "BOOLEAN"}
	// On SQLite, where the items are in the order's row (itemsInOrders).
	orderWithItems       = append(slices.Clip(orderTypes), "TEXT")
	orderUpdateWithItems = append(slices.Clip(orderUpdate), "TEXT")
	// On SQLite, where a new order's row takes its creating event's inbox
	// entry (inboxInOrders).
	inboxInOrderTypes = []string{"TEXT", "TEXT", "TIMESTAMPTZ"}
	stockUpdate       = []string{"TEXT", "BIGINT", "BIGINT", "TIMESTAMPTZ"}
)

// flush writes what the transaction changed: new inbox entries, new orders
// with their items, changed orders and reserved flags, changed stock — each
// in one statement per table (more only for a very large batch), rows in key
// order. Orders it reads were locked when read (PostgreSQL), so it takes no
// new lock on them; new keys it inserts in key order. Stock goes last, as
// changes, each only where the row still covers it (see tx); its rows are
// locked from then until the commit. On PostgreSQL the statements go in one
// round trip (see execWrites).
//
// An inbox entry or an order that another transaction inserted since this one
// looked for it (another delivery of the same event, committed meanwhile) is
// a transient error: the whole transaction is undone and tried again, and
// then finds it. So is stock another transaction took since this one read it
// (errStockTaken): inPgTx runs the transaction again at once, with its stock
// locked.
func (t *tx) flush(ctx context.Context) error {
	now := t.s.timeArg(t.s.now())
	entries := t.inboxInRows()
	var ws []write
	ws = t.inboxWrites(ws, now, entries)
	ws, err := t.orderWrites(ws, now, entries)
	if err != nil {
		return err
	}
	ws = t.stockWrites(ws, now)
	if len(ws) == 0 {
		return nil
	}
	if t.s.dialect == DialectPostgres {
		return t.execWrites(ctx, ws)
	}
	for _, w := range ws {
		tail := w.tail
		if w.key != "" {
			tail = " ON CONFLICT " + w.key + " DO NOTHING" + tail
		}
		n, err := t.execRows(ctx, w.head, w.types, tail, w.args)
		if err != nil {
			return classify(fmt.Errorf("%s: %w", w.what, err))
		}
		if err := w.check(n); err != nil {
			return err
		}
	}
	return nil
}

// write is one multi-row statement of flush: head + rows + tail (see
// execRows), which must change every row it is given.
type write struct {
	what       string // for errors: "create 3 orders"
	head, tail string
	types      []string
	args       []any
	// key, for an insert of new keys, is their columns, e.g. "(id)". A key
	// already there was inserted by another transaction since this one
	// looked for it: transient. SQLite skips such a row (ON CONFLICT key DO
	// NOTHING) and check counts it; on PostgreSQL the statement fails with
	// a unique violation instead (see execWrites), which costs the server
	// less than ON CONFLICT's speculative insertion. Without a key, a row
	// left unchanged is gone, why says gone: a bug; or, with unlocked,
	// errStockTaken.
	key  string
	gone string
	// insert: the statement inserts its rows. On PostgreSQL it has no ON
	// CONFLICT, so it inserts every row or fails, and execWrites does not
	// have it return its rows to be counted.
	insert bool
	// unlocked: the write's rows were read without a lock (the stock's, on
	// PostgreSQL), so another transaction can make its condition false
	// meanwhile: a row it leaves unchanged was taken (errStockTaken). It is
	// a statement of its own, after the others' (in the same round trip),
	// so that the row locks it takes are held only from then to the commit.
	unlocked bool
}

// rowsWrite is a write that must change every row it is given.
func rowsWrite(what, head string, types []string, tail string, args []any, gone string) write {
	return write{what: what, head: head, tail: tail, types: types, args: args, gone: gone}
}

// insertWrite is a write of new keys, whose columns key names.
func insertWrite(what, head string, types []string, key string, args []any) write {
	return write{what: what, head: head, types: types, args: args, key: key, insert: true}
}

// check reports a write that changed fewer rows than it was given.
func (w write) check(changed int) error {
	want := len(w.args) / len(w.types)
	switch {
	case changed == want:
		return nil
	case w.key != "":
		return fault.AsTransient(fmt.Errorf("%s: %d already there: %w", w.what, want-changed, errConcurrent))
	case w.unlocked:
		return fault.AsTransient(fmt.Errorf("%s: %d no longer there to take: %w", w.what, want-changed, errStockTaken))
	default:
		return fmt.Errorf("%s: %d rows changed: %s", w.what, changed, w.gone)
	}
}

// sortedKeys returns the keys of m whose row satisfies keep, in order.
func sortedKeys[R any](m map[string]R, keep func(R) bool) []string {
	return sortedKeysFunc(m, keep, strings.Compare)
}

// sortedKeysFunc is sortedKeys for keys that compare sorts.
func sortedKeysFunc[K comparable, R any](m map[K]R, keep func(R) bool, compare func(a, b K) int) []K {
	var out []K
	for k, r := range m {
		if keep(r) {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, compare)
	return out
}

var errConcurrent = errors.New("another transaction inserted it since this one looked (another delivery of the same event?); the transaction is tried again")

// errStockTaken is a stock write that found fewer available (or reserved)
// than it takes: other transactions took them since this one read the row
// without a lock.
var errStockTaken = errors.New("other transactions took that stock since this one read it without a lock; the transaction is run again")

// inboxInRows returns, for each order the transaction creates, the key of
// the entry that goes into the order's row (see inboxInOrders): the first,
// by event id, of the applied entries it records under the order. None on
// PostgreSQL.
func (t *tx) inboxInRows() map[string]order.EventKey {
	if !t.s.inboxInRow() {
		return nil
	}
	inRow := make(map[string]order.EventKey)
	for k, r := range t.inbox {
		if !r.added || r.entry.Refused || k.OrderID == "" {
			continue
		}
		if !t.orders[k.OrderID].created() {
			continue // its order is not inserted by orderWrites
		}
		if first, ok := inRow[k.OrderID]; !ok || k.ID < first.ID {
			inRow[k.OrderID] = k
		}
	}
	return inRow
}

// inboxArgs are the values of the inbox columns of a new order's row: its
// entry of entries (see inboxInRows), processed at now, or NULLs.
func (t *tx) inboxArgs(entries map[string]order.EventKey, orderID string, now any) []any {
	k, ok := entries[orderID]
	if !ok {
		var null sql.Null[string]
		return []any{null, null, null}
	}
	return []any{k.ID, t.inbox[k].entry.Name, now}
}

// inboxWrites writes the entries the transaction recorded, except those
// that go into their order's row (entries, see inboxInRows).
func (t *tx) inboxWrites(ws []write, now any, entries map[string]order.EventKey) []write {
	keys := sortedKeysFunc(t.inbox, func(r inboxRow) bool { return r.added }, compareEventKeys)
	keys = slices.DeleteFunc(keys, func(k order.EventKey) bool {
		e, inRow := entries[k.OrderID]
		return inRow && e == k
	})
	if len(keys) == 0 {
		return ws
	}
	args := make([]any, 0, len(inboxTypes)*len(keys))
	for _, k := range keys {
		r := t.inbox[k]
		outcome := outcomeApplied
		if r.entry.Refused {
			outcome = outcomeRefused
		}
		args = append(args, k.OrderID, k.ID, r.entry.Name, now, outcome, r.entry.Refusal.Reason, r.entry.Refusal.Detail)
	}
	return append(ws, insertWrite(fmt.Sprintf("record %d events in the inbox", len(keys)),
		`INSERT INTO `+t.s.inboxTable()+` (`+inboxColumns+`) `, inboxTypes, `(order_id, event_id)`, args))
}

// orderWrites writes the orders the transaction created or changed, with
// their items: on PostgreSQL into order_items, on SQLite into the orders'
// own rows (see itemsInOrders), where a created order's row takes its entry
// of entries too (see inboxInRows), processed at now.
func (t *tx) orderWrites(ws []write, now any, entries map[string]order.EventKey) ([]write, error) {
	created := sortedKeys(t.orders, orderRow.created)
	updated := sortedKeys(t.orders, orderRow.updated)
	inRow := t.s.itemsInRow()
	if len(created) > 0 {
		columns, types := orderColumns, orderTypes
		if inRow {
			columns, types = orderColumns+`, items`, orderWithItems
		}
		if t.s.inboxInRow() {
			columns, types = columns+`, inbox_event_id, inbox_event_name, inbox_processed_at`, slices.Concat(types, inboxInOrderTypes)
		}
		args := make([]any, 0, len(types)*len(created))
		var items []any
		for _, id := range created {
			o := t.orders[id].cur
			args = append(args, o.ID, o.CustomerID, o.CustomerName, string(o.Status), o.Currency.Code, o.TotalAmount,
				o.ShippingRegion, string(o.ShippingMethod), nullable(o.ShippingCost), nullable(o.Discount),
				nullable(o.FinalTotal), nullable(o.RefundAmount), o.CancellationReason, o.TrackingNumber,
				t.s.timeArg(o.CreatedAt), t.s.timeArg(o.UpdatedAt), string(o.InitialStatus))
			if inRow {
				js, err := itemsJSON(o)
				if err != nil {
					return nil, err
				}
				args = append(args, js)
			} else {
				for i, it := range o.Items {
					items = append(items, o.ID, i+1, it.ProductID, it.Quantity, it.UnitPrice, it.TotalPrice, it.Reserved)
				}
			}
			if t.s.inboxInRow() {
				args = append(args, t.inboxArgs(entries, o.ID, now)...)
			}
		}
		what := fmt.Sprintf("create %d orders", len(created))
		ws = append(ws, insertWrite(what, `INSERT INTO orders (`+columns+`) `, types, `(id)`, args))
		if len(items) > 0 {
			// An order another transaction inserted meanwhile fails the
			// orders' write (transient) before its items are written on
			// SQLite; on PostgreSQL, where both go in one statement, either
			// can be the unique violation, and both are transient.
			items := rowsWrite(what+": items",
				`INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price, total_price, reserved) `,
				itemTypes, ``, items, "an item was not inserted")
			items.insert = true
			ws = append(ws, items)
		}
	}
	if len(updated) == 0 {
		return ws, nil
	}
	types, withItems, setItems := orderUpdate, ``, ``
	if inRow {
		types, withItems, setItems = orderUpdateWithItems, `, items`, `, items = v.items`
	}
	args := make([]any, 0, len(types)*len(updated))
	var items []any
	for _, id := range updated {
		r := t.orders[id]
		o := r.cur
		args = append(args, o.ID, string(o.Status), nullable(o.ShippingCost), nullable(o.Discount), nullable(o.FinalTotal),
			nullable(o.RefundAmount), o.CancellationReason, o.TrackingNumber, t.s.timeArg(o.UpdatedAt))
		if inRow {
			// The reserved flags are all that changes in the items.
			js, err := itemsJSON(o)
			if err != nil {
				return nil, err
			}
			args = append(args, js)
			continue
		}
		for i, it := range o.Items {
			if it.Reserved != r.base.Items[i].Reserved {
				items = append(items, o.ID, i+1, it.Reserved)
			}
		}
	}
	what := fmt.Sprintf("update %d orders", len(updated))
	ws = append(ws, rowsWrite(what, `WITH v (id, status, shipping_cost, discount, final_total, refund_amount,
		cancellation_reason, tracking_number, updated_at`+withItems+`) AS (`, types, `)
		UPDATE orders SET status = v.status, shipping_cost = v.shipping_cost, discount = v.discount,
		final_total = v.final_total, refund_amount = v.refund_amount, cancellation_reason = v.cancellation_reason,
		tracking_number = v.tracking_number, updated_at = v.updated_at`+setItems+`
		FROM v WHERE orders.id = v.id`, args, "an order read in this transaction is gone"))
	if len(items) > 0 {
		ws = append(ws, rowsWrite(what+": items", `WITH v (order_id, line_no, reserved) AS (`, itemUpdate, `)
		UPDATE order_items SET reserved = v.reserved
		FROM v WHERE order_items.order_id = v.order_id AND order_items.line_no = v.line_no`, items,
			"an item read in this transaction is gone"))
	}
	return ws, nil
}

// stockWrites writes the stock the transaction changed as changes (see tx),
// rows in product order. On PostgreSQL the plan of this join is a nested
// loop over v (EXPLAIN with 3 and with 1,000 rows against 100,000 stock rows
// without statistics), so the rows are updated, and locked, in that order, as
// the locking run's read locks them: two batches' stock writes do not wait
// for each other in a cycle. (Were a plan to differ, the server would detect
// the deadlock, and a deadlock is transient: see classify.)
func (t *tx) stockWrites(ws []write, now any) []write {
	ids := sortedKeys(t.stock, func(r stockRow) bool { return r.dirty })
	if len(ids) == 0 {
		return ws
	}
	args := make([]any, 0, len(stockUpdate)*len(ids))
	for _, id := range ids {
		r := t.stock[id]
		args = append(args, id, r.st.Available-r.base.Available, r.st.Reserved-r.base.Reserved, now)
	}
	w := rowsWrite(fmt.Sprintf("update stock of %d products", len(ids)),
		`WITH v (product_id, available, reserved, updated_at) AS (`, stockUpdate, `)
		UPDATE stock SET available = stock.available + v.available, reserved = stock.reserved + v.reserved,
			updated_at = v.updated_at
		FROM v WHERE stock.product_id = v.product_id
			AND stock.available + v.available >= 0 AND stock.reserved + v.reserved >= 0`, args,
		"a stock record read in this transaction is gone")
	// On SQLite the rows were read under the one write lock: a row that
	// no longer fits is a bug. (The write is the last there too.)
	w.unlocked = t.pg != nil
	return append(ws, w)
}

// uniqueViolation is PostgreSQL's SQLSTATE for a key already there.
const uniqueViolation = "23505"

// execWrites runs the writes of flush on PostgreSQL as one statement, each
// a data-modifying WITH query, so that a transaction's writes cost one round
// trip: a timing patch had a 6-event transaction of orderbench's latency
// phase spend 2.6 ms in four flush statements. Each write's rows are
// "SELECT * FROM unnest(CAST($n AS TEXT[]), …)", an array parameter per
// column, so the statement's shape depends on which tables are written, not
// on the row count, and the server parses and binds far less than a VALUES
// list. The updates return their rows to be counted; the inserts return none
// (see write.insert). The items' check (migration 4) runs at the end of the
// statement, so items see the orders inserted beside them. The unlocked
// writes go in a second statement of the same round trip, which the server
// runs once the first is done.
func (t *tx) execWrites(ctx context.Context, ws []write) error {
	var first, last []write
	for _, w := range ws {
		if w.unlocked {
			last = append(last, w)
		} else {
			first = append(first, w)
		}
	}
	b := t.pg.newBatch()
	for _, group := range [][]write{first, last} {
		if len(group) == 0 {
			continue
		}
		query, args, changed, dest := writeStatement(group)
		b.Queue(query, args...).QueryRow(func(row pgx.Row) error {
			if err := row.Scan(dest...); err != nil {
				return writesError(group, err)
			}
			for i, w := range group {
				if err := w.check(int(changed[i])); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return t.pg.send(ctx, b)
}

// writeStatement is one statement of execWrites: its text and arguments,
// and where the scan of its one row puts each write's count of changed rows.
func writeStatement(ws []write) (query string, args []any, changed []int64, dest []any) {
	var (
		q      strings.Builder
		counts []string
	)
	changed = make([]int64, len(ws))
	for i, w := range ws {
		if i == 0 {
			q.WriteString("WITH ")
		} else {
			q.WriteString(", ")
		}
		returning := " RETURNING 1"
		if w.insert {
			returning = "" // every row or an error (see write.insert)
			changed[i] = int64(len(w.args) / len(w.types))
		} else {
			counts = append(counts, fmt.Sprintf("(SELECT count(*) FROM w%d)", i))
			dest = append(dest, &changed[i])
		}
		fmt.Fprintf(&q, "w%d AS (%s%s%s%s)", i, w.head, unnestList(w.types, len(args)+1), w.tail, returning)
		args = append(args, columnArrays(w.types, w.args)...)
	}
	if len(counts) == 0 {
		var zero int64
		counts, dest = []string{"0"}, []any{&zero}
	}
	q.WriteString(" SELECT ")
	q.WriteString(strings.Join(counts, ", "))
	return q.String(), args, changed, dest
}

// writesError is the error of a failed statement of execWrites, naming its
// writes.
func writesError(ws []write, err error) error {
	whats := make([]string, len(ws))
	for i, w := range ws {
		whats[i] = w.what
	}
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == uniqueViolation {
		// Only the inserts of new keys can violate a unique constraint
		// here (see write.key).
		return fault.AsTransient(fmt.Errorf("%s: %w: %w", strings.Join(whats, ", "), errConcurrent, err))
	}
	return classify(fmt.Errorf("%s: %w", strings.Join(whats, ", "), err))
}

// maxRows bounds the rows of one statement of execRows.
const maxRows = 256

// execRows runs, on SQLite, head + rows + tail, where rows is a VALUES list
// of args — rows of len(types) values each — and returns how many rows the
// statements changed. The list goes maxRows rows to a statement and the rest
// in statements of a power of two rows each (250 rows: 128, 64, 32, 16, 8,
// 2), so that a handful of statement shapes serve every batch and stay
// prepared (see stmtCache). PostgreSQL takes the rows as arrays instead (see
// execWrites).
func (t *tx) execRows(ctx context.Context, head string, types []string, tail string, args []any) (int, error) {
	cols := len(types)
	rows := len(args) / cols
	if rows == 0 {
		return 0, nil
	}
	changed := 0
	for start := 0; start < rows; {
		n := min(maxRows, 1<<(bits.Len(uint(rows-start))-1)) // the largest power of two that fits
		res, err := t.q.ExecContext(ctx, head+t.s.valuesList(cols, n)+tail, args[start*cols:(start+n)*cols]...)
		if err != nil {
			return changed, err
		}
		affected, err := res.RowsAffected()
		if err != nil {
			return changed, err
		}
		changed += int(affected)
		start += n
	}
	return changed, nil
}

// valuesList returns "VALUES (?, ?), (?, ?)…" for rows rows of cols
// parameters.
func (s *Store) valuesList(cols, rows int) string {
	var b strings.Builder
	b.Grow(8 + rows*(cols*3+2))
	b.WriteString("VALUES ")
	n := 1
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		b.WriteString(s.placeholders(n, cols))
		n += cols
		b.WriteByte(')')
	}
	return b.String()
}

// unnestList returns "SELECT * FROM unnest(CAST($first AS TEXT[]), …)"
// for columns of types.
func unnestList(types []string, first int) string {
	var b strings.Builder
	b.WriteString("SELECT * FROM unnest(")
	for i, typ := range types {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "CAST($%d AS %s[])", first+i, typ)
	}
	b.WriteByte(')')
	return b.String()
}

// columnArrays turns rows of values (as flush builds them) into one slice per
// column, for unnestList: []string, []*int64 (nil for NULL), []int64,
// []bool or []time.Time.
func columnArrays(types []string, args []any) []any {
	cols := len(types)
	rows := len(args) / cols
	out := make([]any, cols)
	for c, typ := range types {
		at := func(r int) any { return args[r*cols+c] }
		switch typ {
		case "TEXT":
			a := make([]string, rows)
			for r := range a {
				a[r] = at(r).(string)
			}
			out[c] = a
		case "BIGINT":
			a := make([]*int64, rows)
			for r := range a {
				switch v := at(r).(type) {
				case int64:
					a[r] = &v
				case sql.Null[int64]:
					if v.Valid {
						a[r] = &v.V
					}
				default:
					panic(fmt.Sprintf("columnArrays: %T in a BIGINT column", v))
				}
			}
			out[c] = a
		case "INTEGER":
			a := make([]int64, rows)
			for r := range a {
				a[r] = int64(at(r).(int))
			}
			out[c] = a
		case "BOOLEAN":
			a := make([]bool, rows)
			for r := range a {
				a[r] = at(r).(bool)
			}
			out[c] = a
		case "TIMESTAMPTZ":
			a := make([]time.Time, rows)
			for r := range a {
				a[r] = at(r).(time.Time)
			}
			out[c] = a
		default:
			panic("columnArrays: no array for type " + typ)
		}
	}
	return out
}
