#!/usr/bin/env bash
# A throwaway Redis on a free loopback port, for the tests and the benchmarks.
#   scripts/redis-server.sh start DIR   start one with its files in DIR; prints its URL and
#                                       writes it to DIR/url (pid in DIR/pid, port in DIR/port)
#   scripts/redis-server.sh stop DIR    stop it (SIGTERM, then SIGKILL) and remove DIR
#   scripts/redis-server.sh kill DIR    SIGKILL it, keep DIR (a crash, for chaos tests)
#   scripts/redis-server.sh restart DIR start it again on the same port after kill
# No persistence (--save '' --appendonly no). The daemon's stdin, stdout and stderr are
# redirected (its log is DIR/redis.log) so it never holds the caller's pipes. The process
# handling is scripts/lib/server.sh.
set -euo pipefail
# shellcheck source=lib/server.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/server.sh"

SERVER_NAME=redis-server
SERVER_LOG=redis.log

pong() { # port
    [[ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" == "PONG" ]]
}

launch() { # port
    server_spawn "$dir/redis.log" redis-server --bind 127.0.0.1 --port "$1" --save '' \
        --appendonly no --dir "$dir" --daemonize no --protected-mode yes
    # ready when it answers PING; it exits at once if the port is taken
    server_wait_ready 60 pong "$1"
}

server_launch_new() {
    local port
    port=$(server_port)
    launch "$port" || return 1
    echo "$port" >"$dir/port"
    echo "redis://127.0.0.1:$port" >"$dir/url"
}

server_launch_again() {
    launch "$(cat "$dir/port")"
}

server_main "$@"
