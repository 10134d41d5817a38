#!/usr/bin/env bash
# Runs every test. First installs the Debian packages the tests need when missing (scripts/install-deps.sh); one
# debug build; then, against the built binary, the kill -9 durability test (on SQLite, and on PostgreSQL with
# PostgreSQL itself stopped immediately and fast while Rewind runs), the browser EventSource and web console tests
# (headless Chromium; screenshots in ci-output/console), third-party SSE clients, a full disk, nginx and Caddy in
# front, maintenance by other processes, TLS with HTTP/2, configuration from file and environment, the systemd unit,
# a real Prometheus scraping what the dashboard asks, the `rewind tail` restart test, the fan-out check (browser and
# fan-out also once on PostgreSQL), several nodes on one PostgreSQL log,
# schemathesis against openapi.yaml and the flood of invalid requests; then the Swift suites (unit tests, in-process
# servers over real loopback HTTP, and the PostgreSQL log against a throwaway cluster this script starts). The test
# runner's summary is the last output.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/check-format.sh
swift build --build-tests
# A PostgreSQL cluster of the tests' own (never the system service), for the scripts' PostgreSQL runs and the
# PostgreSQL log's suites; one cluster for the whole run (the durability test stops and starts it on purpose).
postgres_dir=.build/postgres-test
rm -rf "$postgres_dir"
scripts/postgres-cluster.sh start "$postgres_dir" >/dev/null
trap 'scripts/postgres-cluster.sh stop "$postgres_dir" >/dev/null 2>&1 || true' EXIT
python3 scripts/durability-test.py --binary .build/debug/rewind --rounds 3
python3 scripts/durability-test.py --binary .build/debug/rewind --rounds 2 --postgres "$postgres_dir"
python3 scripts/browser-test.py --binary .build/debug/rewind --restarts 2
python3 scripts/browser-test.py --binary .build/debug/rewind --restarts 2 --postgres "$postgres_dir"
python3 scripts/console-test.py --binary .build/debug/rewind --output ci-output/console
python3 scripts/sse-clients-test.py --binary .build/debug/rewind
python3 scripts/disk-full-test.py --binary .build/debug/rewind
python3 scripts/proxy-test.py --binary .build/debug/rewind
python3 scripts/maintenance-test.py --binary .build/debug/rewind
python3 scripts/tls-test.py --binary .build/debug/rewind
python3 scripts/config-test.py --binary .build/debug/rewind
scripts/systemd-test.sh .build/debug/rewind
python3 scripts/prometheus-test.py --binary .build/debug/rewind
python3 scripts/tail-restart-test.py --binary .build/debug/rewind --restarts 3
python3 scripts/fanout-check.py --binary .build/debug/rewind --subscribers 200 --rate 100 --duration 10 --publishers 16 \
    --slow 2 --window-events 256 --no-rate-check
python3 scripts/fanout-check.py --binary .build/debug/rewind --subscribers 200 --rate 100 --duration 10 --publishers 16 \
    --slow 2 --window-events 256 --no-rate-check --postgres "$postgres_dir"
scripts/schemathesis-run.sh .build/debug/rewind
python3 scripts/flood-test.py --binary .build/debug/rewind --duration 20
python3 scripts/flood-test.py --binary .build/debug/rewind --duration 10 --auth
REWIND_TEST_POSTGRES_URL=$(scripts/postgres-cluster.sh url "$postgres_dir")
export REWIND_TEST_POSTGRES_URL
# Several nodes on one PostgreSQL log: fan-out, commit order, kill -9, PostgreSQL restart, a node cut off, nginx.
python3 scripts/cluster-test.py --binary .build/debug/rewind --postgres-dir "$postgres_dir"
# One test at a time: several tests bound how soon something happens (a poll, a deadline, a retention window), and
# on a 2-core machine the others running beside them would decide those figures instead.
swift test --skip-build --no-parallel
