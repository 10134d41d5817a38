#!/usr/bin/env bash
# Compares Rewind builds on one ingest workload, alternating them run by run so the machine's drift hits each alike.
# Usage: scripts/bench-ab.sh [--reps N] BINARY... -- BENCH_INGEST_ARGS...
#   e.g. scripts/bench-ab.sh /tmp/rewind-old .build/release/rewind -- --connections 16 --batch 1000 --duration 4
# Each run starts a fresh server (fresh database, port 18940, 127.0.0.1 only) and stops it by PID; the load generator
# is the last binary's `rewind bench ingest`. Prints events/s of every run and the median per binary.
set -euo pipefail
reps=3
if [ "${1:-}" = "--reps" ]; then reps=$2; shift 2; fi
binaries=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do binaries+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#binaries[@]} -ge 1 ] || { echo "usage: $0 [--reps N] BINARY... -- BENCH_INGEST_ARGS..." >&2; exit 2; }
generator=${binaries[${#binaries[@]}-1]}
port=18940
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for rep in $(seq "$reps"); do
    for binary in "${binaries[@]}"; do
        dir=$(mktemp -d)
        "$binary" serve --port "$port" --db "$dir/ab.sqlite" --log-level error >/dev/null 2>&1 &
        pid=$!
        for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
        rate=$("$generator" bench ingest --publish-url "http://127.0.0.1:$port/v1/streams/{stream}/events" "$@" --json |
            python3 -c 'import json, sys; d = json.load(sys.stdin); print(round(d["events_per_second"]), d["errors"])')
        kill "$pid"; wait "$pid" 2>/dev/null || true
        rm -rf "$dir"
        echo "run $rep  $binary  events/s ${rate% *}  errors ${rate#* }"
        echo "$binary ${rate% *}" >> "$results"
    done
done
python3 - "$results" <<'PY'
import statistics, sys
rates = {}
for line in open(sys.argv[1]):
    binary, rate = line.rsplit(" ", 1)
    rates.setdefault(binary, []).append(int(rate))
for binary, values in rates.items():
    print(f"median  {binary}  {statistics.median(values):,.0f} events/s over {len(values)} runs")
PY
