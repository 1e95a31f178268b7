package sqlstore

import "github.com/pressly/goose/v3"

// inboxInOrders is migration 8: on SQLite the inbox entry of the event that
// created an order goes into the order's own row, in the columns
// inbox_event_id, inbox_event_name and inbox_processed_at, instead of a row
// of its own. The inbox's table is renamed inbox, and processed_events
// becomes a view of both — the table's rows and the orders' entries — with
// the table's columns, so that what reads processed_events (reports, the
// reliability checker, ProcessedEvent, an operator's query) reads every
// entry as before.
//
// Which entry: flush puts in a new order's row the first (by event id) of
// the applied entries that the transaction creating the order records under
// it; almost always the one event that created it. Every other entry — a
// refusal, an event under no order, an event about an order that existed
// already — goes into the table. An entry is written once and never moves,
// and the transaction reads an order's entry with the order (loadInbox
// reads the orders of its keys first), so a second delivery of the event
// finds it.
//
// Why: every row an event inserts is an insert into a B-tree or two, all on
// SQLite's one writer. An OrderCreated inserted its order (the table and two
// keys) and its inbox entry (the table and its key); now only the order.
// orderbench -store sqlite, the static build, three pairs alternating with
// the commit before: 47,836–51,553 ev/s against 42,033–44,524, the
// writer's transactions 12.9–14.2 ms against 16.0–16.7; and as fast as a
// bound that left those entries unwritten (docs/BENCHMARKS.md, the
// twenty-sixth round).
//
// PostgreSQL keeps its table as it is (see itemsInOrders for why); the
// migration only records its version there. Entries recorded before the
// upgrade stay in the table, so the upgrade moves no rows. Going down copies
// the orders' entries into the table.
func (s *Store) inboxInOrders() *goose.Migration {
	up := s.byDialect("creation entries in their order's row",
		[]string{
			`ALTER TABLE processed_events RENAME TO inbox`,
			`ALTER TABLE orders ADD COLUMN inbox_event_id TEXT`,
			`ALTER TABLE orders ADD COLUMN inbox_event_name TEXT`,
			`ALTER TABLE orders ADD COLUMN inbox_processed_at TIMESTAMPTZ`,
			`CREATE VIEW processed_events AS ` + inboxViewQuery,
		}, nil)
	down := s.byDialect("every inbox entry in processed_events",
		[]string{
			`DROP VIEW processed_events`,
			`INSERT INTO inbox (` + inboxColumns + `) ` + inboxInOrdersQuery,
			`ALTER TABLE inbox RENAME TO processed_events`,
			`ALTER TABLE orders DROP COLUMN inbox_processed_at`,
			`ALTER TABLE orders DROP COLUMN inbox_event_name`,
			`ALTER TABLE orders DROP COLUMN inbox_event_id`,
		}, nil)
	return goose.NewGoMigration(8, up, down)
}

// inboxColumns are processed_events' columns, as the table has them.
const inboxColumns = `order_id, event_id, event_name, processed_at, outcome, reason, detail`

// inboxInOrdersQuery reads the entries in orders' rows as rows of the
// inbox; each is an applied event's.
const inboxInOrdersQuery = `SELECT id, inbox_event_id, inbox_event_name, inbox_processed_at, 'applied', '', ''
	FROM orders WHERE inbox_event_id IS NOT NULL`

// inboxViewQuery is the view processed_events on SQLite: the table's entries
// and the orders'. A condition on the view reaches both (SQLite pushes it
// into each arm of a UNION ALL), so a lookup by order id reads the orders'
// primary key.
const inboxViewQuery = `SELECT ` + inboxColumns + ` FROM inbox UNION ALL ` + inboxInOrdersQuery

// inboxInRow reports whether the entry of an order's creating event is in
// the order's row (SQLite, see inboxInOrders) rather than in the inbox's
// table (PostgreSQL).
func (s *Store) inboxInRow() bool { return s.dialect == DialectSQLite }

// inboxTable is the inbox's table: the rest of processed_events on SQLite
// (see inboxInOrders), all of it on PostgreSQL.
func (s *Store) inboxTable() string {
	if s.inboxInRow() {
		return "inbox"
	}
	return "processed_events"
}
