package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/orderd/orderd/internal/order"
)

// Limits of one ListOrders page.
const (
	DefaultListLimit = 100
	MaxListLimit     = 500
)

// ListQuery selects a page of orders.
type ListQuery struct {
	// Status keeps only orders in this status; "" keeps all.
	Status order.Status
	// Limit is the page size: DefaultListLimit when 0 or less, at most MaxListLimit.
	Limit int
	// After is the cursor: the id of the last order of the previous page.
	After string
}

// snapshot runs fn in a read-only transaction, so that an order and its
// items are read from one consistent state.
func (s *Store) snapshot(ctx context.Context, fn func(q querier) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	if s.dialect == DialectPostgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	rtx, err := s.rdb.BeginTx(ctx, opts)
	if err != nil {
		return classify(fmt.Errorf("begin read: %w", err))
	}
	defer func() { _ = rtx.Rollback() }()
	return fn(rtx)
}

// GetOrder returns an order with its items; a missing order is order.ErrNotFound.
func (s *Store) GetOrder(ctx context.Context, id string) (*order.Order, error) {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	var o *order.Order
	err := s.snapshot(ctx, func(q querier) error {
		var err error
		o, err = s.loadOrder(ctx, q, id)
		return err
	})
	return o, err
}

// ListOrders returns a page of orders in id order, with their items, and the
// cursor of the next page ("" when this page is the last).
func (s *Store) ListOrders(ctx context.Context, lq ListQuery) ([]*order.Order, string, error) {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	if lq.Status != "" && !lq.Status.Valid() {
		return nil, "", order.Reject(order.ReasonInvalid, fmt.Sprintf("status %q is not one of %v", lq.Status, order.Statuses))
	}
	limit := lq.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	var (
		where []string
		args  []any
	)
	if lq.Status != "" {
		args = append(args, string(lq.Status))
		where = append(where, "status = $"+strconv.Itoa(len(args)))
	}
	if lq.After != "" {
		args = append(args, lq.After)
		where = append(where, "id > $"+strconv.Itoa(len(args)))
	}
	query := s.orderSelect()
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	// One row more than the page tells whether another page follows.
	args = append(args, limit+1)
	query += ` ORDER BY id LIMIT $` + strconv.Itoa(len(args))

	var (
		page []*order.Order
		next string
	)
	err := s.snapshot(ctx, func(q querier) error {
		rows, err := q.QueryContext(ctx, query, args...)
		if err != nil {
			return classify(fmt.Errorf("list orders: %w", err))
		}
		defer rows.Close()
		for rows.Next() {
			o, err := s.scanOrder(rows)
			if err != nil {
				return classify(fmt.Errorf("list orders: %w", err))
			}
			page = append(page, o)
		}
		if err := rows.Err(); err != nil {
			return classify(fmt.Errorf("list orders: %w", err))
		}
		if len(page) > limit {
			page = page[:limit]
			next = page[limit-1].ID
		}
		if s.itemsInRow() {
			return nil
		}
		ids := make([]string, len(page))
		for i, o := range page {
			ids[i] = o.ID
		}
		items, err := s.loadItems(ctx, sqlQuery(q), ids)
		if err != nil {
			return err
		}
		for _, o := range page {
			o.Items = items[o.ID]
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return page, next, nil
}

// stock reads one stock record; a missing one is sql.ErrNoRows.
func (s *Store) stock(ctx context.Context, q querier, productID string) (order.Stock, error) {
	var st order.Stock
	err := q.QueryRowContext(ctx, `SELECT product_id, available, reserved FROM stock WHERE product_id = $1`, productID).
		Scan(&st.ProductID, &st.Available, &st.Reserved)
	if errors.Is(err, sql.ErrNoRows) {
		return order.Stock{}, err
	}
	if err != nil {
		return order.Stock{}, classify(fmt.Errorf("load stock of product %s: %w", productID, err))
	}
	return st, nil
}

// GetStock returns a product's stock; a product without a record is order.ErrNotFound.
func (s *Store) GetStock(ctx context.Context, productID string) (order.Stock, error) {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	st, err := s.stock(ctx, s.rdb, productID)
	if errors.Is(err, sql.ErrNoRows) {
		return order.Stock{}, order.NotFound("stock of product " + productID)
	}
	return st, err
}

// SetStock sets how many of a product are available, creating its record if
// needed; what is reserved stays as it is.
func (s *Store) SetStock(ctx context.Context, productID string, available int64) (order.Stock, error) {
	if productID == "" {
		return order.Stock{}, order.Reject(order.ReasonInvalid, "product id is required")
	}
	if available < 0 || available > order.MaxUnits {
		return order.Stock{}, order.Reject(order.ReasonInvalid, fmt.Sprintf("available %d must be 0 to %d", available, order.MaxUnits))
	}
	// The units reserved stay, and with the new available must keep within
	// MaxUnits; otherwise no row comes back.
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	var st order.Stock
	err := s.db.QueryRowContext(ctx, `INSERT INTO stock (product_id, available, reserved, updated_at)
		VALUES ($1, $2, 0, $3)
		ON CONFLICT (product_id) DO UPDATE SET available = excluded.available, updated_at = excluded.updated_at
		WHERE stock.reserved <= $4 - excluded.available
		RETURNING product_id, available, reserved`, productID, available, s.timeArg(s.now()), order.MaxUnits).
		Scan(&st.ProductID, &st.Available, &st.Reserved)
	if errors.Is(err, sql.ErrNoRows) {
		return order.Stock{}, order.Reject(order.ReasonStockLimit, fmt.Sprintf(
			"available %d and the units of product %s reserved by orders would exceed %d in all", available, productID, order.MaxUnits))
	}
	if err != nil {
		return order.Stock{}, classify(fmt.Errorf("set stock of product %s: %w", productID, err))
	}
	s.noteWrite()
	return st, nil
}

// processedEventQuery is ProcessedEvent's read. On SQLite processed_events
// is a view (see inboxInOrders), and the condition reaches the primary keys
// of both its tables (TestProcessedEventUsesKeys).
const processedEventQuery = `SELECT 1 FROM processed_events WHERE order_id IN ($1, '') AND event_id = $2 LIMIT 1`

// ProcessedEvent reports whether the inbox holds the event of k: under its
// order, or under none (see order.EventKey).
func (s *Store) ProcessedEvent(ctx context.Context, k order.EventKey) (bool, error) {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	var one int
	err := s.rdb.QueryRowContext(ctx, processedEventQuery, k.OrderID, k.ID).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, classify(fmt.Errorf("look up event %s of order %q: %w", k.ID, k.OrderID, err))
	}
	return true, nil
}
