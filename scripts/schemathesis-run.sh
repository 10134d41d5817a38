#!/usr/bin/env bash
# Fuzzes a live server from openapi.yaml with schemathesis (4.x, installed from PyPI into a virtualenv cached at
# .build/schemathesis-venv, so reruns start at once).
#
# Usage: scripts/schemathesis-run.sh [BINARY]      (default .build/debug/rewind)
# Environment: SCHEMATHESIS_MAX_EXAMPLES (default 40 per operation), SCHEMATHESIS_MAX_TIME (default 150 s),
#   SCHEMATHESIS_SEED (reproduce a run), SCHEMATHESIS_KEEP=1 (keep the server log and report of a passing run;
#   a failing run always keeps them), SCHEMATHESIS_WORKERS (default 1: with several, schemathesis's generator
#   threads trip a CPython 3.11 parser fault, "AST constructor recursion depth mismatch").
#
# Starts `BINARY serve` on a free 127.0.0.1 port with a temporary database (auth off: loopback), seeds a few
# events (so reads, single-event lookups and stream listings have content) and a deleted stream, then runs the
# examples, coverage, fuzzing and stateful (publish, then follow the links in openapi.yaml) phases, with valid
# and invalid data, and every check schemathesis has on every response (scripts/schemathesis.toml, which also
# gives the reasons for its two settings): no 5xx, documented statuses, content types, headers and schemas (JSON
# bodies, problem+json errors and every parsed SSE frame), valid data accepted and invalid data refused, 405 with
# Allow for undocumented methods, missing required headers refused, deleted resources gone and created ones
# there. Exits non-zero on any failure, on a server that dies during the run, or on a run that overruns its hard
# time limit (SCHEMATHESIS_MAX_TIME + 120 s).
#
# SSE requests never hang: scripts/schemathesis_hooks.py gives every generated SSE request `live=false` (the
# stream closes once caught up) and caps JSON long-polls at 1 s; live subscriptions are covered by the Swift
# tests and scripts/flood-test.py. Every request also has a 20 s timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-.build/debug/rewind}
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-40}
max_time=${SCHEMATHESIS_MAX_TIME:-150}
workers=${SCHEMATHESIS_WORKERS:-1}
venv=.build/schemathesis-venv

if [ ! -x "$binary" ]; then
    echo "schemathesis-run: no server binary at $binary" >&2
    exit 2
fi
if ! "$venv/bin/st" --version >/dev/null 2>&1; then
    echo "schemathesis-run: installing schemathesis into $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'schemathesis>=4,<5'
fi
echo "schemathesis-run: $("$venv/bin/st" --version)"

workdir=$(mktemp -d "${TMPDIR:-/tmp}/rewind-schemathesis.XXXXXX")
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
"$binary" serve --host 127.0.0.1 --port "$port" --db "$workdir/rewind.sqlite" --heartbeat 1 >"$workdir/server.log" 2>&1 &
server_pid=$!
stop_server() {
    if kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    wait "$server_pid" 2>/dev/null || true
}
trap stop_server EXIT

for _ in $(seq 300); do
    curl -fsS "$base/healthz" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || { echo "schemathesis-run: server exited early; log:" >&2; cat "$workdir/server.log" >&2; exit 1; }
    sleep 0.1
done
curl -fsS "$base/healthz" >/dev/null || { echo "schemathesis-run: server did not become healthy" >&2; exit 1; }

publish() { # path-and-query content-type body [extra curl args]
    local target=$1 type=$2 body=$3
    shift 3
    curl -fsS -o /dev/null -X POST -H "Content-Type: $type" --data-binary "$body" "$@" "$base/v1/streams/$target"
}
publish orders/events application/json '{"type": "order.created", "data": {"order": 1, "total": 9.5}}'
publish orders/events application/json '[{"data": "second"}, {"type": "note", "data": [1, 2, 3]}]'
publish orders.eu/events application/x-ndjson $'{"data": "a"}\n{"type": "order.created", "data": null}\n'
publish 'chat/events?type=greeting' text/plain $'line one\nline two\r\nline three'
publish chat/events application/json '{"data": "once"}' -H 'Idempotency-Key: seed-1'
publish gone/events text/plain 'soon deleted'
curl -fsS -o /dev/null -X DELETE "$base/v1/streams/gone"

seed_args=()
if [ -n "${SCHEMATHESIS_SEED:-}" ]; then seed_args=(--seed "$SCHEMATHESIS_SEED"); fi
echo "schemathesis-run: server $base (pid $server_pid), up to $max_examples examples per operation, $max_time s"
started=$(date +%s)
status=0
# Run from the work directory, so schemathesis's state (.schemathesis/) stays out of the repository.
root=$(pwd)
(cd "$workdir" && PYTHONDONTWRITEBYTECODE=1 SCHEMATHESIS_HOOKS="$root/scripts/schemathesis_hooks.py" \
    timeout --kill-after=10 $((max_time + 120)) \
    "$root/$venv/bin/st" --config-file "$root/scripts/schemathesis.toml" run "$root/openapi.yaml" --url "$base" \
    --phases examples,coverage,fuzzing,stateful \
    --mode all \
    --max-examples "$max_examples" \
    --max-time "$max_time" \
    --request-timeout 20 \
    --workers "$workers" \
    --suppress-health-check all \
    --report junit --report-dir "$workdir/report" \
    "${seed_args[@]}") || status=$?
elapsed=$(($(date +%s) - started))

server_alive=yes
kill -0 "$server_pid" 2>/dev/null || server_alive=no
server_errors=$(grep -c 'http.status=5[0-9][0-9]\|request failed' "$workdir/server.log" || true)
stop_server
trap - EXIT

echo
echo "schemathesis-run: summary after ${elapsed}s"
echo "  schemathesis exit status: $status$([ "$status" = 124 ] && echo ' (hard time limit hit)')"
echo "  server still running at the end: $server_alive"
echo "  5xx / failed requests in the server log: $server_errors"
echo "  requests the server answered, by method and status:"
grep -o 'http.method=[A-Z]* .*http.status=[0-9]*' "$workdir/server.log" | sed -E 's/http.method=([A-Z]*) .*http.status=([0-9]*)/\1 \2/' \
    | sort | uniq -c | sort -rn | sed 's/^/    /' || true
echo "  server log and JUnit report: $workdir"
if [ "$status" != 0 ] || [ "$server_alive" != yes ]; then
    echo "schemathesis-run: FAILED" >&2
    exit 1
fi
[ -n "${SCHEMATHESIS_KEEP:-}" ] || rm -rf "$workdir"
echo "schemathesis-run: passed"
