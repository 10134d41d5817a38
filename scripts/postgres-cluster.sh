#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests, never the system service.
#
#   scripts/postgres-cluster.sh start DIR   initdb into DIR (if new) and start it; prints the URL to use
#   scripts/postgres-cluster.sh stop DIR [fast|immediate]
#                                           stop it and keep DIR: `fast` (the default) ends sessions and checkpoints;
#                                           `immediate` is a crash (no checkpoint; recovery replays the WAL at start)
#   scripts/postgres-cluster.sh url DIR     print the URL of a cluster started earlier
#
# The server listens on 127.0.0.1 only, on a free port, with fsync on (what a real deployment has, so the tests
# see real commit costs). It holds a role `rewind` that owns database `rewind` and may create databases (the tests
# make one per test) but is no superuser, and a role `rewind_guest` with the same password that owns nothing (the
# tests check that a role unable to create tables gets a clear error). The URL printed is
#   postgres://rewind:PASSWORD@127.0.0.1:PORT/rewind
# PostgreSQL refuses to run as root: when run as root, DIR belongs to the system user `rewind-pg` (created if
# missing) and the server runs as that user. Binaries come from $PG_BIN, else /usr/lib/postgresql/15/bin
# (Debian's `postgresql` package).
set -euo pipefail

usage() {
    echo "usage: $0 start DIR | stop DIR [fast|immediate] | url DIR" >&2
    exit 2
}

[[ $# -eq 2 || ($# -eq 3 && "$1" == stop) ]] || usage
command="$1"
dir="$2"
mode="${3:-fast}"
[[ "$mode" == fast || "$mode" == immediate ]] || usage
bin="${PG_BIN:-/usr/lib/postgresql/15/bin}"
[[ -x "$bin/initdb" ]] || {
    echo "$0: no initdb in $bin: install Debian's postgresql package (apt-get install postgresql) or set PG_BIN" >&2
    exit 1
}

# Runs a command as the cluster's owner: root hands it to `rewind-pg`, anyone else runs it directly.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u rewind-pg -- "$@"
    else
        "$@"
    fi
}

url() {
    local port password
    port=$(cat "$dir/port")
    password=$(cat "$dir/password")
    echo "postgres://rewind:$password@127.0.0.1:$port/rewind"
}

case "$command" in
start)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [[ $(id -u) -eq 0 ]]; then
        id rewind-pg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin rewind-pg
        chown rewind-pg "$dir"
        chmod 700 "$dir"
    fi
    data="$dir/data"
    if [[ ! -f "$data/PG_VERSION" ]]; then
        # A free loopback port: bind port 0 and keep what the kernel gave.
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' >"$dir/port"
        python3 -c 'import secrets; print(secrets.token_hex(16))' >"$dir/password"
        chmod 600 "$dir/password"
        # A Unix socket's path has to fit in 107 bytes: a deep DIR gets its socket in a directory under /tmp.
        if ((${#dir} > 80)); then mktemp -d /tmp/rewind-pg-socket.XXXXXX >"$dir/socket"; else echo "$dir" >"$dir/socket"; fi
        [[ $(id -u) -ne 0 ]] || chown rewind-pg "$dir/port" "$dir/password" "$dir/socket" "$(cat "$dir/socket")"
        as_owner "$bin/initdb" --pgdata="$data" --username=postgres --auth-local=trust --auth-host=scram-sha-256 \
            --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
            cat "$dir/initdb.log" >&2
            exit 1
        }
        cat >>"$data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $(cat "$dir/port")
unix_socket_directories = '$(cat "$dir/socket")'
fsync = on
synchronous_commit = on
max_connections = 200
logging_collector = off
EOF
    fi
    port=$(cat "$dir/port")
    if ! as_owner "$bin/pg_ctl" --pgdata="$data" status >/dev/null 2>&1; then
        as_owner "$bin/pg_ctl" --pgdata="$data" --log="$dir/server.log" --wait --timeout=60 start >/dev/null || {
            tail -20 "$dir/server.log" >&2
            exit 1
        }
    fi
    password=$(cat "$dir/password")
    # Roles and database, once; the superuser reaches the server through its Unix socket only.
    as_owner "$bin/psql" --host="$(cat "$dir/socket")" --port="$port" --username=postgres --dbname=postgres --quiet --no-psqlrc \
        --set=ON_ERROR_STOP=1 --set=password="$password" >/dev/null <<'EOF'
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rewind') AS missing \gset
\if :missing
CREATE ROLE rewind LOGIN CREATEDB PASSWORD :'password';
CREATE ROLE rewind_guest LOGIN PASSWORD :'password';
CREATE DATABASE rewind OWNER rewind;
\endif
EOF
    url
    ;;
stop)
    [[ -f "$dir/data/PG_VERSION" ]] || {
        echo "$0: no cluster in $dir" >&2
        exit 1
    }
    as_owner "$bin/pg_ctl" --pgdata="$dir/data" --mode="$mode" --wait stop >/dev/null
    ;;
url)
    url
    ;;
*)
    usage
    ;;
esac
