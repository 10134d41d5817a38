#!/usr/bin/env bash
# Times `rewind query --stream s7 --limit 100 --reverse` on a log of EVENTS events (default 10 000 000) spread
# over STREAMS streams, and prints SQLite's plan for it. The log is generated with the sqlite3 shell into the
# schema `rewind import` creates: ids, times and sizes like real events, but random hashes (it is for timing
# reads; `rewind verify` would refuse it).
#
# Usage: swift build -c release && scripts/bench-query.sh [.build/release/rewind]
set -euo pipefail
cd "$(dirname "$0")/.."
BINARY=${1:-.build/release/rewind}
EVENTS=${EVENTS:-10000000}
STREAMS=${STREAMS:-100}
DB=${DB:-$(mktemp -d)/bench-query.sqlite}
RUNS=${RUNS:-20}

if [ ! -s "$DB" ]; then
    echo "generating $EVENTS events over $STREAMS streams in $DB" >&2
    : | "$BINARY" import --db "$DB" 2>/dev/null
    start=$(date +%s)
    sqlite3 "$DB" <<SQL
PRAGMA journal_mode = WAL;
PRAGMA synchronous = OFF;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $EVENTS)
INSERT INTO events (id, stream, type, data, json, time, key, hash)
SELECT i, 's' || (i % $STREAMS), 'message', printf('{"seq":%d,"payload":"%s"}', i, hex(randomblob(24))), 1,
    1763719200000000 + i * 1000, NULL, randomblob(32)
FROM n;
INSERT INTO streams (name, count, first_id, last_id, last_time, bytes)
SELECT stream, count(*), min(id), max(id), max(time), sum(length(data)) FROM events GROUP BY stream;
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
SQL
    echo "generated in $(( $(date +%s) - start )) s; $(du -h "$DB" | cut -f1)" >&2
fi

echo "\$ $BINARY query --db $DB --stream s7 --limit 100 --reverse --explain"
"$BINARY" query --db "$DB" --stream s7 --limit 100 --reverse --explain
echo "\$ $BINARY stats --db $DB --format json | head -c 300"
"$BINARY" stats --db "$DB" --format json | head -c 300
echo
python3 - "$BINARY" "$DB" "$RUNS" <<'PY'
import statistics, subprocess, sys, time
binary, db, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
def timed(args):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        out = subprocess.run(args, capture_output=True, check=True).stdout
        times.append((time.perf_counter() - start) * 1000)
    return times, out
query, out = timed([binary, "query", "--db", db, "--stream", "s7", "--limit", "100", "--reverse", "--format", "ndjson"])
assert len(out.splitlines()) == 100, len(out.splitlines())
baseline, _ = timed([binary, "query", "--db", db, "--limit", "0", "--after", "0", "--before", "1", "--format", "ndjson"])
print(f"query --stream s7 --limit 100 --reverse: median {statistics.median(query):.1f} ms, min {min(query):.1f} ms, max {max(query):.1f} ms over {runs} runs (whole process)")
print(f"same process, empty query (start-up and opening): median {statistics.median(baseline):.1f} ms")
inside = []
for _ in range(runs):
    err = subprocess.run([binary, "query", "--db", db, "--stream", "s7", "--limit", "100", "--reverse", "--format", "ndjson", "--timing"],
                         capture_output=True, check=True, text=True).stderr
    inside.append(float(err.split(" in ")[1].split(" ms")[0]))
print(f"inside the process (--timing: open the file, run the query, read 100 events): median {statistics.median(inside):.2f} ms, "
      f"min {min(inside):.2f} ms, max {max(inside):.2f} ms")
PY
