#!/usr/bin/env bash
# Side-by-side benchmark of Rewind against Nchan (the nginx module), driven by `rewind bench`.
#
# Usage: scripts/bench-peer.sh [--binary PATH] [--quick] [--reps N] [--only LIST] [--results FILE]
#   --binary PATH   the rewind binary (default .build/release/rewind, built with `swift build -c release`
#                   only when that default is missing)
#   --quick         shorter runs: ingest 3 s, fanout 5 s, replay 100 000 events, idle 1 000 connections
#   --reps N        repetitions per server and workload (default 3)
#   --only LIST     comma-separated workloads to run: ingest, batch, fanout, replay, idle (default: all)
#   --results FILE  where the JSON lines go (default: a new directory under ${TMPDIR:-/tmp})
#
# Every workload runs REPS times against each server, alternating Rewind and Nchan, each run on a fresh server
# process (and a fresh Rewind database) on its own free loopback port. Each run's JSON line, with "server",
# "rep" and "workload" added, is appended to the results file, and scripts/bench-table.py prints the medians.
#
# Rewind is durable (every event is in the SQLite WAL, synchronous=NORMAL, before the 201); Nchan keeps
# messages in shared memory only. Nchan runs with one worker process; its memory is that worker's RSS.
# Nchan reads a channel's next message by walking its buffer back from the newest message, so a replay
# from the oldest of N buffered messages costs O(N^2): it buffers 1 000 000 small messages but replays
# 100 000 in about 40 s and 1 000 000 in over an hour. Its replay is therefore capped at NCHAN_REPLAY_MAX
# (default 100 000) events, and Rewind also runs at that size so the two have a like-for-like row.
#
# A full run takes roughly 15-20 minutes, --quick roughly 7 (most of it Nchan's replays).
#
# Environment: NCHAN_REPLAY_MAX (default 100000), NCHAN_SHM_SIZE (Nchan's shared memory, default 2048m).
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
        --only) [ $# -ge 2 ] || die "--only needs a list"; ONLY=$2; shift 2 ;;
        --results) [ $# -ge 2 ] || die "--results needs a file"; RESULTS=$(absolute "$2"); shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "--reps must be a positive integer"
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
FANOUT_SUBSCRIBERS=1000
BATCH_CONNECTIONS=16
BATCH_SIZE=1000

# --- open files: 10 000 idle connections need as many descriptors in the client and in the server --------------
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
[ "$NOFILE" = unlimited ] && NOFILE=65536
if [ "$NOFILE" -lt 65536 ]; then
    log "warning: open-file limit is $NOFILE (the hard limit; 65536 wanted)"
fi
[ "$NOFILE" -ge $((IDLE_CONNECTIONS + 1024)) ] ||
    die "open-file limit $NOFILE is too low for $IDLE_CONNECTIONS idle connections (raise the hard limit, or use --quick)"

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

# --- work directory, results, cleanup --------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rewind-bench-peer.XXXXXX")
[ -n "$RESULTS" ] || RESULTS=$WORK/results.jsonl
mkdir -p "$(dirname "$RESULTS")"
: >"$RESULTS"
SERVER_PID=      # the server of the current run (Rewind, or nginx's master)
SERVER_CHILD=    # nginx's worker
SERVER_DIR=
BENCH_PID=       # the running `timeout ... rewind bench`

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
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$BENCH_PID" ] && kill -0 "$BENCH_PID" 2>/dev/null; then
        kill -TERM "$BENCH_PID" 2>/dev/null || true   # `timeout` passes it on to `rewind bench`
        wait "$BENCH_PID" 2>/dev/null || true
    fi
    stop_server
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
    SERVER_CHILD=$(pgrep -P "$SERVER_PID" | head -n 1 || true)
    [ -n "$SERVER_CHILD" ] || die "nginx (pid $SERVER_PID) has no worker process"
    MEASURE_PID=$SERVER_CHILD   # connections and messages live in the one worker
    PUB_URL="http://127.0.0.1:$port/pub/{stream}"
    SUB_URL="http://127.0.0.1:$port/sub/{stream}"
    REPLAY_SUB_URL=$SUB_URL    # the sub location starts at the oldest buffered message
    PRELOAD_BATCH=1            # Nchan has no batch publish
}

start_rewind() {
    local port dir
    port=$(free_port)
    dir=$(mktemp -d "$WORK/rewind.XXXXXX")
    SERVER_DIR=$dir
    "$BINARY" serve --host 127.0.0.1 --port "$port" --db "$dir/rewind.sqlite" --durability normal \
        >"$dir/server.log" 2>&1 &
    SERVER_PID=$!
    SERVER_CHILD=
    wait_healthy "http://127.0.0.1:$port/healthz" 30 rewind "$dir/server.log"
    MEASURE_PID=$SERVER_PID
    PUB_URL="http://127.0.0.1:$port/v1/streams/{stream}/events"
    SUB_URL=$PUB_URL
    REPLAY_SUB_URL="$PUB_URL?from=earliest"
    PRELOAD_BATCH=$BATCH_SIZE   # only the untimed preload is batched; the timed part is one SSE connection
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
        args+=("$a")
    done
    log "$workload rep $rep: $server (pid $MEASURE_PID)"
    local out=$WORK/run.out err=$WORK/run.err rc=0
    # In the background and waited for, so that a signal to this script is handled at once (cleanup stops it).
    timeout --kill-after=10 "$limit" "$BINARY" bench "$mode" "${args[@]}" --json >"$out" 2>"$err" &
    BENCH_PID=$!
    wait "$BENCH_PID" || rc=$?
    BENCH_PID=''
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        log "warning: $server exited during the run"
        [ "$rc" != 0 ] || rc=1
    fi
    stop_server
    local message=
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        message="timed out after $limit s"
    elif [ "$rc" != 0 ]; then
        message="rewind bench $mode exited $rc: $(tail -n 3 "$err" | tr '\n' ' ')"
    fi
    SERVER="$server" WORKLOAD="$workload" REP="$rep" MESSAGE="$message" python3 - "$out" "$RESULTS" <<'EOF' || FAILURES=$((FAILURES + 1))
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
check_nchan
log "results: $RESULTS ($REPS reps, $([ "$QUICK" = 1 ] && echo quick || echo full))"

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
    for rate in 100 1000; do
        publishers=$((rate >= 1000 ? 64 : 8))
        both "fanout-$FANOUT_SUBSCRIBERS-x$rate" $((FANOUT_SECONDS + 240)) fanout --publish-url @PUB@ --subscribe-url @SUB@ \
            --subscribers "$FANOUT_SUBSCRIBERS" --rate "$rate" --duration "$FANOUT_SECONDS" --publishers "$publishers" --server-pid @PID@
    done
fi
if wanted replay; then
    NCHAN_REPLAY=$((REPLAY_EVENTS < NCHAN_REPLAY_MAX ? REPLAY_EVENTS : NCHAN_REPLAY_MAX))
    if [ "$NCHAN_REPLAY" -lt "$REPLAY_EVENTS" ]; then
        log "replay: Rewind $REPLAY_EVENTS events; Nchan only $NCHAN_REPLAY (its replay from the oldest is O(N^2))"
        rewind_only "replay-$REPLAY_EVENTS" 1200 replay --publish-url @PUB@ --subscribe-url @REPLAY_SUB@ \
            --events "$REPLAY_EVENTS" --batch @PRELOAD_BATCH@
    fi
    both "replay-$NCHAN_REPLAY" 600 replay --publish-url @PUB@ --subscribe-url @REPLAY_SUB@ \
        --events "$NCHAN_REPLAY" --batch @PRELOAD_BATCH@
fi
if wanted idle; then
    both "idle-$IDLE_CONNECTIONS" 300 idle --subscribe-url @SUB@ --connections "$IDLE_CONNECTIONS" --server-pid @PID@
fi

# --- the table ----------------------------------------------------------------------------------------------------
NOTES=(--note "Nchan $(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null) on nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'), one worker process; its memory is that worker's RSS (shared-memory pages it touched included)")
NOTES+=(--note "load generator: rewind bench on the same machine (client and servers share its cores); fresh server process and database per run")
if wanted replay; then
    if [ "$NCHAN_REPLAY" -lt "$REPLAY_EVENTS" ]; then
        NOTES+=(--note "replay: Nchan buffers $REPLAY_EVENTS small messages, but it finds each next message by walking its buffer back from the newest, so replaying N from the oldest costs O(N^2) (100 000 take about 40 s, $REPLAY_EVENTS over an hour); it runs at $NCHAN_REPLAY events only (n/a at $REPLAY_EVENTS), Rewind at both sizes")
    else
        NOTES+=(--note "replay: Nchan finds each next message by walking its buffer back from the newest, so its replay from the oldest costs O(N^2) in N")
    fi
fi
[ "$QUICK" = 0 ] || NOTES+=(--note "--quick: ingest ${INGEST_SECONDS} s, fanout ${FANOUT_SECONDS} s, replay $REPLAY_EVENTS events, idle $IDLE_CONNECTIONS connections")
python3 "$ROOT/scripts/bench-table.py" "${NOTES[@]}" "$RESULTS" | tee "$WORK/table.md"
log "results: $RESULTS; table: $WORK/table.md"
[ "$FAILURES" = 0 ] || die "$FAILURES run(s) failed (their lines carry \"error\")"
