package sqlstore

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/orderd/orderd/internal/fault"
)

// TestSQLiteSettings checks what each SQLite connection runs with, whichever
// driver the build has (SQLiteEngine): durability rests on the writer's WAL
// with synchronous=FULL, and the data source names and connection hooks
// that set them differ between the drivers. The path is taken as it is, so a
// '%' in it is not decoded as in a URI.
func TestSQLiteSettings(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	path := filepath.Join(dir, "a%20b.db")
	s, err := Open(ctx, "sqlite://"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the database is not at the path given: %v (engine %s)", err, SQLiteEngine)
	}
	if _, err := os.Stat(filepath.Join(dir, "a b.db")); err == nil {
		t.Errorf("the path's %%20 was decoded (engine %s)", SQLiteEngine)
	}

	writer := map[string]string{
		"journal_mode":       "wal",
		"synchronous":        "2", // FULL
		"foreign_keys":       "1",
		"temp_store":         "2", // MEMORY
		"wal_autocheckpoint": "8000",
		"busy_timeout":       "5000",
	}
	reader := map[string]string{"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "5000"}
	checkPragmas(ctx, t, "writer", s.db, writer)
	checkPragmas(ctx, t, "reader", s.rdb, reader)

	mem, err := Open(ctx, "sqlite://:memory:", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	checkPragmas(ctx, t, ":memory:", mem.db, map[string]string{
		"journal_mode": "memory",
		"foreign_keys": "1",
		"temp_store":   "2",
		"busy_timeout": "5000",
	})
}

func checkPragmas(ctx context.Context, t *testing.T, which string, db *sql.DB, want map[string]string) {
	t.Helper()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for pragma, value := range want {
		var got string
		if err := conn.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
			t.Fatalf("%s: PRAGMA %s: %v", which, pragma, err)
		}
		if got != value {
			t.Errorf("%s: PRAGMA %s = %s, want %s (engine %s)", which, pragma, got, value, SQLiteEngine)
		}
	}
}

// TestSQLiteCancelledStatementIsTransient: a statement still running when
// its context ends (a shutdown, a deadline) is interrupted and fails as
// transient under either driver, so that its record is tried again rather
// than dead-lettered.
func TestSQLiteCancelledStatementIsTransient(t *testing.T) {
	t.Parallel()
	s, err := Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "cancel.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	// Counting to ten billion takes minutes: it ends only by the interrupt.
	var n int64
	err = s.rdb.QueryRowContext(ctx, `WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 10000000000) SELECT count(*) FROM c`).Scan(&n)
	if err == nil {
		t.Fatalf("the count finished (%d) before its context ended", n)
	}
	if k := fault.KindOf(classify(err)); k != fault.Transient {
		t.Errorf("interrupted statement: %v is %v, want transient (engine %s)", err, k, SQLiteEngine)
	}
}
