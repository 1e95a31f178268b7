package sqlstore_test

import (
	"strings"
	"testing"
	"time"

	"github.com/orderd/orderd/internal/fault"
	"github.com/orderd/orderd/internal/order"
	"github.com/orderd/orderd/internal/sqlstore"
	"github.com/orderd/orderd/internal/sqlstore/sqlstoretest"
)

// TestPostgresHangIsTransient: a server that does not answer (here a lock an
// operator holds on orders) fails a transaction and a read, once pgTimeout
// has passed, as a transient error that says so — logged and retried by the
// consumer, a 503 for HTTP — instead of stalling them for as long as it lasts.
func TestPostgresHangIsTransient(t *testing.T) {
	s := sqlstoretest.Open(t, sqlstore.DialectPostgres)
	s.SetPGTimeout(300 * time.Millisecond)
	ctx := t.Context()
	holder, err := s.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if _, err := holder.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	defer holder.ExecContext(ctx, "ROLLBACK") //nolint:errcheck
	if _, err := holder.ExecContext(ctx, "LOCK TABLE orders IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}

	err = s.InTx(ctx, func(tx order.Tx) error {
		_, err := tx.Order(ctx, "hang-1")
		return err
	})
	if fault.KindOf(err) != fault.Transient || !strings.Contains(err.Error(), "did not answer within 300ms") {
		t.Errorf("transaction on a locked table: %v (%v); want transient, saying PostgreSQL did not answer within 300ms", err, fault.KindOf(err))
	}
	_, err = s.GetOrder(ctx, "hang-1")
	if fault.KindOf(err) != fault.Transient {
		t.Errorf("read of a locked table: %v (%v); want transient", err, fault.KindOf(err))
	}
}
