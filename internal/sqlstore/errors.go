package sqlstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/orderd/orderd/internal/fault"
	"github.com/orderd/orderd/internal/order"
)

// classify marks err transient when it comes from an outage that is expected
// to end: the database unreachable, a connection lost, a timeout, a lock or
// serialisation conflict that a new attempt resolves. Errors that already
// carry a class (rule errors among them) pass through untouched; everything
// else stays unclassified, including constraint violations, which in this
// store mean a bug rather than a refusal.
func classify(err error) error {
	if err == nil || fault.KindOf(err) != fault.Unclassified {
		return err
	}
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && unstorableSQLStates[pgErr.Code] {
		// Text PostgreSQL cannot store (a NUL character, invalid UTF-8)
		// fails the same way on every attempt: it is invalid input, not an
		// outage and not a bug.
		return order.Reject(order.ReasonInvalid, "text the database cannot store: "+pgErr.Message)
	}
	if transient(err) {
		return fault.AsTransient(err)
	}
	return err
}

// unstorableSQLStates are the PostgreSQL error codes for text it cannot
// store: character_not_in_repertoire (a NUL, invalid UTF-8) and
// untranslatable_character.
var unstorableSQLStates = map[string]bool{"22021": true, "22P05": true}

// SQLite's primary result codes for a lock another connection holds
// (https://sqlite.org/rescode.html), the same whichever driver reports them.
// A statement interrupted because its context ended comes back from either
// driver as the context's error (TestSQLiteCancelledStatementIsTransient).
const (
	sqliteBusy   = 5
	sqliteLocked = 6
)

// transientSQLStates are the PostgreSQL error codes, besides class 08
// (connection exception), that a later attempt can succeed past.
var transientSQLStates = map[string]bool{
	"40001": true, // serialization_failure
	"40P01": true, // deadlock_detected
	"53300": true, // too_many_connections
	"55P03": true, // lock_not_available (lock_timeout)
	"57P01": true, // admin_shutdown
	"57P02": true, // crash_shutdown
	"57P03": true, // cannot_connect_now (starting up, in recovery)
}

// misconfiguredSQLStates are the PostgreSQL error codes of a connection the
// server refused for what DATABASE_URL names: a database or role that does
// not exist, a wrong password.
var misconfiguredSQLStates = map[string]bool{
	"3D000": true, // invalid_catalog_name
	"28000": true, // invalid_authorization_specification
	"28P01": true, // invalid_password
}

// Misconfigured reports whether err is the server refusing the database,
// role or password the URL names. Once the service runs, such a failure is
// transient like any failure to connect (a role may be re-created, a
// password rotated); at start-up it is a configuration to mend.
func Misconfigured(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && misconfiguredSQLStates[pgErr.Code]
}

func transient(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || transientSQLStates[pgErr.Code]
	}
	if code, ok := sqliteCode(err); ok {
		return code == sqliteBusy || code == sqliteLocked
	}
	// A failure to connect, whatever its cause (refused, DNS, TLS,
	// authentication), stops every message alike: waiting beats dead-lettering.
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return true
	}
	var netErr net.Error
	switch {
	// A cancelled context means the work was abandoned (shutdown), not
	// refused: it must be tried again, never dead-lettered.
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, context.Canceled),
		errors.Is(err, driver.ErrBadConn),
		errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ETIMEDOUT),
		errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH),
		pgconn.Timeout(err),
		pgconn.SafeToRetry(err):
		return true
	case errors.As(err, &netErr):
		// Any failed network operation (dial, read, write) on the
		// connection to the database.
		return true
	}
	return false
}
