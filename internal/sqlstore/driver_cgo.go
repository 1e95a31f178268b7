//go:build cgo

package sqlstore

import (
	"database/sql"
	"errors"
	"fmt"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// SQLiteEngine names the SQLite this binary was built with. Where cgo is on
// (go run and go build where a C compiler is installed) it is SQLite's own
// C library, compiled in by github.com/mattn/go-sqlite3: the one writer
// spends less CPU per event than in the Go translation, and its code is
// smaller, so an idle instance maps fewer pages. orderbench -cgo -store
// sqlite, three alternating pairs against modernc.org/sqlite: drains
// 34,110–35,398 ev/s against 30,793–31,655; embedded defaults idle 29.0–29.2
// MB against 30.9–31.3 (docs/BENCHMARKS.md, the twentieth round). Without
// cgo (CGO_ENABLED=0, the README's first release build) it is
// modernc.org/sqlite, see driver_purego.go. Both run the same SQL on the
// same file format.
const SQLiteEngine = "C library (github.com/mattn/go-sqlite3, cgo)"

// sqliteDriver is the database/sql driver name the store opens SQLite with.
const sqliteDriver = "orderd-sqlite3"

func init() {
	// go-sqlite3 takes no PRAGMA in its data source name beyond its own
	// list; the two it lacks are set on every new connection. Readers
	// never commit, so the checkpoint threshold never acts on them.
	pragmas := fmt.Sprintf("PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = %d", walAutoCheckpoint)
	sql.Register(sqliteDriver, &sqlite3.SQLiteDriver{
		ConnectHook: func(c *sqlite3.SQLiteConn) error {
			_, err := c.Exec(pragmas, nil)
			return err
		},
	})
}

// sqliteDSN is the data source name of a connection to path: the writer's
// (BEGIN IMMEDIATE, WAL, synchronous=FULL) or a reader's. Without a "file:"
// prefix go-sqlite3 opens path as it is, not as a URI whose '%' escapes it
// would decode.
func sqliteDSN(path string, writer bool, busy int64) string {
	dsn := fmt.Sprintf("%s?_foreign_keys=1&_busy_timeout=%d", path, busy)
	if writer {
		dsn += "&_txlock=immediate"
		if path != ":memory:" {
			dsn += "&_journal_mode=WAL&_synchronous=FULL"
		}
	}
	return dsn
}

// sqliteCode returns the primary result code of a SQLite error (SQLITE_BUSY
// is 5, whatever its extended code), and false for any other error.
func sqliteCode(err error) (int, bool) {
	var e sqlite3.Error
	if !errors.As(err, &e) {
		return 0, false
	}
	return int(e.Code), true
}
