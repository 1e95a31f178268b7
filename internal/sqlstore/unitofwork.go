package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/orderd/orderd/internal/order"
)

// tx is one transaction as the use cases see it (order.Tx), run as a unit of
// work: each row is read from the database at most once and kept, and writes
// change only what is kept. flush writes what changed when the use cases are
// done — each table in one multi-row statement (or a few, for a large batch)
// instead of a statement per call. A batch of events thus costs a handful of
// statements, and Savepoint is an undo journal in memory rather than a round
// trip to the database.
//
// Reads that the changes would affect always come from what is kept, so the
// use cases see their own writes. On PostgreSQL every order row is read FOR
// UPDATE: what flush writes back was computed under the row's lock. Stock
// rows are read without a lock unless lockStock is set: flush writes stock
// as changes (so many reserved, so many released), each only where the row
// as it is then still covers it, and a row that no longer does has the
// whole transaction run again with its stock locked (see inPgTx). Many
// transactions reserve the same popular products; none of them waits for
// another's use cases, only for its write. On SQLite the transaction holds
// the one write lock, so what it reads cannot change under it. Statements
// go through q, the SQLite transaction's statement cache, or on PostgreSQL
// through pg.
type tx struct {
	s  *Store
	q  execQuerier // SQLite
	pg *pgTx       // PostgreSQL

	lockStock bool // read stock FOR UPDATE (PostgreSQL)

	orders map[string]orderRow
	stock  map[string]stockRow
	inbox  map[order.EventKey]inboxRow

	// journal undoes, newest last, each change made inside a savepoint;
	// depth is how many savepoints are open.
	journal []func()
	depth   int
}

// orderRow is one order as the transaction knows it.
type orderRow struct {
	cur   *order.Order // nil: there is no such order
	base  *order.Order // as read from the database; nil when created here
	dirty bool         // cur is to be written
}

// created reports whether flush inserts the order: created here. An entry
// goes into the order's row only then (see inboxInRows), so that one
// predicate decides both.
func (r orderRow) created() bool { return r.dirty && r.base == nil }

// updated reports whether flush updates the order: read, then changed.
func (r orderRow) updated() bool { return r.dirty && r.base != nil }

// stockRow is one product's stock as the transaction knows it: st as the
// use cases changed it, base as it was read. flush writes the difference.
type stockRow struct {
	st     order.Stock
	base   order.Stock
	exists bool
	dirty  bool
}

// inboxRow is one row of the inbox as the transaction knows it: the entry
// of one event key (see order.EventKey).
type inboxRow struct {
	entry  order.InboxEntry
	exists bool
	added  bool // recorded by this transaction: to be inserted
}

func newTx(s *Store, q execQuerier) *tx {
	return &tx{s: s, q: q,
		orders: make(map[string]orderRow), stock: make(map[string]stockRow), inbox: make(map[order.EventKey]inboxRow)}
}

var _ order.Tx = (*tx)(nil)
var _ order.Transactor = (*Store)(nil)

// Savepoint runs fn; when fn fails, every change it made is undone from the
// journal, and fn's error returned.
func (t *tx) Savepoint(_ context.Context, fn func() error) error {
	mark := len(t.journal)
	t.depth++
	err := fn()
	t.depth--
	if err != nil {
		t.undo(mark)
		return err
	}
	if t.depth == 0 {
		t.journal = t.journal[:0] // kept for good: only a rollback undoes it now
	}
	return nil
}

func (t *tx) undo(mark int) {
	for i := len(t.journal) - 1; i >= mark; i-- {
		t.journal[i]()
	}
	clear(t.journal[mark:])
	t.journal = t.journal[:mark]
}

// set changes the row of key in m (one of the transaction's maps),
// journalling its former state inside a savepoint.
func set[K comparable, R any](t *tx, m map[K]R, key K, r R) {
	if t.depth > 0 {
		prev, had := m[key]
		t.journal = append(t.journal, func() {
			if had {
				m[key] = prev
			} else {
				delete(m, key)
			}
		})
	}
	m[key] = r
}

// known returns what the transaction knows of key in m, reading it first
// with load if need be.
func known[R any](ctx context.Context, t *tx, m map[string]R, key string, load func(context.Context, []string) error) (R, error) {
	if r, ok := m[key]; ok {
		return r, nil
	}
	var zero R
	if err := t.checkText(key); err != nil {
		return zero, err
	}
	if err := load(ctx, []string{key}); err != nil {
		return zero, err
	}
	return m[key], nil
}

// markAbsent records in m that the ids it does not hold after a read are
// not in the database.
func markAbsent[K comparable, R any](m map[K]R, ids []K) {
	var absent R
	for _, id := range ids {
		if _, ok := m[id]; !ok {
			m[id] = absent
		}
	}
}

// checkText refuses text PostgreSQL cannot store (a NUL, invalid UTF-8) as
// invalid data before it reaches a statement: on PostgreSQL a failed
// statement would abort the whole transaction, and with it every other event
// of the batch. SQLite stores such text as it is.
func (t *tx) checkText(fields ...string) error {
	if t.s.dialect != DialectPostgres {
		return nil
	}
	for _, f := range fields {
		if !storableText(f) {
			return order.Reject(order.ReasonInvalid, fmt.Sprintf("text the database cannot store: %q", truncateText(f)))
		}
	}
	return nil
}

func storableText(s string) bool { return utf8.ValidString(s) && !strings.Contains(s, "\x00") }

func truncateText(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Preload reads the inbox entries of k.Events, the orders of k.OrderIDs
// with their items, and the stock of k.ProductIDs and of those items'
// products — what is not kept yet, one query per table. On PostgreSQL the
// orders are locked, in id order; so are the stock rows, after them, when
// the transaction locks stock (see tx).
func (t *tx) Preload(ctx context.Context, k order.Keys) error {
	if t.pg != nil {
		return t.preloadPG(ctx, k)
	}
	if err := t.loadInbox(ctx, k.Events); err != nil {
		return err
	}
	if err := t.loadOrders(ctx, k.OrderIDs); err != nil {
		return err
	}
	return t.loadStock(ctx, t.products(k))
}

// products returns k.ProductIDs and the products of the items of the orders
// of k.OrderIDs that the transaction keeps.
func (t *tx) products(k order.Keys) []string {
	products := slices.Clone(k.ProductIDs)
	for _, id := range k.OrderIDs {
		if r := t.orders[id]; r.cur != nil {
			for _, it := range r.cur.Items {
				products = append(products, it.ProductID)
			}
		}
	}
	return products
}

// missing returns the ids, sorted and without repeats, that m does not hold,
// leaving out those the database cannot hold at all (see checkText: the call
// that uses such an id reports it).
func missing[R any](t *tx, m map[string]R, ids []string) []string {
	var out []string
	for _, id := range ids {
		if _, ok := m[id]; ok || t.checkText(id) != nil {
			continue
		}
		out = append(out, id)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// idChunk bounds the ids of one IN (…) list.
const idChunk = 1024

// inChunks calls fn with conditions that together match the ids — "IN (…)"
// or, on PostgreSQL, "= ANY($1)" — and their arguments. On SQLite the ids go
// in chunks of at most idChunk, each list padded to a power of two by
// repeating its last id, so that a few statement shapes serve every batch
// (see stmtCache). On PostgreSQL one array parameter takes them all.
func (s *Store) inChunks(ids []string, fn func(cond string, args []any) error) error {
	if len(ids) == 0 {
		return nil
	}
	if s.dialect == DialectPostgres {
		return fn("= ANY($1)", []any{ids})
	}
	return paddedChunks(ids, idChunk, func(chunk []string) error {
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		return fn("IN ("+s.placeholders(1, len(args))+")", args)
	})
}

// paddedChunks calls fn with keys in chunks of at most size (a power of two),
// each padded to a power of two by repeating its last key: a repeat matches
// nothing new, and a few statement shapes serve every batch (see stmtCache).
func paddedChunks[K any](keys []K, size int, fn func(chunk []K) error) error {
	for start := 0; start < len(keys); start += size {
		chunk := keys[start:min(start+size, len(keys))]
		padded := make([]K, 1<<bits.Len(uint(len(chunk)-1)))
		for i := range padded {
			padded[i] = chunk[min(i, len(chunk)-1)]
		}
		if err := fn(padded); err != nil {
			return err
		}
	}
	return nil
}

// forUpdate is the locking clause of a read of rows that may be changed.
func (t *tx) forUpdate() string {
	if t.s.dialect == DialectPostgres {
		return " FOR UPDATE"
	}
	return ""
}

// The reads of Preload and of the rows it did not keep; each ends in the
// column, or for the inbox the row of columns, its condition (see inChunks
// and inboxReads) applies to. inboxQuery is SQLite's, where the inbox's
// table is inbox (see inboxInOrders); PostgreSQL's is inboxQueryPG. (Orders
// are read with orderSelect; items on PostgreSQL only, as on SQLite they are
// in the order's row.)
const (
	inboxQuery = `SELECT order_id, event_id, event_name, outcome, reason, detail FROM inbox WHERE (order_id, event_id) `
	itemsQuery = `SELECT order_id, product_id, quantity, unit_price, total_price, reserved FROM order_items WHERE order_id `
	stockQuery = `SELECT product_id, available, reserved FROM stock WHERE product_id `
)

// inboxQueryPG is the inbox's read on PostgreSQL. The keys come as two
// arrays, and each pair is looked up on its own: the subquery with OFFSET 0
// is not merged into a join, so the plan is a loop over the pairs, each an
// index lookup, whatever the table's statistics say. As "(order_id,
// event_id) IN (SELECT * FROM unnest(…))" the planner hashed the pairs and
// read the whole primary key to match them (TestInboxReadUsesItsKey).
const inboxQueryPG = `SELECT p.order_id, p.event_id, p.event_name, p.outcome, p.reason, p.detail
	FROM unnest(CAST($1 AS TEXT[]), CAST($2 AS TEXT[])) AS k (order_id, event_id),
		LATERAL (SELECT * FROM processed_events AS e
			WHERE e.order_id = k.order_id AND e.event_id = k.event_id OFFSET 0) AS p`

// query runs a read of the transaction: through pgx on PostgreSQL (see
// pgTx), through t.q on SQLite.
func (t *tx) query(ctx context.Context, query string, args ...any) (rowSet, error) {
	if t.pg != nil {
		return t.pg.query(ctx, query, args...)
	}
	return asRowSet(t.q.QueryContext(ctx, query, args...))
}

func (t *tx) loadInbox(ctx context.Context, keys []order.EventKey) error {
	if t.s.inboxInRow() {
		// An order's row holds an entry of its own (see inboxInOrders),
		// which loadOrders keeps in t.inbox.
		ids := make([]string, 0, len(keys))
		for _, k := range keys {
			if k.OrderID != "" {
				ids = append(ids, k.OrderID)
			}
		}
		if err := t.loadOrders(ctx, ids); err != nil {
			return err
		}
	}
	rows := t.missingInbox(keys)
	err := t.s.inboxReads(rows, func(query string, args []any) error {
		rows, err := t.query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		return t.scanInbox(rows)
	})
	if err != nil {
		return classify(fmt.Errorf("read inbox: %w", err))
	}
	markAbsent(t.inbox, rows)
	return nil
}

// missingInbox returns the inbox rows that the entries of keys are in and
// the transaction does not know yet, sorted and without repeats: each key's
// own row and, for a key under an order, the same id's row under no order
// (see order.EventKey). Like missing, it leaves out keys the database cannot
// hold.
func (t *tx) missingInbox(keys []order.EventKey) []order.EventKey {
	var out []order.EventKey
	for _, k := range keys {
		if t.checkText(k.OrderID, k.ID) != nil {
			continue
		}
		if _, ok := t.inbox[k]; !ok {
			out = append(out, k)
		}
		if bare := (order.EventKey{ID: k.ID}); k.OrderID != "" {
			if _, ok := t.inbox[bare]; !ok {
				out = append(out, bare)
			}
		}
	}
	slices.SortFunc(out, compareEventKeys)
	return slices.Compact(out)
}

func compareEventKeys(a, b order.EventKey) int {
	return cmp.Or(strings.Compare(a.OrderID, b.OrderID), strings.Compare(a.ID, b.ID))
}

// inboxReads calls fn with the reads that together return the inbox rows of
// keys (each sorted, without repeats), and their arguments. On SQLite they
// are inboxQuery for chunks of at most idChunk/2 keys, "IN (VALUES (?, ?),
// …)", padded as inChunks pads (paddedChunks). On PostgreSQL
// one read takes them all, as two arrays (inboxQueryPG).
func (s *Store) inboxReads(keys []order.EventKey, fn func(query string, args []any) error) error {
	if len(keys) == 0 {
		return nil
	}
	if s.dialect == DialectPostgres {
		orders, ids := make([]string, len(keys)), make([]string, len(keys))
		for i, k := range keys {
			orders[i], ids[i] = k.OrderID, k.ID
		}
		return fn(inboxQueryPG, []any{orders, ids})
	}
	return paddedChunks(keys, idChunk/2, func(chunk []order.EventKey) error {
		args := make([]any, 0, 2*len(chunk))
		for _, k := range chunk {
			args = append(args, k.OrderID, k.ID)
		}
		return fn(inboxQuery+"IN ("+s.valuesList(2, len(chunk))+")", args)
	})
}

func (t *tx) scanInbox(rows rowIter) error {
	for rows.Next() {
		var k order.EventKey
		var name, outcome, reason, detail string
		if err := rows.Scan(&k.OrderID, &k.ID, &name, &outcome, &reason, &detail); err != nil {
			return err
		}
		r := inboxRow{exists: true, entry: order.InboxEntry{Name: name}}
		if outcome == outcomeRefused {
			r.entry.Refused, r.entry.Refusal = true, order.Refusal{Reason: reason, Detail: detail}
		}
		t.inbox[k] = r
	}
	return rows.Err()
}

func (t *tx) loadOrders(ctx context.Context, ids []string) error {
	ids = missing(t, t.orders, ids)
	var found []string
	var extra []string
	if t.s.inboxInRow() {
		extra = []string{`inbox_event_id`, `inbox_event_name`}
	}
	err := t.s.inChunks(ids, func(cond string, args []any) error {
		rows, err := t.query(ctx, t.s.orderSelect(extra...)+` WHERE id `+cond+` ORDER BY id`+t.forUpdate(), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		f, err := t.scanOrders(rows)
		found = append(found, f...)
		return err
	})
	if err != nil {
		return classify(fmt.Errorf("load orders: %w", err))
	}
	if !t.s.itemsInRow() {
		items, err := t.s.loadItems(ctx, t.query, found)
		if err != nil {
			return err
		}
		for _, id := range found {
			t.orders[id].cur.Items = items[id] // cur and base are one value until changed
		}
	}
	markAbsent(t.orders, ids)
	return nil
}

// scanOrders keeps the orders of rows and returns their ids. Where an
// order's row holds an inbox entry (see inboxInOrders), the rows are
// loadOrders' and it keeps the entry too.
func (t *tx) scanOrders(rows rowIter) ([]string, error) {
	var (
		found     []string
		extra     []any
		eventID   sql.Null[string]
		eventName sql.Null[string]
	)
	if t.s.inboxInRow() {
		extra = []any{&eventID, &eventName}
	}
	for rows.Next() {
		o, err := t.s.scanOrder(rows, extra...)
		if err != nil {
			return found, err
		}
		t.orders[o.ID] = orderRow{cur: o, base: o}
		found = append(found, o.ID)
		if k := (order.EventKey{OrderID: o.ID, ID: eventID.V}); eventID.Valid {
			if _, known := t.inbox[k]; !known {
				t.inbox[k] = inboxRow{exists: true, entry: order.InboxEntry{Name: eventName.V}}
			}
		}
	}
	return found, rows.Err()
}

func (t *tx) loadStock(ctx context.Context, ids []string) error {
	ids = missing(t, t.stock, ids)
	err := t.s.inChunks(ids, func(cond string, args []any) error {
		query := stockQuery + cond + ` ORDER BY product_id`
		if t.lockStock {
			query += t.forUpdate()
		}
		rows, err := t.query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		return t.scanStock(rows)
	})
	if err != nil {
		return classify(fmt.Errorf("load stock: %w", err))
	}
	markAbsent(t.stock, ids)
	return nil
}

// scanStock keeps the stock records of rows, except those it keeps already
// (and may have changed).
func (t *tx) scanStock(rows rowIter) error {
	for rows.Next() {
		var st order.Stock
		if err := rows.Scan(&st.ProductID, &st.Available, &st.Reserved); err != nil {
			return err
		}
		if _, kept := t.stock[st.ProductID]; !kept {
			t.stock[st.ProductID] = stockRow{st: st, base: st, exists: true}
		}
	}
	return rows.Err()
}

// Order returns a copy of an order with its items; on PostgreSQL its row is
// locked until the transaction ends.
func (t *tx) Order(ctx context.Context, id string) (*order.Order, error) {
	r, err := known(ctx, t, t.orders, id, t.loadOrders)
	if err != nil {
		return nil, err
	}
	if r.cur == nil {
		return nil, order.NotFound("order " + id)
	}
	return r.cur.Clone(), nil
}

// CreateOrder records a new order with its items; an existing id is a
// conflict. It normalises o's times to what is stored.
func (t *tx) CreateOrder(ctx context.Context, o *order.Order) error {
	if o.ID == "" || o.Currency.Code == "" {
		return fmt.Errorf("create order: id and currency are required (id %q, currency %q)", o.ID, o.Currency.Code)
	}
	if err := t.checkText(o.ID, o.CustomerID, o.CustomerName, o.ShippingRegion, o.CancellationReason, o.TrackingNumber); err != nil {
		return err
	}
	for _, it := range o.Items {
		if err := t.checkText(it.ProductID); err != nil {
			return err
		}
	}
	r, err := known(ctx, t, t.orders, o.ID, t.loadOrders)
	if err != nil {
		return err
	}
	if r.cur != nil {
		return order.Reject(order.ReasonConflict, "order "+o.ID+" already exists")
	}
	o.CreatedAt, o.UpdatedAt = storedTime(o.CreatedAt), storedTime(o.UpdatedAt)
	set(t, t.orders, o.ID, orderRow{cur: o.Clone(), dirty: true})
	return nil
}

// UpdateOrder records an order's new status, computed fields and reserved
// flags (the rest of an order never changes). It normalises o.UpdatedAt to
// what is stored.
func (t *tx) UpdateOrder(ctx context.Context, o *order.Order) error {
	if err := t.checkText(o.CancellationReason, o.TrackingNumber); err != nil {
		return err
	}
	r, err := known(ctx, t, t.orders, o.ID, t.loadOrders)
	if err != nil {
		return err
	}
	if r.cur == nil {
		return order.NotFound("order " + o.ID)
	}
	o.UpdatedAt = storedTime(o.UpdatedAt)
	n := r.cur.Clone()
	n.Status, n.CancellationReason, n.TrackingNumber, n.UpdatedAt = o.Status, o.CancellationReason, o.TrackingNumber, o.UpdatedAt
	n.CopyAmounts(o) // the transaction keeps no pointer into its caller's order
	for i := range n.Items {
		n.Items[i].Reserved = i < len(o.Items) && o.Items[i].Reserved
	}
	set(t, t.orders, o.ID, orderRow{cur: n, base: r.base, dirty: true})
	return nil
}

// Stocks returns the stock records of several products; products without
// one are absent from the map.
func (t *tx) Stocks(ctx context.Context, productIDs []string) (map[string]order.Stock, error) {
	if err := t.loadStock(ctx, productIDs); err != nil {
		return nil, err
	}
	out := make(map[string]order.Stock, len(productIDs))
	for _, id := range productIDs {
		if r := t.stock[id]; r.exists {
			out[id] = r.st
		}
	}
	return out, nil
}

// Reserve moves qty from available to reserved, or reports false and changes
// nothing when fewer than qty are available (or the product has no stock
// record). On PostgreSQL "available" is as read, unlocked, by this run of
// the transaction; flush makes sure the row still covers it (see tx).
func (t *tx) Reserve(ctx context.Context, productID string, qty int64) (bool, error) {
	if qty <= 0 {
		return false, fmt.Errorf("reserve %d of product %s: quantity must be positive", qty, productID)
	}
	r, err := known(ctx, t, t.stock, productID, t.loadStock)
	if err != nil {
		return false, err
	}
	if !r.exists || r.st.Available < qty {
		return false, nil
	}
	r.st.Available -= qty
	r.st.Reserved += qty
	r.dirty = true
	set(t, t.stock, productID, r)
	return true, nil
}

// Release moves qty from reserved back to available. Releasing more than is
// reserved, or for a product without stock, is a bug and fails.
func (t *tx) Release(ctx context.Context, productID string, qty int64) error {
	if qty <= 0 {
		return fmt.Errorf("release %d of product %s: quantity must be positive", qty, productID)
	}
	r, err := known(ctx, t, t.stock, productID, t.loadStock)
	if err != nil {
		return err
	}
	if !r.exists || r.st.Reserved < qty {
		return fmt.Errorf("release %d of product %s: no stock record with that many reserved", qty, productID)
	}
	r.st.Available += qty
	r.st.Reserved -= qty
	r.dirty = true
	set(t, t.stock, productID, r)
	return nil
}

// The inbox's outcome column.
const (
	outcomeApplied = "applied"
	outcomeRefused = "refused"
)

// MarkProcessed records the event of k in the inbox as applied, reporting
// false when the inbox holds it already.
func (t *tx) MarkProcessed(ctx context.Context, k order.EventKey, eventName string) (bool, error) {
	return t.mark(ctx, k, eventName, order.InboxEntry{})
}

// MarkRefused records the event of k in the inbox as refused, reporting
// false when the inbox holds it already.
func (t *tx) MarkRefused(ctx context.Context, k order.EventKey, eventName string, r order.Refusal) (bool, error) {
	return t.mark(ctx, k, eventName, order.InboxEntry{Refused: true,
		Refusal: order.Refusal{Reason: storable(r.Reason), Detail: storable(r.Detail)}})
}

func (t *tx) mark(ctx context.Context, k order.EventKey, eventName string, e order.InboxEntry) (bool, error) {
	if err := t.checkText(eventName); err != nil {
		return false, err
	}
	r, err := t.inboxEntry(ctx, k)
	if err != nil {
		return false, err
	}
	if r.exists {
		return false, nil
	}
	e.Name = eventName
	set(t, t.inbox, k, inboxRow{entry: e, exists: true, added: true})
	return true, nil
}

// Inbox returns the inbox entry of the event of k.
func (t *tx) Inbox(ctx context.Context, k order.EventKey) (order.InboxEntry, bool, error) {
	r, err := t.inboxEntry(ctx, k)
	if err != nil {
		return order.InboxEntry{}, false, err
	}
	return r.entry, r.exists, nil
}

// inboxEntry returns what the inbox holds for k, reading it first if need
// be (the preload has usually read it): k's own row or, when that is
// absent, the same id's under no order (see order.EventKey).
func (t *tx) inboxEntry(ctx context.Context, k order.EventKey) (inboxRow, error) {
	if err := t.checkText(k.OrderID, k.ID); err != nil {
		return inboxRow{}, err
	}
	bare := order.EventKey{ID: k.ID}
	r, known := t.inbox[k]
	if _, bareKnown := t.inbox[bare]; !known || (!r.exists && k.OrderID != "" && !bareKnown) {
		if err := t.loadInbox(ctx, []order.EventKey{k}); err != nil {
			return inboxRow{}, err
		}
		r = t.inbox[k]
	}
	if r.exists || k.OrderID == "" {
		return r, nil
	}
	return t.inbox[bare], nil
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

// nullable is a computed amount as a column value.
func nullable(p *int64) sql.Null[int64] {
	if p == nil {
		return sql.Null[int64]{}
	}
	return sql.Null[int64]{V: *p, Valid: true}
}
