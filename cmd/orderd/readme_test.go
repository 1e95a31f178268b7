package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orderd/orderd/internal/testkit"
)

// TestReadmeWalkThrough runs the README's walk-through as written, each
// command through bash, against the real binary on the embedded defaults
// (on free ports, in a temporary directory), and checks what the README says
// each step shows. It needs kcat, which .ci/run installs: without it the test
// is skipped, except in CI.
func TestReadmeWalkThrough(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	if _, err := exec.LookPath("kcat"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("kcat is not installed; .ci/run installs it")
		}
		t.Skip("kcat is not installed (apt-get install kcat)")
	}
	steps := walkThrough(t)
	if len(steps) < 8 {
		t.Fatalf("the README's walk-through has %d commands; did its layout change?", len(steps))
	}

	dir := t.TempDir()
	bin := filepath.Join(dir, "orderd")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr, brokerAddr := testkit.FreeAddr(t), testkit.FreeAddr(t)
	env := append(os.Environ(),
		"APP_PORT="+httpAddr[strings.LastIndex(httpAddr, ":")+1:],
		"EMBEDDED_KAFKA_ADDR="+brokerAddr,
		"EMBEDDED_KAFKA_DIR="+filepath.Join(dir, "kafka"),
		"DATABASE_URL=sqlite://"+filepath.Join(dir, "orders.db"),
		"LOG_FILE="+filepath.Join(dir, "error.log"),
	)

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	serve := exec.CommandContext(ctx, bin)
	serve.Dir, serve.Env = root, env
	var serveLog strings.Builder
	serve.Stdout, serve.Stderr = &serveLog, &serveLog
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = serve.Process.Signal(os.Interrupt)
		_ = serve.Wait()
		if t.Failed() {
			t.Logf("the service's log:\n%s", serveLog.String())
		}
	}()

	// Each step as written, but with the binary just built for go run, and
	// the free ports for the README's.
	bash := func(step string) (string, error) {
		cmd := strings.NewReplacer(
			"go run ./cmd/orderd", bin,
			"localhost:8000", httpAddr,
			"localhost:9092", brokerAddr,
		).Replace(step)
		c := exec.CommandContext(ctx, "bash", "-c", "set -o pipefail; "+cmd)
		c.Dir, c.Env = root, env
		out, err := c.CombinedOutput()
		return string(out), err
	}
	shell := func(step string) {
		t.Helper()
		if out, err := bash(step); err != nil {
			t.Fatalf("%s: %v\n%s", step, err, out)
		}
	}
	// until runs step until it succeeds with every one of want in its
	// output.
	until := func(step string, want ...string) string {
		t.Helper()
		last := ""
		for {
			out, err := bash(step)
			missing := ""
			if err != nil {
				missing = "(success: " + err.Error() + ")"
			} else {
				last = out
			}
			for _, w := range want {
				if missing == "" && !strings.Contains(out, w) {
					missing = w
					break
				}
			}
			if missing == "" {
				return out
			}
			if ctx.Err() != nil {
				t.Fatalf("%s: its output never held %q; the last that ran:\n%s", step, missing, last)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	until("curl -sf localhost:8000/readyz", `"ready":true`)

	for _, step := range steps {
		switch {
		case strings.Contains(step, "/orders/12345"):
			// "shipping 0.00, discount 15.00, final total 135.00, status processing"
			until(step, `"status":"processing"`, `"shipping_cost":0.00`, `"discount":15.00`, `"final_total":135.00`)
		case strings.Contains(step, "orders-dlq"):
			// The three bad events, with the reason in the headers; the
			// value byte for byte.
			out := until(step, "broken", "ev-unknown-1", "ev-fraud-1")
			if n := strings.Count(out, "error_reason="); n != 3 {
				t.Errorf("%s: %d records with error_reason, want 3:\n%s", step, n, out)
			}
		case strings.Contains(step, "message_broker/status"):
			until(step, `"state":"running"`)
		case strings.Contains(step, "readyz"):
			until(step, `"ready":true`)
		default:
			shell(step)
		}
	}
	// Every record is accounted for: the seed's event twice (orderd
	// produce, then kcat: a duplicate), the thousand generated ones, and
	// the three bad ones dead-lettered.
	until("curl -s localhost:8000/api/v0/message_broker/status", `"handled":1002,"dead_lettered":3`)
}

// walkThrough returns the commands of the README's walk-through, without
// its comments.
func walkThrough(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var steps []string
	section, block := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case section && strings.HasPrefix(line, "```"):
			block = !block
		case block:
			if s := strings.TrimSpace(line); s != "" && !strings.HasPrefix(s, "#") {
				steps = append(steps, line)
			}
		case strings.HasPrefix(line, "#"):
			section = line == "### Walk-through"
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return steps
}
