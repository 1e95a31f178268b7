#!/usr/bin/env bash
# orderd's reliability suite (issue 5).
#
#   reliability/run.sh                          short profile (CI, a few minutes on 2 cores)
#   RELIABILITY_PROFILE=full reliability/run.sh full profile (on demand, ~10-20 minutes)
#   RELIABILITY_RUN='TestPoisonMix' reliability/run.sh   one scenario
#   RELIABILITY_SKIP='TestRefusalRedelivered' reliability/run.sh   all but one
#   reliability/run.sh fuzz [budget]            each fuzz target briefly (~10 s each, or budget: 30s, 500000x)
#
# The suite builds ./cmd/orderd, runs `orderd broker` and `orderd serve` as
# processes against PostgreSQL (TEST_DATABASE_URL, default
# postgres://postgres@127.0.0.1:5432/test) and SQLite, and writes
# docs/RELIABILITY.md from its own results (RELIABILITY_REPORT= to skip it).
# RELIABILITY_LOGS=<dir> keeps every process's log.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == fuzz ]]; then
	# Budgets are execution counts, about 10 s each here, not durations: with
	# a duration, Go 1.26's fuzz coordinator can fail a target with a bare
	# "context deadline exceeded" as the time runs out (golang/go#75804,
	# fixed in Go 1.27). A budget given as argument ("30s", "500000x")
	# applies to all five.
	go test -run '^$' -fuzz '^FuzzDecode$' -fuzztime "${2:-60000x}" ./internal/events/
	go test -run '^$' -fuzz '^FuzzCreateDecode$' -fuzztime "${2:-150000x}" ./internal/order/create/
	go test -run '^$' -fuzz '^FuzzParsePlain$' -fuzztime "${2:-100000x}" ./internal/order/
	go test -run '^$' -fuzz '^FuzzFixedPointMoney$' -fuzztime "${2:-150000x}" ./internal/order/
	go test -run '^$' -fuzz '^FuzzHTTPBodies$' -fuzztime "${2:-20000x}" ./internal/httpapi/
	exit 0
fi

export RELIABILITY_PROFILE="${RELIABILITY_PROFILE:-short}"
export RELIABILITY_REPORT="${RELIABILITY_REPORT-$PWD/docs/RELIABILITY.md}"
go test -tags reliability -run "${RELIABILITY_RUN:-.}" -skip "${RELIABILITY_SKIP:-}" -count=1 -timeout 30m -v ./reliability/ |
	grep --line-buffered -v -e '^=== RUN' -e '^=== NAME' -e '^        {'
