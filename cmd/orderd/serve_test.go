package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStopDuringStartUp: SIGINT or SIGTERM (the context ends) while the
// service still waits for its database and broker is a stop as asked: serve
// returns nil (exit 0), and nothing is written to LOG_FILE, which holds errors.
func TestStopDuringStartUp(t *testing.T) {
	dir := t.TempDir()
	logFile := filepath.Join(dir, "error.log")
	env := map[string]string{
		"DATABASE_URL":     "postgres://postgres@127.0.0.1:1/test", // nothing listens on port 1
		"KAFKA_BROKER_URL": "127.0.0.1:1",
		"APP_PORT":         "0",
		"LOG_FILE":         logFile,
	}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- serve(ctx, nil, getenv, &stdout, &stderr) }()
	time.Sleep(300 * time.Millisecond) // within the first retry's 1 s wait
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve = %v, want nil: a stop as asked", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not return after its context ended")
	}
	if b, err := os.ReadFile(logFile); err == nil && len(b) > 0 {
		t.Errorf("LOG_FILE holds %q, want nothing", b)
	}
	if !strings.Contains(stderr.String(), "database not reachable") || !strings.Contains(stderr.String(), "INFO stopped") {
		t.Errorf("log %q, want it to say the database was not reachable, then that it stopped", stderr.String())
	}
}
