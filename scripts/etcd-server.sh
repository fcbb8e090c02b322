#!/usr/bin/env bash
# A throwaway one-node etcd on free loopback ports, for the tests and the benchmarks.
#   scripts/etcd-server.sh start DIR    start one with its data in DIR/data; prints its client
#                                       URL and writes it to DIR/url (pid in DIR/pid, ports in
#                                       DIR/ports)
#   scripts/etcd-server.sh stop DIR     stop it (SIGTERM, then SIGKILL) and remove DIR
#   scripts/etcd-server.sh kill DIR     SIGKILL it, keep DIR (a crash, for chaos tests)
#   scripts/etcd-server.sh restart DIR  start it again on the same ports and data after kill
# Short heartbeat and election timeouts, so a one-node cluster is ready in well under a second.
# The daemon's stdin, stdout and stderr are redirected (its log is DIR/etcd.log) so it never
# holds the caller's pipes.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[[ -n "$cmd" && -n "$dir" ]] || { echo "usage: $0 start|stop|kill|restart DIR" >&2; exit 2; }

launch() { # client-port peer-port
    local cport=$1 pport=$2
    local curl_=http://127.0.0.1:$cport purl=http://127.0.0.1:$pport
    setsid etcd --name t --data-dir "$dir/data" \
        --listen-client-urls "$curl_" --advertise-client-urls "$curl_" \
        --listen-peer-urls "$purl" --initial-advertise-peer-urls "$purl" \
        --initial-cluster "t=$purl" --heartbeat-interval=10 --election-timeout=100 \
        </dev/null >>"$dir/etcd.log" 2>&1 &
    echo $! >"$dir/pid"
    # ready when /health answers true; it exits at once if a port is taken
    for _ in $(seq 1 300); do
        if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
            return 1
        fi
        if curl -s -m 1 "$curl_/health" 2>/dev/null | grep -q '"health":"true"'; then
            return 0
        fi
        sleep 0.05
    done
    kill -9 "$(cat "$dir/pid")" 2>/dev/null || true
    return 1
}

case "$cmd" in
start)
    command -v etcd >/dev/null || { echo "etcd is not installed (scripts/deps.sh)" >&2; exit 1; }
    mkdir -p "$dir"
    for _ in $(seq 1 20); do
        cport=$((20000 + RANDOM % 40000))
        pport=$((20000 + RANDOM % 40000))
        ((cport != pport)) || continue
        rm -rf "$dir/data"
        if launch "$cport" "$pport"; then
            echo "$cport $pport" >"$dir/ports"
            echo "http://127.0.0.1:$cport" >"$dir/url"
            cat "$dir/url"
            exit 0
        fi
    done
    echo "could not start etcd (see $dir/etcd.log)" >&2
    exit 1
    ;;
restart)
    read -r cport pport <"$dir/ports"
    launch "$cport" "$pport"
    ;;
kill)
    [[ -f "$dir/pid" ]] && kill -9 "$(cat "$dir/pid")" 2>/dev/null || true
    # wait until it is gone (its ports closed)
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
