#!/usr/bin/env bash
# A throwaway Redis on a free loopback port, for the tests and the benchmarks.
#   scripts/redis-server.sh start DIR   start one with its files in DIR; prints its URL and
#                                       writes it to DIR/url (pid in DIR/pid, port in DIR/port)
#   scripts/redis-server.sh stop DIR    stop it (SIGTERM, then SIGKILL) and remove DIR
#   scripts/redis-server.sh kill DIR    SIGKILL it, keep DIR (a crash, for chaos tests)
#   scripts/redis-server.sh restart DIR start it again on the same port after kill
# No persistence (--save '' --appendonly no). The daemon's stdin, stdout and stderr are
# redirected (its log is DIR/redis.log) so it never holds the caller's pipes.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[[ -n "$cmd" && -n "$dir" ]] || { echo "usage: $0 start|stop|kill|restart DIR" >&2; exit 2; }

launch() { # port
    local port=$1
    setsid redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
        --dir "$dir" --daemonize no --protected-mode yes \
        </dev/null >>"$dir/redis.log" 2>&1 &
    echo $! >"$dir/pid"
    # ready when it answers PING; it exits at once if the port is taken
    for _ in $(seq 1 200); do
        if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
            return 1
        fi
        if [[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" == "PONG" ]]; then
            return 0
        fi
        sleep 0.05
    done
    kill -9 "$(cat "$dir/pid")" 2>/dev/null || true
    return 1
}

case "$cmd" in
start)
    command -v redis-server >/dev/null || { echo "redis-server is not installed (scripts/deps.sh)" >&2; exit 1; }
    mkdir -p "$dir"
    for _ in $(seq 1 20); do
        port=$((20000 + RANDOM % 40000))
        if launch "$port"; then
            echo "$port" >"$dir/port"
            echo "redis://127.0.0.1:$port" >"$dir/url"
            cat "$dir/url"
            exit 0
        fi
    done
    echo "could not start redis-server (see $dir/redis.log)" >&2
    exit 1
    ;;
restart)
    launch "$(cat "$dir/port")"
    ;;
kill)
    [[ -f "$dir/pid" ]] && kill -9 "$(cat "$dir/pid")" 2>/dev/null || true
    # wait until the port is closed
    for _ in $(seq 1 200); do
        kill -0 "$(cat "$dir/pid")" 2>/dev/null || exit 0
        sleep 0.02
    done
    ;;
stop)
    if [[ -f "$dir/pid" ]]; then
        pid=$(cat "$dir/pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start|stop|kill|restart DIR" >&2
    exit 2
    ;;
esac
