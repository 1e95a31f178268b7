package sqlstore

import (
	"fmt"

	"github.com/pressly/goose/v3"
)

// byteOrderKeys is migration 3: on PostgreSQL the indexed text columns —
// the keys every event looks up or inserts, and the status of the list
// index — compare as bytes (COLLATE "C") instead of by the database's
// locale. The keys are identifiers, never sorted for people, and every step
// down a B-tree compares them: with a locale other than "C" (C.UTF-8
// included, on PostgreSQL 15) that is a strcoll call instead of a memcmp.
// orderbench -store postgres -events 200000, three alternating pairs with
// the commit before: 29.7k–30.4k ev/s before, 31.3k–32.3k after. SQLite
// already compares text as bytes (BINARY), so there the migration only
// records its version.
//
// The ALTERs rewrite the tables and their indexes under an exclusive lock:
// on a large existing database, expect start-up to wait for it once.
func (s *Store) byteOrderKeys() *goose.Migration {
	alter := func(collation string) *goose.GoFunc {
		var statements []string
		for _, column := range []struct{ table, name string }{
			{"order_items", "order_id"},
			{"orders", "id"},
			{"orders", "status"},
			{"stock", "product_id"},
			{"processed_events", "event_id"},
		} {
			statements = append(statements,
				fmt.Sprintf(`ALTER TABLE %s ALTER COLUMN %s TYPE TEXT COLLATE %s`, column.table, column.name, collation))
		}
		return s.onPostgres("keys compared as bytes", statements...)
	}
	return goose.NewGoMigration(3, alter(`"C"`), alter(`"default"`))
}
