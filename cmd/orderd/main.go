// Command orderd is the order-processing service: it consumes order events
// from Kafka, applies them to orders stored in SQLite or PostgreSQL, routes
// what it cannot process to a dead-letter topic, and serves an HTTP API.
//
// Usage:
//
//	orderd [serve]     run the service (the default)
//	orderd migrate     apply the database schema and exit
//	orderd broker      run only the embedded Kafka-protocol broker
//	orderd produce     publish events (JSON lines from a file or stdin, or --sample N)
//	orderd version     print the version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/orderd/orderd/internal/sqlstore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.LookupEnv, os.Stdin, os.Stdout, os.Stderr)
	os.Exit(exit(err, os.Stderr))
}

// exit reports err on stderr, unless it is errHelp (the usage asked for is
// printed already), and returns the process's exit code.
func exit(err error, stderr io.Writer) int {
	if err != nil && !errors.Is(err, errHelp) {
		fmt.Fprintln(stderr, "orderd:", err)
	}
	return exitCode(err)
}

// usageError is a bad command line or configuration: exit code 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// errHelp is returned after --help was printed: exit code 0.
var errHelp = errors.New("help requested")

func exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case errors.As(err, &ue):
		return 2
	default:
		return 1
	}
}

const usage = `orderd — order processing service

Usage:
  orderd [serve]    run the service: HTTP API, Kafka consumer, embedded broker by default
  orderd migrate    apply the database schema (DATABASE_URL) and exit
  orderd broker     run only the embedded Kafka-protocol broker on EMBEDDED_KAFKA_ADDR
  orderd produce    publish events to KAFKA_BROKER_URL (JSON lines from a file or stdin, or --sample N)
  orderd version    print the version and exit

Configuration comes from the environment and .env (see .env.example).
Run "orderd <command> --help" for a command's flags.
`

// run is main without the process: testable end to end. getenv looks up an
// environment variable and reports whether it is set, so that an explicitly
// empty value (EMBEDDED_KAFKA_DIR= for a memory-only broker) is honoured.
func run(ctx context.Context, args []string, getenv func(string) (string, bool), stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && (args[0][0] != '-' || args[0] == "-h" || args[0] == "--help") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, getenv, stdout, stderr)
	case "migrate":
		return migrate(ctx, args, getenv, stdout, stderr)
	case "broker":
		return broker(ctx, args, getenv, stdout, stderr)
	case "produce":
		return produce(ctx, args, getenv, stdin, stdout, stderr)
	case "version":
		if err := flags("version", "Print the version and exit.", args, stdout, stderr, nil); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "orderd", version())
		fmt.Fprintln(stdout, "sqlite:", sqlstore.SQLiteEngine)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return errHelp
	default:
		fmt.Fprint(stderr, usage)
		return &usageError{fmt.Errorf("unknown command %q", cmd)}
	}
}
