#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on a free loopback port, for the tests and the benchmarks.
#   scripts/pg-server.sh start DIR    initdb a cluster in DIR/data and start it; prints its URL
#                                     and writes it to DIR/url (port in DIR/port)
#   scripts/pg-server.sh stop DIR     stop it (fast shutdown, then SIGKILL) and remove DIR
#   scripts/pg-server.sh kill DIR     SIGKILL the postmaster and its backends, keep DIR (a
#                                     crash, for chaos tests)
#   scripts/pg-server.sh restart DIR  start it again on the same port (after kill or stop)
# The superuser is `fdn` with trust authentication on 127.0.0.1 only (no Unix socket).
# FDN_PG_FSYNC=on keeps fsync (the crash test needs it); the default is off, for speed.
# initdb refuses to run as root: as root, the cluster belongs to the `postgres` user and both
# initdb and pg_ctl run as that user. The daemon's stdin, stdout and stderr are redirected
# (its log is DIR/data/log) so it never holds the caller's pipes. The process handling is
# scripts/lib/server.sh.
set -euo pipefail
# shellcheck source=lib/server.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/server.sh"

SERVER_NAME=PostgreSQL
SERVER_LOG=data/log

bindir=${FDN_PG_BINDIR:-}
if [[ -z "$bindir" ]]; then
    bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
fi
if [[ -z "$bindir" || ! -x "$bindir/initdb" ]]; then
    if command -v pg_config >/dev/null; then
        bindir=$(pg_config --bindir)
    fi
fi

as_pg() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

launch() { # port
    local port=$1 fsync=${FDN_PG_FSYNC:-off}
    as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/data/log" -w -t 30 \
        -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=$fsync -c max_connections=100" \
        start </dev/null >/dev/null 2>&1
}

server_check() {
    [[ -x "$bindir/initdb" ]] || { echo "PostgreSQL is not installed (scripts/deps.sh)" >&2; exit 1; }
}

server_prepare() {
    dir=$(cd "$dir" && pwd)
    if [[ $(id -u) -eq 0 ]]; then
        # postgres must reach DIR: every parent needs o+x (they do under /work and /tmp)
        chown postgres: "$dir"
    fi
    as_pg "$bindir/initdb" -D "$dir/data" -U fdn -A trust -E UTF8 --no-sync \
        </dev/null >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
}

server_launch_new() {
    local port
    port=$(server_port)
    launch "$port" || return 1
    echo "$port" >"$dir/port"
    echo "postgresql://fdn@127.0.0.1:$port/postgres" >"$dir/url"
}

server_launch_again() {
    # after a kill, old backends may still hold the shared memory for a moment: tried again
    # until a deadline a minute away (server_wait; each try is a pg_ctl start, slower on a
    # loaded machine)
    server_wait 60 launch "$(cat "$dir/port")" && return 0
    echo "could not restart PostgreSQL (see $dir/data/log)" >&2
    exit 1
}

server_pid() { # the postmaster's
    if [[ -f "$dir/data/postmaster.pid" ]]; then head -n 1 "$dir/data/postmaster.pid"; fi
}

server_shutdown() {
    [[ -d "$dir/data" ]] || return 0
    local pid
    pid=$(server_pid)
    # a cluster a test paused (SIGSTOP) would hold pg_ctl for its whole 20 s
    if [[ -n "$pid" ]]; then
        pkill -CONT -P "$pid" 2>/dev/null || true
        kill -CONT "$pid" 2>/dev/null || true
    fi
    as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 20 stop </dev/null >/dev/null 2>&1 || true
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        server_kill "$pid"
    fi
}

server_main "$@"
