package sqlstore

import "github.com/pressly/goose/v3"

// inboxByOrder is migration 6: the inbox's key becomes (order_id, event_id),
// the event id under the order the event is about (order.EventKey), instead
// of the event id alone.
//
// Event ids are UUIDs, so a key of the id alone put each new entry at a
// random place in the inbox's index: a drain's transaction changed a
// different index page for nearly every event, and the index outgrew
// SQLite's page cache. Under the order id, an order's entries sit beside
// each other and, where order ids are given in sequence, new ones go where
// the last went. orderbench -build cgo-static -store sqlite, alternating
// with the commit before on one day: 53,415 and 46,215 ev/s against 37,317
// and 36,910, the service reading 1.4–1.8 KiB per event instead of 7.8–8.1
// (docs/BENCHMARKS.md, the twenty-fourth round).
//
// Entries recorded before get an empty order_id, and are found for their id under
// any order, as the events recorded under no order are. On SQLite the table
// is rebuilt (its primary key cannot change otherwise); on PostgreSQL the
// column is added and the key replaced in place. Either way the first start
// after the upgrade waits for it once: for 300,000 entries, 0.29–0.53 s on
// SQLite and 0.20 s on PostgreSQL in a scratch test. Going down keeps, for
// an id recorded under several orders, only one of its entries.
func (s *Store) inboxByOrder() *goose.Migration {
	const columns = `event_id, event_name, processed_at, outcome, reason, detail`
	table := func(name, orderColumn, key string) string {
		return `CREATE TABLE ` + name + ` (` + orderColumn + `
			event_id     TEXT NOT NULL,
			event_name   TEXT NOT NULL,
			processed_at TIMESTAMPTZ NOT NULL,
			outcome      TEXT NOT NULL DEFAULT 'applied',
			reason       TEXT NOT NULL DEFAULT '',
			detail       TEXT NOT NULL DEFAULT '',
			PRIMARY KEY (` + key + `)
		)`
	}
	up := s.byDialect("inbox keyed by order",
		[]string{
			table("processed_events_new", `order_id TEXT NOT NULL DEFAULT '',`, `order_id, event_id`),
			`INSERT INTO processed_events_new (` + columns + `) SELECT ` + columns + ` FROM processed_events ORDER BY event_id`,
			`DROP TABLE processed_events`,
			`ALTER TABLE processed_events_new RENAME TO processed_events`,
		},
		[]string{
			`ALTER TABLE processed_events ADD COLUMN order_id TEXT COLLATE "C" NOT NULL DEFAULT ''`,
			`ALTER TABLE processed_events DROP CONSTRAINT processed_events_pkey`,
			`ALTER TABLE processed_events ADD PRIMARY KEY (order_id, event_id)`,
		})
	down := s.byDialect("inbox keyed by event id",
		[]string{
			table("processed_events_old", ``, `event_id`),
			`INSERT OR IGNORE INTO processed_events_old (` + columns + `) SELECT ` + columns +
				` FROM processed_events ORDER BY event_id, order_id`,
			`DROP TABLE processed_events`,
			`ALTER TABLE processed_events_old RENAME TO processed_events`,
		},
		[]string{
			`DELETE FROM processed_events AS p USING processed_events AS q
				WHERE p.event_id = q.event_id AND p.order_id > q.order_id`,
			`ALTER TABLE processed_events DROP CONSTRAINT processed_events_pkey`,
			`ALTER TABLE processed_events ADD PRIMARY KEY (event_id)`,
			`ALTER TABLE processed_events DROP COLUMN order_id`,
		})
	return goose.NewGoMigration(6, up, down)
}
