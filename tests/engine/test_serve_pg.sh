#!/usr/bin/env bash
# Two `fdn serve --postgres URL` processes (the fixture's PostgreSQL) share one event log: events
# POSTed to either get global positions (ids) that never collide, each server answers queries,
# gets by id and correlation lookups with the other's events, in position order; the log
# outlives both servers (a third one started afterwards reads it); a server whose PostgreSQL
# does not answer stops at start with a message naming the problem, one whose PostgreSQL takes
# the connection and never answers stops once storage.warm.postgres.connect_timeout_ms passed.
# The servers use a schema of this run alone (FDN_STORAGE__WARM__POSTGRES__SCHEMA).
set -euo pipefail

# shellcheck source=../support/serve.sh
source "$(dirname "${BASH_SOURCE[0]}")/../support/serve.sh"
URL="$(cat "${FDN_TEST_PG_DIR:?}/url")"
export FDN_STORAGE__WARM__POSTGRES__SCHEMA="serve_$$_$RANDOM"
fail() { echo "$*" >&2; exit 1; }
start() { serve_named "$1" --postgres "$2"; } # name url: its port appended to SERVE_PORTS

post() { # port body -> id
    curl -sf --max-time 60 -X POST -H 'Content-Type: application/json' \
        "http://127.0.0.1:$1/v1/events" -d "$2" | jq -r .id
}

start a "$URL"
start b "$URL"
A="http://127.0.0.1:${SERVE_PORTS[0]}"
B="http://127.0.0.1:${SERVE_PORTS[1]}"

# alternate between the servers: ids strictly increase, whoever stored the event
last=0
for i in $(seq 1 10); do
    port=${SERVE_PORTS[$((i % 2))]}
    id=$(post "$port" "{\"type\":\"order.placed\",\"data\":{\"i\":$i},\"correlation_id\":\"req-$((i % 2))\"}")
    [[ "$id" =~ ^[0-9]+$ ]] || fail "POST answered id '$id'"
    ((id > last)) || fail "id $id after $last"
    last=$id
done
# a batch on b
ids=$(curl -sf --max-time 60 -X POST -H 'Content-Type: application/json' "$B/v1/events/batch" \
    -d '{"events":[{"type":"order.paid","data":{"i":11},"correlation_id":"req-1"},{"type":"order.paid","data":{"i":12},"correlation_id":"req-0"}]}' |
    jq -c .ids)
[[ "$(jq '.[0] > '"$last"' and .[1] == .[0] + 1' <<<"$ids")" == true ]] || fail "batch ids $ids after $last"

# each server sees all 12 (the type filter leaves out the runtime's own events), in id order
for base in "$A" "$B"; do
    got=$(curl -sf --max-time 60 "$base/v1/events?type=order.placed&order=asc&limit=100")
    [[ "$(jq .count <<<"$got")" == 10 ]] || fail "$base: order.placed $got"
    [[ "$(jq '[.events[].data.i] == [range(1;11)]' <<<"$got")" == true ]] || fail "$base: order $got"
    [[ "$(jq '[.events[].id] | . == sort' <<<"$got")" == true ]] || fail "$base: ids not sorted $got"
    got=$(curl -sf --max-time 60 "$base/v1/events?correlation_id=req-1&order=asc&limit=100")
    [[ "$(jq '[.events[] | select(.type | startswith("order.")) | .data.i]' -c <<<"$got")" == "[1,3,5,7,9,11]" ]] ||
        fail "$base: correlation req-1 $got"
done
# get by id, across servers: the batch's first event (stored through b) from a
first=$(jq '.[0]' <<<"$ids")
got=$(curl -sf --max-time 60 "$A/v1/events/$first")
[[ "$(jq -r .type <<<"$got")" == order.paid && "$(jq .data.i <<<"$got")" == 11 ]] || fail "get $first from a: $got"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 "$A/v1/events/999999")
[[ "$code" == 404 ]] || fail "get of an unknown id answered $code"

# the log outlives the servers: a third one started after both stopped reads it
stop_servers() {
    local p
    for p in "${SERVE_PIDS[@]}"; do kill -TERM "$p"; done
    for p in "${SERVE_PIDS[@]}"; do wait "$p" || true; done
    SERVE_PIDS=()
    SERVE_PORTS=()
}
stop_servers
start c "$URL"
C="http://127.0.0.1:${SERVE_PORTS[0]}"
got=$(curl -sf --max-time 60 "$C/v1/events?type=order.paid&order=asc&limit=100")
[[ "$(jq '[.events[].data.i]' -c <<<"$got")" == "[11,12]" ]] || fail "after restart: $got"
id=$(post "${SERVE_PORTS[0]}" '{"type":"order.shipped","data":{"i":13}}')
((id > first + 1)) || fail "id $id after a restart does not continue the log ($first)"

# PostgreSQL away: the server refuses to start, naming the problem
# Port 1: a loopback port nothing listens on, and nothing can start to meanwhile (a random
# one in 20000..52767 could be taken by a test server started at the same time, 10000..32767,
# or be the ephemeral local port of the server's own connect, which then reaches itself)
closed=1
! (exec 3<>"/dev/tcp/127.0.0.1/$closed") 2>/dev/null || fail "port 1 of the loopback is open here: no closed port for this check"
serve_refused "[Pp]ostgres|connect" --postgres "postgresql://fdn@127.0.0.1:$closed/postgres"

# a PostgreSQL that takes the connection and never answers: the start fails once
# storage.warm.postgres.connect_timeout_ms has passed, and the message says that bound (a
# listener that never accepts: the kernel completes the handshake, the startup packet waits)
# (it waits for its SIGTERM from cleanup in signal.pause(): reading a stdin of /dev/zero
# never ends either, but fills memory at about 1 GB a second for as long as the start takes)
exec {sil}< <(exec python3 -c 'import signal, socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True); signal.pause()' </dev/null)
SERVE_PIDS+=($!) # (serve_cleanup stops it)
IFS= read -r -t 30 silent <&"$sil" || fail "no silent listener"
FDN_STORAGE__WARM__POSTGRES__CONNECT_TIMEOUT_MS=700 \
    serve_refused "no answer within 700 ms" --postgres "postgresql://fdn@127.0.0.1:$silent/postgres"
echo ok
