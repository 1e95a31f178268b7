package sqlstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/orderd/orderd/internal/fault"
	"github.com/orderd/orderd/internal/order"
)

// TestClassify covers the error shapes the real-database tests cannot
// provoke on demand (server shutdown, too many connections, a reset
// connection). The drivers' own error types are used as they return them.
func TestClassify(t *testing.T) {
	t.Parallel()
	pg := func(code string) error { return fmt.Errorf("query: %w", &pgconn.PgError{Code: code, Message: "x"}) }
	opErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", errno)}
	}
	rule := order.Reject(order.ReasonOutOfStock, "none left")
	tests := []struct {
		name string
		err  error
		want fault.Kind
	}{
		{"connection exception 08006", pg("08006"), fault.Transient},
		{"connection does not exist 08003", pg("08003"), fault.Transient},
		{"admin shutdown 57P01", pg("57P01"), fault.Transient},
		{"crash shutdown 57P02", pg("57P02"), fault.Transient},
		{"cannot connect now 57P03", pg("57P03"), fault.Transient},
		{"serialization failure 40001", pg("40001"), fault.Transient},
		{"deadlock 40P01", pg("40P01"), fault.Transient},
		{"too many connections 53300", pg("53300"), fault.Transient},
		{"unique violation 23505", pg("23505"), fault.Unclassified},
		{"check violation 23514 is a bug", pg("23514"), fault.Unclassified},
		{"syntax error 42601", pg("42601"), fault.Unclassified},
		{"connection refused", opErr(syscall.ECONNREFUSED), fault.Transient},
		{"connection reset", fmt.Errorf("exec: %w", opErr(syscall.ECONNRESET)), fault.Transient},
		{"broken pipe", syscall.EPIPE, fault.Transient},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), fault.Transient},
		{"cancelled", context.Canceled, fault.Transient},
		{"bad connection", driver.ErrBadConn, fault.Transient},
		{"pgconn closed", pgconn.ErrConnClosed, fault.Transient},
		{"connect error", &pgconn.ConnectError{}, fault.Transient},
		{"rule error passes through", rule, fault.Permanent},
		{"already permanent", fault.AsPermanent("x", errors.New("x")), fault.Permanent},
		{"anything else", errors.New("no such table: orders"), fault.Unclassified},
		{"nil", nil, fault.Unclassified},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := classify(tt.err)
			if k := fault.KindOf(got); k != tt.want {
				t.Errorf("kind = %v, want %v", k, tt.want)
			}
			if tt.err != nil && !errors.Is(got, tt.err) {
				t.Errorf("classify(%v) = %v lost the original error", tt.err, got)
			}
		})
	}
	if got := classify(rule); got != rule {
		t.Errorf("rule error was wrapped: %v", got)
	}
}

// TestSQLiteBusyIsTransient makes a second store on the same file (another
// process, as far as SQLite knows) give up on the write lock after a short
// busy timeout: SQLITE_BUSY must be transient.
func TestSQLiteBusyIsTransient(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	url := "sqlite://" + filepath.Join(t.TempDir(), "busy.db")
	openStore := func(busy time.Duration) *Store {
		s, err := open(ctx, url, nil, busy)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		return s
	}
	holder, other := openStore(sqliteBusyTimeout), openStore(50*time.Millisecond)

	locked, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- holder.InTx(ctx, func(tx order.Tx) error {
			if _, err := tx.MarkProcessed(ctx, order.EventKey{ID: "holder"}, "test"); err != nil {
				return err
			}
			close(locked)
			<-release
			return nil
		})
	}()
	select {
	case <-locked:
	case err := <-held:
		t.Fatalf("holder: %v", err)
	}
	err := other.InTx(ctx, func(order.Tx) error { return nil })
	close(release)
	if err := <-held; err != nil {
		t.Fatalf("holder: %v", err)
	}
	if code, ok := sqliteCode(err); !ok || code != sqliteBusy {
		t.Fatalf("InTx while another process writes = %v, want SQLITE_BUSY", err)
	}
	if k := fault.KindOf(err); k != fault.Transient {
		t.Errorf("kind = %v, want transient: %v", k, err)
	}
}

func TestDialectOf(t *testing.T) {
	for url, want := range map[string]string{
		"sqlite://orders.db":                 DialectSQLite,
		"sqlite://:memory:":                  DialectSQLite,
		"postgres://u@127.0.0.1/db":          DialectPostgres,
		"postgresql://u@127.0.0.1/db":        DialectPostgres,
		"mysql://u@127.0.0.1/db":             "",
		"orders.db":                          "",
		"SQLITE://orders.db":                 "",
		"postgres:/missing-slash@127.0.0.1/": "",
	} {
		if got := DialectOf(url); got != want {
			t.Errorf("DialectOf(%q) = %q, want %q", url, got, want)
		}
	}
}
