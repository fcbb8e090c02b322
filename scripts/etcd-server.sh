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
# holds the caller's pipes. The process handling is scripts/lib/server.sh.
set -euo pipefail
# shellcheck source=lib/server.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/server.sh"

SERVER_NAME=etcd
SERVER_LOG=etcd.log

healthy() { # client-url
    curl -s -m 1 "$1/health" 2>/dev/null | grep -q '"health":"true"'
}

launch() { # client-port peer-port
    local curl_=http://127.0.0.1:$1 purl=http://127.0.0.1:$2
    server_spawn "$dir/etcd.log" etcd --name t --data-dir "$dir/data" \
        --listen-client-urls "$curl_" --advertise-client-urls "$curl_" \
        --listen-peer-urls "$purl" --initial-advertise-peer-urls "$purl" \
        --initial-cluster "t=$purl" --heartbeat-interval=10 --election-timeout=100
    # ready when /health answers true; it exits at once if a port is taken
    server_wait_ready 60 healthy "$curl_"
}

server_launch_new() {
    local cport pport
    cport=$(server_port)
    pport=$(server_port)
    ((cport != pport)) || return 1
    rm -rf "$dir/data"
    launch "$cport" "$pport" || return 1
    echo "$cport $pport" >"$dir/ports"
    echo "http://127.0.0.1:$cport" >"$dir/url"
}

server_launch_again() {
    local cport pport
    read -r cport pport <"$dir/ports"
    launch "$cport" "$pport"
}

server_main "$@"
