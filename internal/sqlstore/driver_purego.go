//go:build !cgo

package sqlstore

import (
	"errors"
	"fmt"

	"modernc.org/sqlite"
)

// SQLiteEngine names the SQLite this binary was built with. Without cgo
// (CGO_ENABLED=0, the README's first release build) it is modernc.org/sqlite,
// SQLite's C translated to Go: no C compiler needed. With cgo it is the C
// library itself, see driver_cgo.go.
const SQLiteEngine = "Go translation (modernc.org/sqlite)"

// sqliteDriver is the database/sql driver name the store opens SQLite with.
const sqliteDriver = "sqlite"

// sqliteDSN is the data source name of a connection to path: the writer's
// (BEGIN IMMEDIATE, WAL, synchronous=FULL) or a reader's.
func sqliteDSN(path string, writer bool, busy int64) string {
	dsn := fmt.Sprintf("%s?_foreign_keys=1&_busy_timeout=%d", path, busy)
	if writer {
		dsn += "&_txlock=immediate&_pragma=temp_store(MEMORY)"
		if path != ":memory:" {
			dsn += fmt.Sprintf("&_journal_mode=WAL&_synchronous=FULL&_pragma=wal_autocheckpoint(%d)", walAutoCheckpoint)
		}
	}
	return dsn
}

// sqliteCode returns the primary result code of a SQLite error (SQLITE_BUSY
// is 5, whatever its extended code), and false for any other error.
func sqliteCode(err error) (int, bool) {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return 0, false
	}
	return e.Code() & 0xff, true
}
