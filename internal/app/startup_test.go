package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orderd/orderd/internal/app"
	"github.com/orderd/orderd/internal/app/apptest"
	"github.com/orderd/orderd/internal/config"
	"github.com/orderd/orderd/internal/httpapi"
	"github.com/orderd/orderd/internal/sqlstore"
	"github.com/orderd/orderd/internal/sqlstore/sqlstoretest"
	"github.com/orderd/orderd/internal/testkit"
)

// logged counts the records in logs (a text handler's output) whose
// message starts with prefix.
func logged(logs *testkit.LogBuffer, prefix string) int {
	return strings.Count(logs.String(), ` msg="`+prefix)
}

// startupConfig is the configuration of an instance on dbURL, with an
// embedded broker and the HTTP server on free ports.
func startupConfig(t *testing.T, dbURL string) config.Config {
	t.Helper()
	env := map[string]string{
		"APP_HOST":            "127.0.0.1",
		"APP_PORT":            "0",
		"DATABASE_URL":        dbURL,
		"EMBEDDED_KAFKA_ADDR": "127.0.0.1:0",
		"EMBEDDED_KAFKA_DIR":  "",
		"LOG_FILE":            "",
		"SHUTDOWN_TIMEOUT":    "10s",
	}
	cfg, err := config.LoadLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, filepath.Join(t.TempDir(), "no.env"))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// TestDatabaseDownAtStartUp (§6 start-up): with PostgreSQL unreachable, the
// service still starts. /readyz answers 503 naming the database, and the
// routes that need it answer 503 problem+json. Once the database answers,
// the schema is migrated, "database opened" is logged (once, and not before)
// and the service becomes ready without a restart.
func TestDatabaseDownAtStartUp(t *testing.T) {
	// The database is reached through a proxy that refuses connections
	// until Reopen.
	dbURL, proxy := proxiedPostgres(t)
	proxy.Close()

	logs := &testkit.LogBuffer{}
	a, err := app.New(t.Context(), startupConfig(t, dbURL), slog.New(slog.NewTextHandler(logs, nil)), app.Options{})
	if err != nil {
		t.Fatalf("app.New with the database down: %v; want the service to start and retry", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	base := "http://" + a.HTTPAddr()

	code, ready := readiness(t, base)
	if code != http.StatusServiceUnavailable || ready.Components["database"].Status != "down" ||
		!strings.Contains(ready.Components["database"].Detail, "not ready yet") {
		t.Errorf("/readyz with the database down: %d %+v; want 503 with the database down, not ready yet", code, ready.Components["database"])
	}
	resp, err := http.Get(base + "/api/v0/orders")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("GET /orders with the database down: %d %s; want 503 application/problem+json", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if n := logged(logs, "database opened"); n != 0 {
		t.Errorf(`"database opened" logged %d times before the database answered`, n)
	}
	if logged(logs, "database not reachable") == 0 {
		t.Error("no warning that the database is not reachable")
	}

	proxy.Reopen()
	deadline := time.Now().Add(45 * time.Second)
	for {
		code, ready = readiness(t, base)
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready 45 s after the database came up: %+v", ready)
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp, err = http.Get(base + "/api/v0/orders")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /orders once ready: %d", resp.StatusCode)
	}
	if n := logged(logs, "database opened"); n != 1 {
		t.Errorf(`"database opened" logged %d times, want once`, n)
	}
}

// TestDatabaseMisconfiguredStopsStartUp: what DATABASE_URL names and cannot
// be waited out stops start-up at once, naming the variable — a SQLite file
// in a directory that does not exist, a PostgreSQL database that does not.
func TestDatabaseMisconfiguredStopsStartUp(t *testing.T) {
	pg, err := url.Parse(sqlstoretest.URL(t, sqlstore.DialectPostgres))
	if err != nil {
		t.Fatal(err)
	}
	pg.Path = "/orderd_no_such_database"
	for name, dbURL := range map[string]string{
		"sqlite":   "sqlite://" + filepath.Join(t.TempDir(), "missing", "orders.db"),
		"postgres": pg.String(),
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			a, err := app.New(ctx, startupConfig(t, dbURL), slog.New(slog.DiscardHandler), app.Options{})
			if err == nil {
				a.Close()
				t.Fatal("app.New succeeded")
			}
			if ctx.Err() != nil || !strings.Contains(err.Error(), "DATABASE_URL") {
				t.Errorf("app.New: %v (context: %v); want an error at once naming DATABASE_URL", err, ctx.Err())
			}
		})
	}
}

// readiness fetches base's /readyz.
func readiness(t *testing.T, base string) (int, httpapi.Readiness) {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r httpapi.Readiness
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("/readyz body: %v", err)
	}
	return resp.StatusCode, r
}

// TestStalledRequestBodyTimesOut: a client that sends a request's headers
// and then stalls mid-body is answered 408 problem+json once the read
// timeout passes, and its connection is closed, instead of held for ever.
func TestStalledRequestBodyTimesOut(t *testing.T) {
	in := apptest.Start(t, apptest.Options{AppOptions: app.Options{HTTPReadTimeout: 500 * time.Millisecond}})
	conn, err := net.Dial("tcp", strings.TrimPrefix(in.BaseURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, "POST /api/v0/orders HTTP/1.1\r\nHost: 127.0.0.1\r\n"+
		"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"orderId\":"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || resp.Header.Get("Content-Type") != httpapi.ProblemContentType ||
		!strings.Contains(string(body), `"reason":"timeout"`) {
		t.Errorf("stalled body: %d %s %s; want 408 problem+json, reason timeout", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

// TestPublishRefusesUnregisteredEvents: the app hands its registry's names
// to POST /events, which refuses an event the consumer would only
// dead-letter.
func TestPublishRefusesUnregisteredEvents(t *testing.T) {
	in := apptest.Start(t, apptest.Options{})
	resp, err := http.Post(in.API+"/events", "application/json", strings.NewReader(`{"id":"e-1","name":"OrderReturned","data":{"orderId":"o-1"}}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "OrderCreated") {
		t.Errorf("POST /events of an unregistered event: %d %s; want 400 naming the registered events", resp.StatusCode, body)
	}
}
