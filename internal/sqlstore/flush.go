package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"github.com/orderd/orderd/internal/fault"
)

// The columns of the rows flush writes, with their types where PostgreSQL
// needs them spelled out: in a VALUES list that is not an INSERT's, it
// cannot tell a parameter's type from its column. "" is an INSERT column.
var (
	inboxColumns = []string{"", "", "", "", "", ""}
	orderRowCols = make([]string, 16)
	itemColumns  = make([]string, 7)
	orderUpdate  = []string{"TEXT", "TEXT", "BIGINT", "BIGINT", "BIGINT", "BIGINT", "TEXT", "TEXT", "TIMESTAMPTZ"}
	itemUpdate   = []string{"TEXT", "INTEGER", "BOOLEAN"}
	stockUpdate  = []string{"TEXT", "BIGINT", "BIGINT", "TIMESTAMPTZ"}
)

// flush writes what the transaction changed: new inbox entries, new orders
// with their items, changed orders and reserved flags, changed stock — each
// in one statement per table (more only for a very large batch), rows in key
// order. Rows it reads were locked when read (PostgreSQL), so it takes no
// new lock on them; new keys it inserts in key order.
//
// An inbox entry or an order that another transaction inserted since this one
// looked for it (another delivery of the same event, committed meanwhile) is
// a transient error: the whole transaction is undone and tried again, and
// then finds it.
func (t *tx) flush(ctx context.Context) error {
	now := t.s.timeArg(t.s.now())
	if err := t.flushInbox(ctx, now); err != nil {
		return err
	}
	if err := t.flushOrders(ctx); err != nil {
		return err
	}
	return t.flushStock(ctx, now)
}

// sortedKeys returns the keys of m whose row satisfies keep, in order.
func sortedKeys[R any](m map[string]R, keep func(R) bool) []string {
	var out []string
	for k, r := range m {
		if keep(r) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

var errConcurrent = errors.New("another transaction inserted it since this one looked (another delivery of the same event?); the transaction is tried again")

func (t *tx) flushInbox(ctx context.Context, now any) error {
	ids := sortedKeys(t.inbox, func(r inboxRow) bool { return r.added })
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, 0, len(inboxColumns)*len(ids))
	for _, id := range ids {
		r := t.inbox[id]
		outcome := outcomeApplied
		if r.entry.Refused {
			outcome = outcomeRefused
		}
		args = append(args, id, r.name, now, outcome, r.entry.Refusal.Reason, r.entry.Refusal.Detail)
	}
	n, err := t.execRows(ctx, `INSERT INTO processed_events (event_id, event_name, processed_at, outcome, reason, detail) VALUES `,
		inboxColumns, ` ON CONFLICT (event_id) DO NOTHING`, args)
	if err != nil {
		return classify(fmt.Errorf("record %d events in the inbox: %w", len(ids), err))
	}
	if n != len(ids) {
		return fault.AsTransient(fmt.Errorf("record %d events in the inbox: %d already there: %w", len(ids), len(ids)-n, errConcurrent))
	}
	return nil
}

func (t *tx) flushOrders(ctx context.Context) error {
	created := sortedKeys(t.orders, func(r orderRow) bool { return r.dirty && r.base == nil })
	updated := sortedKeys(t.orders, func(r orderRow) bool { return r.dirty && r.base != nil })
	if len(created) > 0 {
		args := make([]any, 0, len(orderRowCols)*len(created))
		var items []any
		for _, id := range created {
			o := t.orders[id].cur
			args = append(args, o.ID, o.CustomerID, o.CustomerName, string(o.Status), o.Currency.Code, o.TotalAmount,
				o.ShippingRegion, string(o.ShippingMethod), nullable(o.ShippingCost), nullable(o.Discount),
				nullable(o.FinalTotal), nullable(o.RefundAmount), o.CancellationReason, o.TrackingNumber,
				t.s.timeArg(o.CreatedAt), t.s.timeArg(o.UpdatedAt))
			for i, it := range o.Items {
				items = append(items, o.ID, i+1, it.ProductID, it.Quantity, it.UnitPrice, it.TotalPrice, it.Reserved)
			}
		}
		n, err := t.execRows(ctx, `INSERT INTO orders (`+orderColumns+`) VALUES `, orderRowCols, ` ON CONFLICT (id) DO NOTHING`, args)
		if err != nil {
			return classify(fmt.Errorf("create %d orders: %w", len(created), err))
		}
		if n != len(created) {
			return fault.AsTransient(fmt.Errorf("create %d orders: %d already there: %w", len(created), len(created)-n, errConcurrent))
		}
		if _, err := t.execRows(ctx, `INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price, total_price, reserved) VALUES `,
			itemColumns, ``, items); err != nil {
			return classify(fmt.Errorf("create %d orders: items: %w", len(created), err))
		}
	}
	if len(updated) == 0 {
		return nil
	}
	args := make([]any, 0, len(orderUpdate)*len(updated))
	var items []any
	for _, id := range updated {
		r := t.orders[id]
		o := r.cur
		args = append(args, o.ID, string(o.Status), nullable(o.ShippingCost), nullable(o.Discount), nullable(o.FinalTotal),
			nullable(o.RefundAmount), o.CancellationReason, o.TrackingNumber, t.s.timeArg(o.UpdatedAt))
		for i, it := range o.Items {
			if it.Reserved != r.base.Items[i].Reserved {
				items = append(items, o.ID, i+1, it.Reserved)
			}
		}
	}
	n, err := t.execRows(ctx, `WITH v (id, status, shipping_cost, discount, final_total, refund_amount,
		cancellation_reason, tracking_number, updated_at) AS (VALUES `, orderUpdate, `)
		UPDATE orders SET status = v.status, shipping_cost = v.shipping_cost, discount = v.discount,
		final_total = v.final_total, refund_amount = v.refund_amount, cancellation_reason = v.cancellation_reason,
		tracking_number = v.tracking_number, updated_at = v.updated_at
		FROM v WHERE orders.id = v.id`, args)
	if err != nil {
		return classify(fmt.Errorf("update %d orders: %w", len(updated), err))
	}
	if n != len(updated) {
		return fmt.Errorf("update %d orders: %d rows changed: an order read in this transaction is gone", len(updated), n)
	}
	if _, err := t.execRows(ctx, `WITH v (order_id, line_no, reserved) AS (VALUES `, itemUpdate, `)
		UPDATE order_items SET reserved = v.reserved
		FROM v WHERE order_items.order_id = v.order_id AND order_items.line_no = v.line_no`, items); err != nil {
		return classify(fmt.Errorf("update %d orders: items: %w", len(updated), err))
	}
	return nil
}

func (t *tx) flushStock(ctx context.Context, now any) error {
	ids := sortedKeys(t.stock, func(r stockRow) bool { return r.dirty })
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, 0, len(stockUpdate)*len(ids))
	for _, id := range ids {
		st := t.stock[id].st
		args = append(args, id, st.Available, st.Reserved, now)
	}
	n, err := t.execRows(ctx, `WITH v (product_id, available, reserved, updated_at) AS (VALUES `, stockUpdate, `)
		UPDATE stock SET available = v.available, reserved = v.reserved, updated_at = v.updated_at
		FROM v WHERE stock.product_id = v.product_id`, args)
	if err != nil {
		return classify(fmt.Errorf("update stock of %d products: %w", len(ids), err))
	}
	if n != len(ids) {
		return fmt.Errorf("update stock of %d products: %d rows changed: a stock record read in this transaction is gone", len(ids), n)
	}
	return nil
}

// maxRows bounds the rows of one statement of execRows.
const maxRows = 256

// execRows runs head + a VALUES list + tail for args, which are rows of
// len(types) values each, and returns how many rows the statements changed.
// The rows go maxRows to a statement, the rest in statements of a power of
// two each (250 rows: 128, 64, 32, 16, 8, 2), so that a handful of statement
// shapes serve every batch and stay prepared (see stmtCache). types are the
// columns' types for PostgreSQL (see orderUpdate); "" leaves a parameter as
// it is.
func (t *tx) execRows(ctx context.Context, head string, types []string, tail string, args []any) (int, error) {
	cols := len(types)
	rows := len(args) / cols
	changed := 0
	for start := 0; start < rows; {
		n := min(maxRows, 1<<(bits.Len(uint(rows-start))-1)) // the largest power of two that fits
		res, err := t.q.ExecContext(ctx, head+t.valuesList(types, n)+tail, args[start*cols:(start+n)*cols]...)
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

// valuesList returns "($1, $2), ($3, $4)…" for rows rows of len(types)
// parameters, each cast to its type on PostgreSQL.
func (t *tx) valuesList(types []string, rows int) string {
	var b strings.Builder
	b.Grow(rows * len(types) * 7)
	n := 1
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c, typ := range types {
			if c > 0 {
				b.WriteString(", ")
			}
			ph := t.s.param(n)
			n++
			if typ != "" && t.s.dialect == DialectPostgres {
				ph = "CAST(" + ph + " AS " + typ + ")"
			}
			b.WriteString(ph)
		}
		b.WriteByte(')')
	}
	return b.String()
}
