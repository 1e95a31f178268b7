#!/usr/bin/env bash
# orderd's reliability suite (issue 5).
#
#   reliability/run.sh                          short profile (CI, a few minutes on 2 cores)
#   RELIABILITY_PROFILE=full reliability/run.sh full profile (on demand, ~10-20 minutes)
#   RELIABILITY_RUN='TestPoisonMix' reliability/run.sh   one scenario
#   RELIABILITY_SKIP='TestRefusalRedelivered' reliability/run.sh   all but one
#   reliability/run.sh fuzz [10s]               each fuzz target for a short while
#
# The suite builds ./cmd/orderd, runs `orderd broker` and `orderd serve` as
# processes against PostgreSQL (TEST_DATABASE_URL, default
# postgres://postgres@127.0.0.1:5432/test) and SQLite, and writes
# docs/RELIABILITY.md from its own results (RELIABILITY_REPORT= to skip it).
# RELIABILITY_LOGS=<dir> keeps every process's log.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == fuzz ]]; then
	t="${2:-10s}"
	go test -run '^$' -fuzz '^FuzzDecode$' -fuzztime "$t" ./internal/events/
	go test -run '^$' -fuzz '^FuzzCreateDecode$' -fuzztime "$t" ./internal/order/create/
	go test -run '^$' -fuzz '^FuzzHTTPBodies$' -fuzztime "$t" ./internal/httpapi/
	exit 0
fi

export RELIABILITY_PROFILE="${RELIABILITY_PROFILE:-short}"
export RELIABILITY_REPORT="${RELIABILITY_REPORT-$PWD/docs/RELIABILITY.md}"
go test -tags reliability -run "${RELIABILITY_RUN:-.}" -skip "${RELIABILITY_SKIP:-}" -count=1 -timeout 30m -v ./reliability/ |
	grep --line-buffered -v -e '^=== RUN' -e '^=== NAME' -e '^        {'
