package app

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
)

// logRecorder keeps the messages and attributes of the records it handles,
// and calls onWarn for each warning.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
	onWarn  func()
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.records = append(h.records, r.Clone())
	h.mu.Unlock()
	if r.Level == slog.LevelWarn && h.onWarn != nil {
		h.onWarn()
	}
	return nil
}

// messages returns each record's message with its attributes.
func (h *logRecorder) messages(msg string) []map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]string
	for _, r := range h.records {
		if r.Message != msg {
			continue
		}
		attrs := map[string]string{}
		r.Attrs(func(a slog.Attr) bool {
			attrs[a.Key] = a.Value.String()
			return true
		})
		out = append(out, attrs)
	}
	return out
}

// An unreachable PostgreSQL server is reported as not reachable, and the
// store is not logged as opened: pgx connects only when pinged.
func TestOpenStoreLogsOpenedOnlyOnceReached(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	h := &logRecorder{onWarn: cancel}
	_, err := openStore(ctx, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2", slog.New(h))
	if err == nil {
		t.Fatal("openStore on a closed port: no error")
	}
	if got := h.messages("database not reachable, retrying"); len(got) != 1 {
		t.Errorf("warnings about the unreachable database: %v, want one", got)
	}
	if got := h.messages("database opened"); len(got) != 0 {
		t.Errorf("logged %q before the database answered: %v", "database opened", got)
	}

	h = &logRecorder{}
	path := filepath.Join(t.TempDir(), "orders.db")
	st, err := openStore(t.Context(), "sqlite://"+path, slog.New(h))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got := h.messages("database opened")
	if len(got) != 1 || got[0]["dialect"] != "sqlite" || got[0]["path"] != path {
		t.Errorf(`"database opened" records: %v, want one with dialect sqlite and path %s`, got, path)
	}
}
