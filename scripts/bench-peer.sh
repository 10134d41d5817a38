#!/usr/bin/env bash
# Side-by-side benchmark of Rewind against Nchan (the nginx module), driven by `rewind bench`.
#
# Usage: scripts/bench-peer.sh [--binary PATH] [--quick] [--reps N] [--scale N] [--only LIST]
#                              [--backend sqlite|postgres] [--cluster DIR] [--results FILE]
#   --binary PATH   the rewind binary (default .build/release/rewind, built with `swift build -c release`
#                   only when that default is missing)
#   --quick         shorter runs: ingest 3 s, fanout 5 s, replay 100 000 events, idle 1 000 connections; the
#                   fan-out rows keep their subscriber counts (1 000 and 10 000) and rates
#   --reps N        repetitions per server and workload (default 3)
#   --scale N       divide the fan-out subscribers, the idle connections and the replayed events by N (default 1):
#                   a smoke test of the harness itself (with --quick --reps 1), whose figures compare with nothing
#   --only LIST     comma-separated workloads to run: ingest, batch, fanout, replay, idle (default: all)
#   --backend B     Rewind's log: sqlite (default: a fresh SQLite file per run) or postgres (a fresh database per
#                   run in the throwaway cluster of scripts/postgres-cluster.sh; fsync and synchronous_commit on).
#                   Run the script once per backend to have the same figures on both beside Nchan's.
#   --cluster DIR   with --backend postgres: the cluster's directory (default .build/postgres-bench); started when
#                   it is not running, and stopped at the end if this script started it
#   --results FILE  where the JSON lines go (default: a new directory under ${TMPDIR:-/tmp})
#
# Every workload runs REPS times against each server, alternating Rewind and Nchan, each run on a fresh server
# process (and a fresh Rewind database) on its own free loopback port. Each run's JSON line, with "server",
# "rep" and "workload" added, is appended to the results file, and scripts/bench-table.py prints the medians.
#
# Rewind is durable (every event is in the SQLite WAL, synchronous=NORMAL, before the 201; or with --backend
# postgres, in PostgreSQL's flushed WAL); Nchan keeps messages in shared memory only. Nchan runs with one worker
# process; its memory and CPU are that worker's (nginx's master only waits for signals; its CPU during the
# fan-out runs is printed in a note).
#
# Fan-out rows (subscribers x events/s, publishing connections): 1 000 x 100 (8), 1 000 x 1 000 (64),
# 1 000 x 50 (32) and 10 000 x 5 (32). Each publishing connection has one request in flight, so 32 hold the rate
# as long as a publish is answered within 0.64 s at 50/s and 6.4 s at 5/s; the row's "published" shows whether
# they did (rate x seconds). Every fan-out row gives the server's CPU seconds (user + system from /proc/PID/stat,
# all its threads, from the first publish until every subscriber has every event) and that divided by the
# deliveries, in microseconds.
#
# The replay workload also times, after each of Rewind's replay runs on SQLite (server stopped, same file, same
# machine), the sqlite3 shell reading the same rows to /dev/null:
#   sqlite3 FILE "SELECT id, type, data FROM events WHERE id > 0 ORDER BY id" >/dev/null
# (the file holds the one stream replayed), and prints its events/s and Rewind's replay events/s divided by it.
# Nchan reads a channel's next message by walking its buffer back from the newest message, so a replay
# from the oldest of N buffered messages costs O(N^2): it buffers 1 000 000 small messages but replays
# 100 000 in about 40 s and 1 000 000 in over an hour. Its replay is therefore capped at NCHAN_REPLAY_MAX
# (default 100 000) events, and Rewind also runs at that size so the two have a like-for-like row.
#
# A full run takes roughly 25 minutes, --quick roughly 10 (much of it Nchan's replays and connecting 10 000
# subscribers); --quick --reps 1 --scale 10 --only fanout,replay about 2.
#
# Environment: NCHAN_REPLAY_MAX (default 100000), NCHAN_SHM_SIZE (Nchan's shared memory, default 2048m),
# PG_BIN (PostgreSQL's binaries for --backend postgres, default /usr/lib/postgresql/15/bin).
# All traffic goes to 127.0.0.1. Every wait is bounded; every `rewind bench` runs under `timeout`. Only the
# server processes this script starts are stopped, by their PIDs, also on Ctrl-C or an error.
set -euo pipefail
START_DIR=$(pwd)
cd "$(dirname "$0")/.."
ROOT=$(pwd)
absolute() { case "$1" in /*) echo "$1" ;; *) echo "$START_DIR/$1" ;; esac; }

BINARY=.build/release/rewind
BINARY_GIVEN=0
QUICK=0
REPS=3
SCALE=1
BACKEND=sqlite
CLUSTER=
ONLY=ingest,batch,fanout,replay,idle
RESULTS=
NCHAN_REPLAY_MAX=${NCHAN_REPLAY_MAX:-100000}
NCHAN_SHM_SIZE=${NCHAN_SHM_SIZE:-2048m}

die() { echo "error: $*" >&2; exit 1; }
log() { echo "[bench-peer $(date +%H:%M:%S)] $*" >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --binary) [ $# -ge 2 ] || die "--binary needs a path"; BINARY=$(absolute "$2"); BINARY_GIVEN=1; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --reps) [ $# -ge 2 ] || die "--reps needs a number"; REPS=$2; shift 2 ;;
        --scale) [ $# -ge 2 ] || die "--scale needs a number"; SCALE=$2; shift 2 ;;
        --backend) [ $# -ge 2 ] || die "--backend needs sqlite or postgres"; BACKEND=$2; shift 2 ;;
        --cluster) [ $# -ge 2 ] || die "--cluster needs a directory"; CLUSTER=$(absolute "$2"); shift 2 ;;
        --only) [ $# -ge 2 ] || die "--only needs a list"; ONLY=$2; shift 2 ;;
        --results) [ $# -ge 2 ] || die "--results needs a file"; RESULTS=$(absolute "$2"); shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "--reps must be a positive integer"
[[ $SCALE =~ ^[1-9][0-9]*$ ]] || die "--scale must be a positive integer"
case "$BACKEND" in sqlite | postgres) ;; *) die "--backend must be sqlite or postgres, not '$BACKEND'" ;; esac
[ -z "$CLUSTER" ] || [ "$BACKEND" = postgres ] || die "--cluster goes with --backend postgres"
[ -n "$CLUSTER" ] || CLUSTER=$ROOT/.build/postgres-bench
[[ $NCHAN_REPLAY_MAX =~ ^[1-9][0-9]*$ ]] || die "NCHAN_REPLAY_MAX must be a positive integer"
for w in ${ONLY//,/ }; do
    case "$w" in ingest | batch | fanout | replay | idle) ;; *) die "--only: unknown workload '$w'" ;; esac
done
wanted() { [[ ",$ONLY," == *",$1,"* ]]; }

if [ "$QUICK" = 1 ]; then
    INGEST_SECONDS=3 FANOUT_SECONDS=5 REPLAY_EVENTS=100000 IDLE_CONNECTIONS=1000
else
    INGEST_SECONDS=10 FANOUT_SECONDS=20 REPLAY_EVENTS=1000000 IDLE_CONNECTIONS=10000
fi
# Fan-out rows: "subscribers rate publishers" (see the header for the publishers).
FANOUT_ROWS=("1000 100 8" "1000 1000 64" "1000 50 32" "10000 5 32")
REPLAY_EVENTS=$((REPLAY_EVENTS / SCALE > 0 ? REPLAY_EVENTS / SCALE : 1))
IDLE_CONNECTIONS=$((IDLE_CONNECTIONS / SCALE > 0 ? IDLE_CONNECTIONS / SCALE : 1))
BATCH_CONNECTIONS=16
BATCH_SIZE=1000

# --- open files: 10 000 subscribers or idle connections need as many descriptors in the client and the server ----
MOST_CONNECTIONS=0
if wanted idle; then MOST_CONNECTIONS=$IDLE_CONNECTIONS; fi
if wanted fanout; then
    for row in "${FANOUT_ROWS[@]}"; do
        read -r subscribers _ publishers <<<"$row"
        subscribers=$((subscribers / SCALE > 0 ? subscribers / SCALE : 1))
        [ $((subscribers + publishers)) -le "$MOST_CONNECTIONS" ] || MOST_CONNECTIONS=$((subscribers + publishers))
    done
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
[ "$NOFILE" = unlimited ] && NOFILE=65536
if [ "$NOFILE" -lt 65536 ]; then
    log "warning: open-file limit is $NOFILE (the hard limit; 65536 wanted)"
fi
[ "$NOFILE" -ge $((MOST_CONNECTIONS + 1024)) ] ||
    die "open-file limit $NOFILE is too low for $MOST_CONNECTIONS connections (raise the hard limit, or use --only without idle and fanout)"

# --- the rewind binary, and its load generator ------------------------------------------------------------------
if [ ! -x "$BINARY" ]; then
    [ "$BINARY_GIVEN" = 0 ] || die "$BINARY does not exist or is not executable"
    log "building $BINARY (swift build -c release)"
    swift build -c release
    [ -x "$BINARY" ] || die "swift build -c release did not produce $BINARY"
fi
BINARY=$(cd "$(dirname "$BINARY")" && pwd)/$(basename "$BINARY")
help=$(timeout 20 "$BINARY" bench --help 2>&1 || true)
if [[ $help != *ingest* ]]; then
    die "$BINARY does not support bench (\`rewind bench ingest|fanout|replay|idle\` is needed; rebuild from a newer checkout)"
fi
for mode in ingest fanout replay idle; do
    help=$(timeout 20 "$BINARY" bench "$mode" --help 2>&1 || true)
    [[ $help == *--json* ]] || die "$BINARY does not support bench $mode"
done
help=$(timeout 20 "$BINARY" bench replay --help 2>&1 || true)
[[ $help == *--preload-connections* ]] || die "$BINARY's bench replay has no --preload-connections; rebuild from a newer checkout"

# --- nginx with Nchan: installed from Debian's packages when missing; the system service is never used ----------
nchan_module() { dpkg -L libnginx-mod-nchan 2>/dev/null | grep '/ngx_nchan_module\.so$' | head -n 1 || true; }
if ! command -v nginx >/dev/null 2>&1 || [ -z "$(nchan_module)" ]; then
    [ "$(id -u)" = 0 ] || die "nginx and libnginx-mod-nchan are missing: install them (apt-get install nginx libnginx-mod-nchan) or run as root"
    log "installing nginx and libnginx-mod-nchan"
    # Keep the packaging from starting the system nginx service: policy-rc.d answering 101 (Debian's mechanism),
    # added only for the install when the machine has none.
    POLICY_ADDED=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && POLICY_ADDED=1
    fi
    install_rc=0
    { DEBIAN_FRONTEND=noninteractive timeout 600 apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq nginx libnginx-mod-nchan >/dev/null; } || install_rc=$?
    [ "$POLICY_ADDED" = 0 ] || rm -f /usr/sbin/policy-rc.d
    [ "$install_rc" = 0 ] || die "apt-get install nginx libnginx-mod-nchan failed ($install_rc)"
fi
NGINX=$(command -v nginx)
NCHAN_MODULE=$(nchan_module)
{ [ -n "$NCHAN_MODULE" ] && [ -f "$NCHAN_MODULE" ]; } || die "ngx_nchan_module.so not found (dpkg -L libnginx-mod-nchan)"
TEMPLATE=$ROOT/scripts/nchan/nginx.conf.template
[ -f "$TEMPLATE" ] || die "$TEMPLATE is missing"
command -v curl >/dev/null 2>&1 || die "curl is needed"
command -v python3 >/dev/null 2>&1 || die "python3 is needed"

# --- the sqlite3 shell, the replay's yardstick on SQLite: installed from Debian's package when missing -----------
SHELL_READ=0
if wanted replay && [ "$BACKEND" = sqlite ]; then
    SHELL_READ=1
    if ! command -v sqlite3 >/dev/null 2>&1; then
        [ "$(id -u)" = 0 ] || die "the sqlite3 shell is missing: install it (apt-get install sqlite3) or run as root"
        log "installing sqlite3"
        { DEBIAN_FRONTEND=noninteractive timeout 600 apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq sqlite3 >/dev/null; } ||
            die "apt-get install sqlite3 failed"
    fi
    SQLITE3=$(command -v sqlite3)
fi

# --- work directory, results, cleanup --------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rewind-bench-peer.XXXXXX")
[ -n "$RESULTS" ] || RESULTS=$WORK/results.jsonl
mkdir -p "$(dirname "$RESULTS")"
: >"$RESULTS"
SERVER_PID=      # the server of the current run (Rewind, or nginx's master)
SERVER_CHILD=    # nginx's worker
SERVER_DIR=
SERVER_DB=       # with --backend postgres: the URL of the run's database, dropped when its server stops
BENCH_PID=       # the running `timeout ... rewind bench`
CLUSTER_STARTED=0

# postgres_database create | drop URL: a fresh database of the cluster (its URL printed), or drop one; through
# scripts/rewindtest.py's PostgresCluster, which starts the cluster when it is not running.
postgres_database() {
    PYTHONPATH="$ROOT/scripts" python3 - "$CLUSTER" "$@" <<'EOF'
import sys
import rewindtest
cluster = rewindtest.PostgresCluster(sys.argv[1])
if sys.argv[2] == "create":
    print(cluster.database(prefix="rewind_bench"))
elif sys.argv[2] == "settings":
    print(cluster.psql("SELECT current_setting('server_version') || ', fsync ' || current_setting('fsync') || "
                       "', synchronous_commit ' || current_setting('synchronous_commit')").strip())
else:
    cluster.drop_database(sys.argv[3])
EOF
}

# Stops the current server by its PID: TERM, up to 10 s, then KILL. nginx's master takes its worker along;
# the worker is also stopped by its own PID should it outlive the master.
stop_server() {
    local pid=$SERVER_PID child=$SERVER_CHILD
    SERVER_PID='' SERVER_CHILD=''
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    fi
    [ -z "$pid" ] || wait "$pid" 2>/dev/null || true
    if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
        for _ in $(seq 50); do kill -0 "$child" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$child" 2>/dev/null; then kill -KILL "$child" 2>/dev/null || true; fi
    fi
    if [ -n "$SERVER_DIR" ]; then
        rm -rf "$SERVER_DIR"   # databases and Nchan's prefix: a 1 000 000-event database is large
        SERVER_DIR=
    fi
    if [ -n "$SERVER_DB" ]; then
        postgres_database drop "$SERVER_DB" || log "warning: could not drop $SERVER_DB"
        SERVER_DB=
    fi
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$BENCH_PID" ] && kill -0 "$BENCH_PID" 2>/dev/null; then
        kill -TERM "$BENCH_PID" 2>/dev/null || true   # `timeout` passes it on to `rewind bench`
        wait "$BENCH_PID" 2>/dev/null || true
    fi
    stop_server
    if [ "$CLUSTER_STARTED" = 1 ]; then
        "$ROOT/scripts/postgres-cluster.sh" stop "$CLUSTER" || log "warning: could not stop the cluster in $CLUSTER"
    fi
    # Keep the results and the table; drop everything else.
    find "$WORK" -mindepth 1 -maxdepth 1 ! -name 'results.jsonl' ! -name 'table.md' -exec rm -rf {} + 2>/dev/null || true
    rmdir "$WORK" 2>/dev/null || true
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits (at most $2 s) for GET $1 to answer 200 while the server process is alive.
wait_healthy() {
    local url=$1 seconds=$2 name=$3 log=$4 _
    for _ in $(seq $((seconds * 10))); do
        kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 20 "$log" >&2 || true; die "$name exited while starting (log above)"; }
        if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" 2>/dev/null)" = 200 ]; then return 0; fi
        sleep 0.1
    done
    tail -n 20 "$log" >&2 || true
    die "$name did not answer $url within $seconds s"
}

# Renders the Nchan config for prefix $1 and port $2.
render_nchan_conf() {
    sed -e "s#@PREFIX@#$1#g" -e "s#@PORT@#$2#g" -e "s#@NCHAN_MODULE@#$NCHAN_MODULE#g" \
        -e "s#@NOFILE@#$NOFILE#g" -e "s#@SHM_SIZE@#$NCHAN_SHM_SIZE#g" "$TEMPLATE" >"$1/conf/nginx.conf"
    ! grep -q '@[A-Z_]*@' "$1/conf/nginx.conf" || die "unreplaced placeholder in $1/conf/nginx.conf"
}

start_nchan() {
    local port prefix
    port=$(free_port)
    prefix=$(mktemp -d "$WORK/nchan.XXXXXX")
    SERVER_DIR=$prefix
    mkdir -p "$prefix/conf" "$prefix/logs" "$prefix/tmp"
    render_nchan_conf "$prefix" "$port"
    "$NGINX" -p "$prefix" -c "$prefix/conf/nginx.conf" -e "$prefix/logs/error.log" -g 'daemon off;' \
        >"$prefix/logs/stdout.log" 2>&1 &
    SERVER_PID=$!
    wait_healthy "http://127.0.0.1:$port/healthz" 10 nginx "$prefix/logs/error.log"
    # The worker by its process title: with one worker and no cache it is the master's only child, but a cache
    # manager or loader would be a child too.
    local child
    SERVER_CHILD=
    for child in $(pgrep -P "$SERVER_PID" || true); do
        if tr '\0' ' ' <"/proc/$child/cmdline" 2>/dev/null | grep -q 'worker process'; then SERVER_CHILD=$child; break; fi
    done
    [ -n "$SERVER_CHILD" ] || die "nginx (pid $SERVER_PID) has no worker process"
    MEASURE_PID=$SERVER_CHILD   # connections and messages live in the one worker
    PUB_URL="http://127.0.0.1:$port/pub/{stream}"
    SUB_URL="http://127.0.0.1:$port/sub/{stream}"
    REPLAY_SUB_URL=$SUB_URL    # the sub location starts at the oldest buffered message
    PRELOAD_BATCH=1            # Nchan has no batch publish
    # Over one connection: after a preload of 100 000 over 8 concurrent connections, Nchan 1.3.6 replays the oldest
    # message, then the first of the next second, and then nothing (seen with curl too); over one it replays all.
    PRELOAD_CONNECTIONS=1
}

start_rewind() {
    local port dir db
    port=$(free_port)
    dir=$(mktemp -d "$WORK/rewind.XXXXXX")
    SERVER_DIR=$dir
    if [ "$BACKEND" = postgres ]; then
        SERVER_DB=$(postgres_database create) || die "could not create a database in the cluster $CLUSTER"
        db=(--db "$SERVER_DB")
    else
        db=(--db "$dir/rewind.sqlite" --durability normal)
    fi
    "$BINARY" serve --host 127.0.0.1 --port "$port" "${db[@]}" >"$dir/server.log" 2>&1 &
    SERVER_PID=$!
    SERVER_CHILD=
    wait_healthy "http://127.0.0.1:$port/healthz" 30 rewind "$dir/server.log"
    MEASURE_PID=$SERVER_PID
    PUB_URL="http://127.0.0.1:$port/v1/streams/{stream}/events"
    SUB_URL=$PUB_URL
    REPLAY_SUB_URL="$PUB_URL?from=earliest"
    PRELOAD_BATCH=$BATCH_SIZE   # only the untimed preload is batched; the timed part is one SSE connection
    PRELOAD_CONNECTIONS=8
}

# Checks the Nchan half once before any run: config test, publish, subscribe.
check_nchan() {
    local prefix port out
    prefix=$(mktemp -d "$WORK/nchan-check.XXXXXX")
    mkdir -p "$prefix/conf" "$prefix/logs" "$prefix/tmp"
    port=$(free_port)
    render_nchan_conf "$prefix" "$port"
    if ! out=$("$NGINX" -t -p "$prefix" -c "$prefix/conf/nginx.conf" -e "$prefix/logs/error.log" 2>&1); then
        echo "$out" >&2
        die "nginx -t rejected the Nchan config ($TEMPLATE)"
    fi
    rm -rf "$prefix"
    start_nchan
    curl -sf --max-time 5 -X POST --data 'hello' "${PUB_URL/\{stream\}/check}" >/dev/null || die "Nchan publish failed"
    out=$(curl -s -N -H 'Accept: text/event-stream' --max-time 2 "${SUB_URL/\{stream\}/check}" || true)
    [[ $out == *"data: hello"* ]] || die "Nchan did not replay the published message as SSE (got: ${out:0:200})"
    stop_server
    log "Nchan $(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null) on $("$NGINX" -v 2>&1 | sed 's/.*: //'): config ok, publish/subscribe ok"
}

FAILURES=0

# User plus system CPU clock ticks of process $1 so far (fields 14 and 15 of /proc/PID/stat, counted after the
# command name's closing parenthesis); nothing when the process is gone.
cpu_ticks() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    read -r -a fields <<<"${stat##*)}"
    echo $((fields[11] + fields[12]))
}
CLOCK_TICKS=$(getconf CLK_TCK)

# After a run, with its server stopped: hooks that add fields to the run's JSON line (a JSON object on stdout).
AFTER_RUN=

# shell_read DIR: times the sqlite3 shell reading the replayed rows of DIR/rewind.sqlite to /dev/null, the way an
# SSE replay reads them (id order, id, type and data), with the server stopped.
shell_read() {
    local file=$1/rewind.sqlite rows start end
    [ -f "$file" ] || { log "warning: no $file to read with the sqlite3 shell"; echo '{}'; return 0; }
    rows=$("$SQLITE3" "$file" "SELECT count(*) FROM events WHERE id > 0")
    start=$EPOCHREALTIME
    timeout 600 "$SQLITE3" "$file" "SELECT id, type, data FROM events WHERE id > 0 ORDER BY id" >/dev/null
    end=$EPOCHREALTIME
    python3 -c 'import json, sys; rows, seconds = int(sys.argv[1]), float(sys.argv[3]) - float(sys.argv[2]); print(json.dumps({"sqlite3_shell_events": rows, "sqlite3_shell_seconds": round(seconds, 4), "sqlite3_shell_events_per_second": round(rows / seconds, 1)}))' \
        "$rows" "$start" "$end"
}

# run SERVER WORKLOAD REP TIMEOUT MODE ARGS... : one run on a fresh server; appends its JSON line.
run() {
    local server=$1 workload=$2 rep=$3 limit=$4 mode=$5
    shift 5
    "start_$server"
    # Placeholders in the arguments: @PUB@ @SUB@ @REPLAY_SUB@ @PID@ @PRELOAD_BATCH@
    local args=() a
    for a in "$@"; do
        a=${a//@PUB@/$PUB_URL}
        a=${a//@SUB@/$SUB_URL}
        a=${a//@REPLAY_SUB@/$REPLAY_SUB_URL}
        a=${a//@PID@/$MEASURE_PID}
        a=${a//@PRELOAD_BATCH@/$PRELOAD_BATCH}
        a=${a//@PRELOAD_CONNECTIONS@/$PRELOAD_CONNECTIONS}
        args+=("$a")
    done
    log "$workload rep $rep: $server (pid $MEASURE_PID)"
    local out=$WORK/run.out err=$WORK/run.err rc=0 extra='{}' master_before='' master_after=''
    # nginx's master, beside the worker measured: its CPU over the run, to show it does not take part.
    [ -z "$SERVER_CHILD" ] || master_before=$(cpu_ticks "$SERVER_PID")
    # In the background and waited for, so that a signal to this script is handled at once (cleanup stops it).
    timeout --kill-after=10 "$limit" "$BINARY" bench "$mode" "${args[@]}" --json >"$out" 2>"$err" &
    BENCH_PID=$!
    wait "$BENCH_PID" || rc=$?
    BENCH_PID=''
    [ -z "$SERVER_CHILD" ] || master_after=$(cpu_ticks "$SERVER_PID")
    if [ -n "$master_before" ] && [ -n "$master_after" ]; then
        extra=$(python3 -c 'import json, sys; print(json.dumps({"nginx_master_cpu_seconds": (int(sys.argv[2]) - int(sys.argv[1])) / int(sys.argv[3])}))' \
            "$master_before" "$master_after" "$CLOCK_TICKS")
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        log "warning: $server exited during the run"
        [ "$rc" != 0 ] || rc=1
    fi
    # The hook reads the server's files after it stopped; they are removed after the hook.
    local dir=$SERVER_DIR
    SERVER_DIR=
    stop_server
    if [ -n "$AFTER_RUN" ] && [ "$server" = rewind ] && [ "$rc" = 0 ]; then
        extra=$("$AFTER_RUN" "$dir") || { log "warning: $AFTER_RUN failed"; extra='{}'; }
    fi
    rm -rf "$dir"
    local message=
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        message="timed out after $limit s"
    elif [ "$rc" != 0 ]; then
        message="rewind bench $mode exited $rc: $(tail -n 3 "$err" | tr '\n' ' ')"
    fi
    SERVER="$server" WORKLOAD="$workload" REP="$rep" MESSAGE="$message" EXTRA="$extra" python3 - "$out" "$RESULTS" <<'EOF' || FAILURES=$((FAILURES + 1))
import json, os, sys
out, results = sys.argv[1], sys.argv[2]
record, message = None, os.environ["MESSAGE"]
if not message:
    lines = [l for l in open(out, encoding="utf-8", errors="replace").read().splitlines() if l.startswith("{")]
    try:
        record = json.loads(lines[-1])
    except (IndexError, ValueError):
        message = "no JSON object on stdout"
if record is None:
    record = {"error": message}
else:
    record.update(json.loads(os.environ["EXTRA"]))
    shell = record.get("sqlite3_shell_events_per_second")
    if shell and isinstance(record.get("events_per_second"), (int, float)):
        record["replay_vs_sqlite3_shell"] = round(record["events_per_second"] / shell, 3)
record.update(server=os.environ["SERVER"], rep=int(os.environ["REP"]), workload=os.environ["WORKLOAD"])
with open(results, "a", encoding="utf-8") as f:
    f.write(json.dumps(record, separators=(",", ":")) + "\n")
if message:
    print(f"error: {record['workload']} rep {record['rep']} on {record['server']}: {message}", file=sys.stderr)
    sys.exit(1)
EOF
}

# both WORKLOAD TIMEOUT MODE ARGS...: REPS runs on each server, alternating Rewind and Nchan.
both() {
    local workload=$1 rep
    shift
    for rep in $(seq "$REPS"); do
        run rewind "$workload" "$rep" "$@"
        run nchan "$workload" "$rep" "$@"
    done
}
# rewind_only WORKLOAD TIMEOUT MODE ARGS...: REPS runs on Rewind (Nchan has no counterpart: n/a in the table).
rewind_only() {
    local workload=$1 rep
    shift
    for rep in $(seq "$REPS"); do run rewind "$workload" "$rep" "$@"; done
}

# --- the runs -----------------------------------------------------------------------------------------------------
if [ "$BACKEND" = postgres ]; then
    [ -f "$CLUSTER/data/postmaster.pid" ] || CLUSTER_STARTED=1
    PG_SETTINGS=$(postgres_database settings) || die "the PostgreSQL cluster in $CLUSTER did not start (scripts/postgres-cluster.sh)"
    [[ $PG_SETTINGS == *"fsync on, synchronous_commit on" ]] ||
        die "the cluster in $CLUSTER runs with $PG_SETTINGS; fsync and synchronous_commit must both be on"
    log "Rewind on PostgreSQL $PG_SETTINGS (cluster $CLUSTER)"
fi
check_nchan
log "results: $RESULTS ($REPS reps, $([ "$QUICK" = 1 ] && echo quick || echo full)$([ "$SCALE" = 1 ] || echo ", counts / $SCALE"), Rewind on $BACKEND)"

if wanted ingest; then
    for c in 1 16 64; do
        both "ingest-c$c" $((INGEST_SECONDS + 60)) ingest --publish-url @PUB@ --connections "$c" --duration "$INGEST_SECONDS"
    done
fi
if wanted batch; then
    # Nchan has no batch publish: the table shows n/a for it.
    rewind_only "ingest-c$BATCH_CONNECTIONS-batch$BATCH_SIZE" $((INGEST_SECONDS + 60)) ingest --publish-url @PUB@ \
        --connections "$BATCH_CONNECTIONS" --duration "$INGEST_SECONDS" --batch "$BATCH_SIZE"
fi
if wanted fanout; then
    # Several publishing connections (the same for both servers): one connection with one request in flight
    # cannot keep up the rate once the server is busy delivering to a thousand subscribers.
    for row in "${FANOUT_ROWS[@]}"; do
        read -r subscribers rate publishers <<<"$row"
        subscribers=$((subscribers / SCALE > 0 ? subscribers / SCALE : 1))
        # Connecting 10 000 subscribers and letting them drain takes longer than publishing.
        both "fanout-$subscribers-x$rate" $((FANOUT_SECONDS + 240 + subscribers / 100)) fanout --publish-url @PUB@ \
            --subscribe-url @SUB@ --subscribers "$subscribers" --rate "$rate" --duration "$FANOUT_SECONDS" \
            --publishers "$publishers" --server-pid @PID@
    done
fi
if wanted replay; then
    # Rewind's replays on SQLite are followed by the sqlite3 shell reading the same file.
    [ "$SHELL_READ" = 0 ] || AFTER_RUN=shell_read
    NCHAN_REPLAY=$((REPLAY_EVENTS < NCHAN_REPLAY_MAX ? REPLAY_EVENTS : NCHAN_REPLAY_MAX))
    if [ "$NCHAN_REPLAY" -lt "$REPLAY_EVENTS" ]; then
        log "replay: Rewind $REPLAY_EVENTS events; Nchan only $NCHAN_REPLAY (its replay from the oldest is O(N^2))"
        rewind_only "replay-$REPLAY_EVENTS" 1200 replay --publish-url @PUB@ --subscribe-url @REPLAY_SUB@ \
            --events "$REPLAY_EVENTS" --batch @PRELOAD_BATCH@ --preload-connections @PRELOAD_CONNECTIONS@
    fi
    both "replay-$NCHAN_REPLAY" 600 replay --publish-url @PUB@ --subscribe-url @REPLAY_SUB@ \
        --events "$NCHAN_REPLAY" --batch @PRELOAD_BATCH@ --preload-connections @PRELOAD_CONNECTIONS@
    AFTER_RUN=
fi
if wanted idle; then
    both "idle-$IDLE_CONNECTIONS" 300 idle --subscribe-url @SUB@ --connections "$IDLE_CONNECTIONS" --server-pid @PID@
fi

# --- the table ----------------------------------------------------------------------------------------------------
NOTES=(--note "Nchan $(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null) on nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'), one worker process; its memory is that worker's RSS (shared-memory pages it touched included)")
NOTES+=(--note "load generator: rewind bench on the same machine (client and servers share its cores); fresh server process and database per run")
if wanted fanout; then
    master=$(python3 -c 'import json, sys
values = [r["nginx_master_cpu_seconds"] for r in map(json.loads, open(sys.argv[1])) if r.get("workload", "").startswith("fanout-") and "nginx_master_cpu_seconds" in r]
print(f"{max(values):.2f}" if values else "")' "$RESULTS")
    NOTES+=(--note "fan-out: publishers per row 8 (× 100 ev/s), 64 (× 1 000), 32 (× 50 and × 5); server CPU = user + system CPU of the server process (Nchan: its one worker) from /proc/PID/stat, from the first publish until every subscriber has every event, per delivery in µs")
    [ -z "$master" ] || NOTES+=(--note "nginx's master is idle: at most $master s of CPU over a whole fan-out run (the CPU rows are its worker's)")
    [ "$BACKEND" = sqlite ] || NOTES+=(--note "server CPU on PostgreSQL counts the rewind process only, not PostgreSQL's own processes")
fi
if wanted replay; then
    if [ "$NCHAN_REPLAY" -lt "$REPLAY_EVENTS" ]; then
        NOTES+=(--note "replay: Nchan buffers $REPLAY_EVENTS small messages, but it finds each next message by walking its buffer back from the newest, so replaying N from the oldest costs O(N^2) (100 000 take 25 to 40 s on the 2-core machines measured, $REPLAY_EVENTS over an hour); its channel is preloaded over one connection (after a concurrent preload it skips messages); it runs at $NCHAN_REPLAY events only (n/a at $REPLAY_EVENTS), Rewind at both sizes")
    else
        NOTES+=(--note "replay: Nchan finds each next message by walking its buffer back from the newest, so its replay from the oldest costs O(N^2) in N")
    fi
    [ "$SHELL_READ" = 0 ] || NOTES+=(--note "replay, sqlite3 shell: after each of Rewind's replays, with the server stopped, \`sqlite3 FILE \"SELECT id, type, data FROM events WHERE id > 0 ORDER BY id\" >/dev/null\` on the same file (sqlite3 $("$SQLITE3" --version | cut -d' ' -f1)); Rewind/shell = Rewind's replay events/s divided by the shell's, per run")
fi
[ "$QUICK" = 0 ] || NOTES+=(--note "--quick: ingest ${INGEST_SECONDS} s, fanout ${FANOUT_SECONDS} s, replay $REPLAY_EVENTS events, idle $IDLE_CONNECTIONS connections")
[ "$SCALE" = 1 ] || NOTES+=(--note "--scale $SCALE: fan-out subscribers, idle connections and replayed events divided by $SCALE (a smoke test of the harness; not comparable with full runs)")
python3 "$ROOT/scripts/bench-table.py" --backend "$BACKEND" "${NOTES[@]}" "$RESULTS" | tee "$WORK/table.md"
log "results: $RESULTS; table: $WORK/table.md"
[ "$FAILURES" = 0 ] || die "$FAILURES run(s) failed (their lines carry \"error\")"
