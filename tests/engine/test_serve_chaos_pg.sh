#!/usr/bin/env bash
# `fdn serve --postgres URL` while its PostgreSQL goes away (a cluster of this test's own,
# scripts/pg-server.sh, so the fixture's is not killed under the other tests):
#  - without a spool, a POST answers 503 with Retry-After within the call's bound
#    (storage.warm.postgres.command_timeout_ms), the breaker "events.postgres" opens (/metrics)
#    and /v1/events/stats... keeps answering; after PostgreSQL is back, POSTs succeed again;
#  - with storage.warm.postgres.spool_path, a POST answers 202 {"spooled":true} while
#    PostgreSQL is away, and the spooled events get positions once it is back.
# Waits are bounded polls on a condition (an HTTP answer), never fixed sleeps.
set -euo pipefail

# shellcheck source=../support/serve.sh
source "$(dirname "${BASH_SOURCE[0]}")/../support/serve.sh"
SRC="${FDN_SOURCE_DIR:?}"
PG="$TMP/pg"
mkdir -p "$PG"
chmod 755 "$TMP"
cleanup() { # the servers first, then the cluster, then TMP
    local pids=("${SERVE_PIDS[@]}") p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    bash "$SRC/scripts/pg-server.sh" stop "$PG" >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "$*" >&2; exit 1; }

bash "$SRC/scripts/pg-server.sh" start "$PG" >/dev/null
URL="$(cat "$PG/url")"
export FDN_STORAGE__WARM__POSTGRES__SCHEMA="chaos_$$_$RANDOM"
# The calls' bound: short, so that a call cannot hang while PostgreSQL is away, but not so short
# that a loaded machine (both cores busy, an ASan build, PostgreSQL itself starved or in crash
# recovery after the kill) makes the calls that must succeed time out: the two first POSTs, the
# retried one after the restart (a timed-out append whose COMMIT went through is stored, and the
# retry then stores a second "30"), the replay of the spool. The POSTs while PostgreSQL is away
# fail at once anyway (the connection is refused), well within the bound.
export FDN_STORAGE__WARM__POSTGRES__COMMAND_TIMEOUT_MS=2000

# The bound also applies to the server's first call at start (the head; its connections are
# made within connect_timeout_ms since the open makes the pool's first one): with both cores
# busy an ASan build's start missed 500 ms once (scripts/test-loaded.sh, when that call still
# had to connect within the bound too). A start refused for that reason alone is tried again,
# at most 3 times; any other refusal fails at once.
start() { # name [spool]: its port appended to SERVE_PORTS
    local try
    for try in 1 2 3; do
        if FDN_STORAGE__WARM__POSTGRES__SPOOL_PATH="${2:-}" serve_start "$TMP/$1.err" \
            --data-dir "$TMP/$1" --listen 127.0.0.1:0 --postgres "$URL"; then
            SERVE_PORTS+=("$SERVE_PORT") # (its output stays open: the server writes to it)
            return
        fi
        grep -q "no answer within" "$TMP/$1.err" || break
    done
    fail "server $1 did not start: $(cat "$TMP/$1.err")"
}

post() { # base i -> "code seconds" (headers in $TMP/h)
    curl -s -o "$TMP/body" -D "$TMP/h" -w '%{http_code} %{time_total}\n' --max-time 30 \
        -X POST -H 'Content-Type: application/json' "$1/v1/events" \
        -d "{\"type\":\"chaos.tick\",\"data\":{\"i\":$2}}"
}

count() { # base -> events of type chaos.tick
    curl -sf --max-time 30 "$1/v1/events?type=chaos.tick&limit=1000" | jq .count
}

start plain
start spooled "$TMP/spool.db"
A="http://127.0.0.1:${SERVE_PORTS[0]}"
B="http://127.0.0.1:${SERVE_PORTS[1]}"
read -r code _ < <(post "$A" 0)
[[ "$code" == 201 ]] || fail "POST with PostgreSQL up answered $code: $(cat "$TMP/body")"
read -r code _ < <(post "$B" 1)
[[ "$code" == 201 ]] || fail "POST (spool on) with PostgreSQL up answered $code"

bash "$SRC/scripts/pg-server.sh" kill "$PG" >/dev/null

# no spool: 503 + Retry-After, each within the bound (2 s, plus slack for a loaded machine)
for i in 1 2 3 4; do
    read -r code secs < <(post "$A" "1$i")
    [[ "$code" == 503 ]] || fail "POST with PostgreSQL away answered $code: $(cat "$TMP/body")"
    grep -qi '^Retry-After: [0-9]' "$TMP/h" || fail "503 without Retry-After: $(cat "$TMP/h")"
    awk -v s="$secs" 'BEGIN { exit !(s < 10) }' || fail "POST took $secs s with a 2 s bound"
done
# the breaker around the engine is open (3 failures), and the metric says so
curl -sf --max-time 30 "$A/metrics" >"$TMP/metrics"
grep -q '^fdn_circuit_breaker_state{breaker="events.postgres",state="open"} 1' "$TMP/metrics" ||
    grep -q '^fdn_circuit_breaker_state{breaker="events.postgres",state="half_open"} 1' "$TMP/metrics" ||
    fail "breaker events.postgres not open: $(grep events.postgres "$TMP/metrics")"
# (the follower's reads may fail first and open the breaker: then the appends are refused
# without a call, and only the reads are in the histogram as errors)
grep -q '^fdn_events_backend_request_duration_seconds_count{op="[a-z]*",outcome="error"}' \
    "$TMP/metrics" || fail "no failed call in the latency histogram: $(grep fdn_events_backend "$TMP/metrics")"
grep -q '^fdn_events_backend_up{backend="postgres"} 0' "$TMP/metrics" ||
    fail "fdn_events_backend_up not 0: $(grep fdn_events_backend_up "$TMP/metrics")"
grep -q '^fdn_events_backend_breaker_state{backend="postgres",state="\(open\|half_open\)"} 1' "$TMP/metrics" ||
    fail "fdn_events_backend_breaker_state not open: $(grep fdn_events_backend_breaker "$TMP/metrics")"

# /health names the engine backend unhealthy
code=$(curl -s -o "$TMP/health" -w '%{http_code}' --max-time 30 "$A/health")
[[ "$code" == 503 ]] || fail "/health answered $code with PostgreSQL away: $(cat "$TMP/health")"
grep -q events_backend "$TMP/health" || fail "/health without events_backend: $(cat "$TMP/health")"

# spool on: accepted (202, spooled) while PostgreSQL is away
for i in 1 2 3; do
    read -r code _ < <(post "$B" "2$i")
    [[ "$code" == 202 ]] || fail "POST with a spool answered $code: $(cat "$TMP/body")"
    [[ "$(jq .spooled "$TMP/body")" == true ]] || fail "202 body $(cat "$TMP/body")"
done
curl -sf --max-time 30 "$B/metrics" >"$TMP/metrics-b"
# (at least the 3 posted: the runtime's own events, such as the breaker's transitions, are
# spooled too)
spooled=$(sed -n 's/^fdn_events_backend_spooled_events{backend="postgres"} \([0-9]*\)$/\1/p' "$TMP/metrics-b")
[[ -n "$spooled" && "$spooled" -ge 3 ]] ||
    fail "3 events spooled, metrics say: $(grep fdn_events_backend_spooled "$TMP/metrics-b")"

bash "$SRC/scripts/pg-server.sh" restart "$PG" >/dev/null
# back: POSTs succeed again (once the breaker lets a call through), the spool drains
# (polls end at a deadline of a minute, not after a number of tries: each try is slower on a
# loaded machine, and so are PostgreSQL's recovery and the spool's replay)
ok=""
deadline=$((SECONDS + 60))
while ((SECONDS < deadline)); do
    read -r code _ < <(post "$A" 30)
    if [[ "$code" == 201 ]]; then ok=1; break; fi
    sleep 0.05
done
[[ -n "$ok" ]] || fail "POST still answers $code after PostgreSQL came back"
n=""
deadline=$((SECONDS + 60))
while ((SECONDS < deadline)); do
    n=$(count "$B" || echo 0)
    [[ "$n" == 6 ]] && break
    sleep 0.05
done
# 0 and 1 (up), 21..23 (spooled, replayed), 30 (after): the failed 11..14 are not stored
[[ "$n" == 6 ]] || fail "server b sees $n chaos.tick events, want 6"
got=$(curl -sf --max-time 30 "$B/v1/events?type=chaos.tick&order=asc&limit=100" | jq -c '[.events[].data.i]')
[[ "$(jq -c sort <<<"$got")" == "[0,1,21,22,23,30]" ]] || fail "events stored: $got"
# b's own events in b's order (another process's commits may come between: positions are
# commit order, and the spooled ones commit when they are replayed)
[[ "$(jq -c 'map(select(. != 0 and . != 30))' <<<"$got")" == "[1,21,22,23]" ]] ||
    fail "b's events out of order: $got"
echo "ok"
