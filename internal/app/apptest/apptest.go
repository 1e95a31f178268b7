// Package apptest starts the whole service in-process for end-to-end tests:
// the real configuration loader, the real wiring of internal/app, a real
// database (SQLite or PostgreSQL) and a real Kafka-protocol broker (kfake).
package apptest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/orderd/orderd/internal/app"
	"github.com/orderd/orderd/internal/config"
	"github.com/orderd/orderd/internal/kafka"
	"github.com/orderd/orderd/internal/logging"
	"github.com/orderd/orderd/internal/sqlstore/sqlstoretest"
)

// Options choose what the instance runs against. Zero values pick an embedded
// broker on a free port and a fresh database of Dialect.
type Options struct {
	Dialect     string            // "sqlite" (default) or "postgres"
	DatabaseURL string            // share a database between instances; "" = a fresh one
	BrokerAddr  string            // an external broker (e.g. Broker's); "" = embedded in the app
	Env         map[string]string // any other settings, as environment variables
	AppOptions  app.Options
	Logs        io.Writer // where the service logs; nil = discard unless -v
}

// Instance is a running service.
type Instance struct {
	App     *app.App
	BaseURL string // http://127.0.0.1:port
	API     string // BaseURL + API_V1_STR
	Config  config.Config

	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
}

// Start runs a service instance until the test ends (or Stop).
func Start(t testing.TB, opts Options) *Instance {
	t.Helper()
	dir := t.TempDir()
	env := map[string]string{
		"APP_PORT":           "0",
		"LOG_FILE":           filepath.Join(dir, "error.log"),
		"LOG_LEVEL":          "debug",
		"EMBEDDED_KAFKA_DIR": "",
		"SHUTDOWN_TIMEOUT":   "10s",
	}
	if opts.Dialect == "" {
		opts.Dialect = "sqlite"
	}
	env["DATABASE_URL"] = opts.DatabaseURL
	if opts.DatabaseURL == "" {
		env["DATABASE_URL"] = sqlstoretest.URL(t, opts.Dialect)
	}
	if opts.BrokerAddr != "" {
		env["KAFKA_BROKER_URL"] = opts.BrokerAddr
	} else {
		env["EMBEDDED_KAFKA_ADDR"] = "127.0.0.1:0"
	}
	for k, v := range opts.Env {
		env[k] = v
	}
	cfg, err := config.LoadLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, filepath.Join(dir, "no.env"))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := opts.Logs
	if logs == nil {
		logs = io.Discard
		if testing.Verbose() {
			logs = testWriter{t}
		}
	}
	logger, closer, err := logging.New(logging.Options{Level: cfg.LogLevel, Format: "text", File: cfg.LogFile, Stderr: logs})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, logger, opts.AppOptions)
	if err != nil {
		cancel()
		t.Fatalf("app.New: %v", err)
	}
	in := &Instance{App: a, Config: cfg, cancel: cancel, done: make(chan error, 1)}
	in.BaseURL = "http://" + a.HTTPAddr()
	in.API = in.BaseURL + cfg.APIV1Str
	go func() { in.done <- a.Run(ctx) }()
	t.Cleanup(func() {
		in.Stop(t)
		_ = closer.Close()
	})
	Eventually(t, 10*time.Second, "HTTP server up", func() bool {
		resp, err := http.Get(in.BaseURL + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return in
}

// Stop shuts the instance down gracefully and waits for Run to return. It is
// safe to call more than once.
func (in *Instance) Stop(t testing.TB) {
	t.Helper()
	in.stopOnce.Do(func() {
		in.cancel()
		select {
		case err := <-in.done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("app.Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("app did not stop within 30s")
		}
	})
}

// Broker starts a standalone embedded broker (as `orderd broker` does) with
// the service's default topics, for tests where instances come and go.
func Broker(t testing.TB, partitions int) *kafka.Embedded {
	t.Helper()
	b, err := kafka.StartEmbedded(kafka.EmbeddedConfig{
		Addr: "127.0.0.1:0", Partitions: partitions,
		Topics: []string{"order-events", "orders-dlq"},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// Eventually polls cond every 20ms until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
