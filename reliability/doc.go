// Package reliability is orderd's Jepsen-style reliability suite. Its tests
// (build tag "reliability") build the real orderd binary, run `orderd broker`
// and several `orderd serve` instances as separate processes against
// PostgreSQL or SQLite, drive them with events produced by franz-go while
// injecting faults (poison records, SIGKILL, group churn, a database outage
// through a TCP proxy, broker fault injection and restarts, a stock race),
// and check after each scenario that every event was applied exactly once or
// dead-lettered with its headers, against a model replayed from the log.
//
// Run it with reliability/run.sh (RELIABILITY_PROFILE=short or full); the
// script writes docs/RELIABILITY.md from the suite's own results.
package reliability
