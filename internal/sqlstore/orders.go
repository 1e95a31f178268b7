package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/orderd/orderd/internal/order"
)

// execQuerier is what statements go through: *sql.Tx, *sql.DB or, in a
// SQLite transaction, a stmtCache.
type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// rowIter is what reading rows needs: *sql.Rows and pgx.Rows have it.
type rowIter interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// rowSet is the rows of a query: *sql.Rows, or pgx's (see pgxRows).
type rowSet interface {
	rowIter
	Close() error
}

// queryFunc runs a query.
type queryFunc func(ctx context.Context, query string, args ...any) (rowSet, error)

// sqlQuery is q's QueryContext as a queryFunc.
func sqlQuery(q execQuerier) queryFunc {
	return func(ctx context.Context, query string, args ...any) (rowSet, error) {
		return asRowSet(q.QueryContext(ctx, query, args...))
	}
}

// asRowSet returns QueryContext's result as a rowSet (never a non-nil
// interface holding a nil *sql.Rows).
func asRowSet(rows *sql.Rows, err error) (rowSet, error) {
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	execQuerier
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const orderColumns = `id, customer_id, customer_name, status, currency, total_amount,
	shipping_region, shipping_method, shipping_cost, discount, final_total, refund_amount,
	cancellation_reason, tracking_number, created_at, updated_at, initial_status`

// sqliteTimeLayout is fixed-width so that stored times sort as text in time order.
const sqliteTimeLayout = "2006-01-02T15:04:05.000000Z"

// storedTime is t as the store keeps it: UTC, truncated to the microsecond
// (PostgreSQL's precision, used on both dialects so they agree).
func storedTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// timeArg encodes a time for the dialect: a time.Time for PostgreSQL's
// TIMESTAMPTZ, fixed-width RFC 3339 text for SQLite.
func (s *Store) timeArg(t time.Time) any {
	t = storedTime(t)
	if s.dialect == DialectSQLite {
		return t.Format(sqliteTimeLayout)
	}
	return t
}

// timeValue scans a time stored by timeArg on either dialect.
type timeValue struct{ t time.Time }

func (v *timeValue) Scan(src any) error {
	var text string
	switch x := src.(type) {
	case time.Time:
		v.t = x.UTC()
		return nil
	case string:
		text = x
	case []byte:
		text = string(x)
	default:
		return fmt.Errorf("scan time: unexpected %T", src)
	}
	t, err := time.Parse(time.RFC3339Nano, text)
	if err != nil {
		return fmt.Errorf("scan time: %w", err)
	}
	v.t = t.UTC()
	return nil
}

// placeholders returns "$from, $from+1, …" for n parameters, or on SQLite
// as many "?": SQLite looks each "$N" up by name in a list, which for the
// thousands of parameters of a batch's statements costs more than running
// them.
func (s *Store) placeholders(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s.param(from + i))
	}
	return b.String()
}

// param is the placeholder of parameter n (from 1).
func (s *Store) param(n int) string {
	if s.dialect == DialectSQLite {
		return "?"
	}
	return "$" + strconv.Itoa(n)
}

func pointer(n sql.Null[int64]) *int64 {
	if !n.Valid {
		return nil
	}
	v := n.V
	return &v
}

type rowScanner interface{ Scan(dest ...any) error }

// itemsInRow reports whether an order's items are in its row (SQLite, see
// itemsInOrders) rather than in order_items (PostgreSQL).
func (s *Store) itemsInRow() bool { return s.dialect == DialectSQLite }

// orderSelect is the start of a read of orders: orderColumns, where the
// items are in the row the items column, and then the columns extra names
// (scanOrder's extra).
func (s *Store) orderSelect(extra ...string) string {
	columns := orderColumns
	if s.itemsInRow() {
		columns += `, items`
	}
	for _, c := range extra {
		columns += `, ` + c
	}
	return `SELECT ` + columns + ` FROM orders`
}

// scanOrder reads one row of orderSelect: the order, and its items where
// they are in the row (elsewhere loadItems reads them); extra takes the
// columns a query selects after orderSelect's.
func (s *Store) scanOrder(row rowScanner, extra ...any) (*order.Order, error) {
	var (
		o                             order.Order
		status, currency, method      string
		initial, items                string
		ship, discount, final, refund sql.Null[int64]
		created, updated              timeValue
	)
	dest := []any{&o.ID, &o.CustomerID, &o.CustomerName, &status, &currency, &o.TotalAmount,
		&o.ShippingRegion, &method, &ship, &discount, &final, &refund,
		&o.CancellationReason, &o.TrackingNumber, &created, &updated, &initial}
	if s.itemsInRow() {
		dest = append(dest, &items)
	}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return nil, err
	}
	if s.itemsInRow() {
		var err error
		if o.Items, err = parseItems(o.ID, items); err != nil {
			return nil, err
		}
	}
	cur, err := order.LookupCurrency(currency)
	if err != nil {
		return nil, fmt.Errorf("order %s: stored currency: %w", o.ID, err)
	}
	o.Status, o.InitialStatus, o.Currency, o.ShippingMethod = order.Status(status), order.Status(initial), cur, order.ShippingMethod(method)
	o.ShippingCost, o.Discount, o.FinalTotal, o.RefundAmount = pointer(ship), pointer(discount), pointer(final), pointer(refund)
	o.CreatedAt, o.UpdatedAt = created.t, updated.t
	return &o, nil
}

// loadOrder reads one order and its items.
func (s *Store) loadOrder(ctx context.Context, q querier, id string) (*order.Order, error) {
	o, err := s.scanOrder(q.QueryRowContext(ctx, s.orderSelect()+` WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, order.NotFound("order " + id)
	}
	if err != nil {
		return nil, classify(fmt.Errorf("load order %s: %w", id, err))
	}
	if s.itemsInRow() {
		return o, nil
	}
	items, err := s.loadItems(ctx, sqlQuery(q), []string{id})
	if err != nil {
		return nil, err
	}
	o.Items = items[id]
	return o, nil
}

// loadItems reads the items of several orders (distinct ids), in one query
// per inChunks chunk.
func (s *Store) loadItems(ctx context.Context, query queryFunc, ids []string) (map[string][]order.Item, error) {
	out := make(map[string][]order.Item, len(ids))
	err := s.inChunks(ids, func(cond string, args []any) error {
		rows, err := query(ctx, itemsQuery+cond+` ORDER BY order_id, line_no`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		return scanItems(rows, out)
	})
	if err != nil {
		return nil, classify(fmt.Errorf("load order items: %w", err))
	}
	return out, nil
}

// scanItems adds the items of rows (of itemsQuery, in order) to out, by
// order id.
func scanItems(rows rowIter, out map[string][]order.Item) error {
	for rows.Next() {
		var (
			orderID string
			it      order.Item
		)
		if err := rows.Scan(&orderID, &it.ProductID, &it.Quantity, &it.UnitPrice, &it.TotalPrice, &it.Reserved); err != nil {
			return err
		}
		out[orderID] = append(out[orderID], it)
	}
	return rows.Err()
}
