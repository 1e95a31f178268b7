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

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const orderColumns = `id, customer_id, customer_name, status, currency, total_amount,
	shipping_region, shipping_method, shipping_cost, discount, final_total, refund_amount,
	cancellation_reason, tracking_number, created_at, updated_at`

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

// placeholders returns "$from, $from+1, …" for n parameters.
func placeholders(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(from + i))
	}
	return b.String()
}

func nullable(p *int64) sql.Null[int64] {
	if p == nil {
		return sql.Null[int64]{}
	}
	return sql.Null[int64]{V: *p, Valid: true}
}

func pointer(n sql.Null[int64]) *int64 {
	if !n.Valid {
		return nil
	}
	v := n.V
	return &v
}

type rowScanner interface{ Scan(dest ...any) error }

// scanOrder reads one row of orderColumns; items are loaded separately.
func scanOrder(row rowScanner) (*order.Order, error) {
	var (
		o                             order.Order
		status, currency, method      string
		ship, discount, final, refund sql.Null[int64]
		created, updated              timeValue
	)
	err := row.Scan(&o.ID, &o.CustomerID, &o.CustomerName, &status, &currency, &o.TotalAmount,
		&o.ShippingRegion, &method, &ship, &discount, &final, &refund,
		&o.CancellationReason, &o.TrackingNumber, &created, &updated)
	if err != nil {
		return nil, err
	}
	cur, err := order.LookupCurrency(currency)
	if err != nil {
		return nil, fmt.Errorf("order %s: stored currency: %w", o.ID, err)
	}
	o.Status, o.Currency, o.ShippingMethod = order.Status(status), cur, order.ShippingMethod(method)
	o.ShippingCost, o.Discount, o.FinalTotal, o.RefundAmount = pointer(ship), pointer(discount), pointer(final), pointer(refund)
	o.CreatedAt, o.UpdatedAt = created.t, updated.t
	return &o, nil
}

// loadOrder reads one order and its items; forUpdate locks the order row
// until the transaction ends (PostgreSQL; a SQLite write transaction already
// holds the whole database).
func (s *Store) loadOrder(ctx context.Context, q querier, id string, forUpdate bool) (*order.Order, error) {
	query := `SELECT ` + orderColumns + ` FROM orders WHERE id = $1`
	if forUpdate && s.dialect == DialectPostgres {
		query += ` FOR UPDATE`
	}
	o, err := scanOrder(q.QueryRowContext(ctx, query, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, order.NotFound("order " + id)
	}
	if err != nil {
		return nil, classify(fmt.Errorf("load order %s: %w", id, err))
	}
	items, err := loadItems(ctx, q, []string{id})
	if err != nil {
		return nil, err
	}
	o.Items = items[id]
	return o, nil
}

// loadItems reads the items of several orders in one query.
func loadItems(ctx context.Context, q querier, ids []string) (map[string][]order.Item, error) {
	out := make(map[string][]order.Item, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := q.QueryContext(ctx, `SELECT order_id, product_id, quantity, unit_price, total_price, reserved
		FROM order_items WHERE order_id IN (`+placeholders(1, len(ids))+`) ORDER BY order_id, line_no`, args...)
	if err != nil {
		return nil, classify(fmt.Errorf("load order items: %w", err))
	}
	defer rows.Close()
	for rows.Next() {
		var (
			orderID string
			it      order.Item
		)
		if err := rows.Scan(&orderID, &it.ProductID, &it.Quantity, &it.UnitPrice, &it.TotalPrice, &it.Reserved); err != nil {
			return nil, classify(fmt.Errorf("load order items: %w", err))
		}
		out[orderID] = append(out[orderID], it)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(fmt.Errorf("load order items: %w", err))
	}
	return out, nil
}

// itemRowsPerInsert bounds one multi-row INSERT of items (7 parameters a
// row) well below both databases' parameter limits.
const itemRowsPerInsert = 500

// createOrder inserts o and its items; an existing id is a conflict. It
// normalises o's times to what is stored.
func (s *Store) createOrder(ctx context.Context, q querier, o *order.Order) error {
	if o.ID == "" || o.Currency.Code == "" {
		return fmt.Errorf("create order: id and currency are required (id %q, currency %q)", o.ID, o.Currency.Code)
	}
	o.CreatedAt, o.UpdatedAt = storedTime(o.CreatedAt), storedTime(o.UpdatedAt)
	res, err := q.ExecContext(ctx, `INSERT INTO orders (`+orderColumns+`)
		VALUES (`+placeholders(1, 16)+`) ON CONFLICT (id) DO NOTHING`,
		o.ID, o.CustomerID, o.CustomerName, string(o.Status), o.Currency.Code, o.TotalAmount,
		o.ShippingRegion, string(o.ShippingMethod), nullable(o.ShippingCost), nullable(o.Discount),
		nullable(o.FinalTotal), nullable(o.RefundAmount), o.CancellationReason, o.TrackingNumber,
		s.timeArg(o.CreatedAt), s.timeArg(o.UpdatedAt))
	if err != nil {
		return classify(fmt.Errorf("create order %s: %w", o.ID, err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return classify(fmt.Errorf("create order %s: %w", o.ID, err))
	} else if n == 0 {
		return order.Reject(order.ReasonConflict, "order "+o.ID+" already exists")
	}
	for start := 0; start < len(o.Items); start += itemRowsPerInsert {
		end := min(start+itemRowsPerInsert, len(o.Items))
		var values strings.Builder
		args := make([]any, 0, 7*(end-start))
		for i := start; i < end; i++ {
			if i > start {
				values.WriteString(", ")
			}
			values.WriteString("(" + placeholders(len(args)+1, 7) + ")")
			it := o.Items[i]
			args = append(args, o.ID, i+1, it.ProductID, it.Quantity, it.UnitPrice, it.TotalPrice, it.Reserved)
		}
		if _, err := q.ExecContext(ctx, `INSERT INTO order_items
			(order_id, line_no, product_id, quantity, unit_price, total_price, reserved)
			VALUES `+values.String(), args...); err != nil {
			return classify(fmt.Errorf("create order %s: items: %w", o.ID, err))
		}
	}
	return nil
}

// updateOrder saves o's status, computed fields and the reserved flag of
// each item. It normalises o.UpdatedAt to what is stored.
func (s *Store) updateOrder(ctx context.Context, q querier, o *order.Order) error {
	o.UpdatedAt = storedTime(o.UpdatedAt)
	res, err := q.ExecContext(ctx, `UPDATE orders SET status = $2, shipping_cost = $3, discount = $4,
		final_total = $5, refund_amount = $6, cancellation_reason = $7, tracking_number = $8, updated_at = $9
		WHERE id = $1`,
		o.ID, string(o.Status), nullable(o.ShippingCost), nullable(o.Discount), nullable(o.FinalTotal),
		nullable(o.RefundAmount), o.CancellationReason, o.TrackingNumber, s.timeArg(o.UpdatedAt))
	if err != nil {
		return classify(fmt.Errorf("update order %s: %w", o.ID, err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return classify(fmt.Errorf("update order %s: %w", o.ID, err))
	} else if n == 0 {
		return order.NotFound("order " + o.ID)
	}
	// Only rows whose flag changes are written.
	args := []any{o.ID}
	for i, it := range o.Items {
		if it.Reserved {
			args = append(args, i+1)
		}
	}
	query := `UPDATE order_items SET reserved = FALSE WHERE order_id = $1 AND reserved`
	if len(args) > 1 {
		in := `(line_no IN (` + placeholders(2, len(args)-1) + `))`
		query = `UPDATE order_items SET reserved = ` + in + ` WHERE order_id = $1 AND reserved <> ` + in
	}
	if _, err := q.ExecContext(ctx, query, args...); err != nil {
		return classify(fmt.Errorf("update order %s: items: %w", o.ID, err))
	}
	return nil
}
