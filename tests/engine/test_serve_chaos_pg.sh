#!/usr/bin/env bash
# `fdn serve --postgres URL` while its PostgreSQL goes away (a cluster of this test's own,
# scripts/pg-server.sh, so the fixture's is not killed under the other tests):
#  - without a spool, a POST answers 503 with Retry-After within the call's bound
#    (storage.warm.postgres.command_timeout_ms), the breaker "events.postgres" opens (/metrics)
#    and /v1/events/stats... keeps answering; after PostgreSQL is back, POSTs succeed again;
#  - with storage.warm.postgres.spool_path, a POST answers 202 {"spooled":true} while
#    PostgreSQL is away, and the spooled events get positions once it is back.
# Delivery is at least once: the HTTP API has no idempotency key (the UUIDs that make the
# backend's own retries exactly once are drawn by the server per request), so a POST whose
# outcome is unknown (500: the connection was lost at COMMIT, docs/events-postgres.md; or no
# answer at all) may have stored its event, and the client's retry then stores another. Each
# POST of the retried event carries its attempt number, and the check at the end is per
# attempt: the acknowledged one (201) stored exactly once, each one answered 503 (nothing
# committed) never, each one of unknown outcome at most once.
# Waits are bounded polls on a condition (an HTTP answer), never fixed sleeps.
set -euo pipefail

# shellcheck source=../support/serve.sh
source "$(dirname "${BASH_SOURCE[0]}")/../support/serve.sh"
# shellcheck source=../support/serve_pg.sh
source "$(dirname "${BASH_SOURCE[0]}")/../support/serve_pg.sh"
export FDN_STORAGE__WARM__POSTGRES__SCHEMA="chaos_$$_$RANDOM"
# The calls' bound: short, so that a call cannot hang while PostgreSQL is away, but not so short
# that a loaded machine (both cores busy, an ASan build, PostgreSQL itself starved or in crash
# recovery after the kill) makes the calls that must succeed time out: the two first POSTs,
# the replay of the spool, and the retried one after the restart (which may still time out:
# see "Delivery is at least once" above). The POSTs while PostgreSQL is away fail at once
# anyway (the connection is refused), well within the bound.
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

post() { # base i [attempt] -> "code seconds" (headers in $TMP/h); code 000: no answer
    curl -s -o "$TMP/body" -D "$TMP/h" -w '%{http_code} %{time_total}\n' --max-time 30 \
        -X POST -H 'Content-Type: application/json' "$1/v1/events" \
        -d "{\"type\":\"chaos.tick\",\"data\":{\"i\":$2${3:+,\"attempt\":$3}}}" || true
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
    [[ "$(cat "$TMP/body")" == '{"spooled":true,"count":1}' ]] || fail "202 body $(cat "$TMP/body")"
done
# a batch too (another type: the chaos.tick checks below are unchanged by it)
code=$(curl -s -o "$TMP/body" -w '%{http_code}' --max-time 30 -X POST \
    -H 'Content-Type: application/json' "$B/v1/events/batch" \
    -d '{"events":[{"type":"chaos.batch","data":{"k":1}},{"type":"chaos.batch","data":null}]}' || true)
[[ "$code" == 202 && "$(cat "$TMP/body")" == '{"spooled":true,"count":2}' ]] ||
    fail "batch POST with a spool answered $code: $(cat "$TMP/body")"
curl -sf --max-time 30 "$B/metrics" >"$TMP/metrics-b"
# (at least the 5 posted: the runtime's own events, such as the breaker's transitions, are
# spooled too)
spooled=$(sed -n 's/^fdn_events_backend_spooled_events{backend="postgres"} \([0-9]*\)$/\1/p' "$TMP/metrics-b")
[[ -n "$spooled" && "$spooled" -ge 5 ]] ||
    fail "5 events spooled, metrics say: $(grep fdn_events_backend_spooled "$TMP/metrics-b")"

bash "$SRC/scripts/pg-server.sh" restart "$PG" >/dev/null
# back: POSTs succeed again (once the breaker lets a call through), the spool drains
# (polls end at a deadline of a minute, not after a number of tries: each try is slower on a
# loaded machine, and so are PostgreSQL's recovery and the spool's replay).
# Event 30 is posted until one attempt is acknowledged; each attempt's answer is recorded:
# 201 acknowledged; 503 nothing stored (refused before COMMIT was sent, or by the open breaker,
# docs/events-postgres.md); 500 (the connection lost at COMMIT), any other 5xx or no answer
# (curl's 000) outcome unknown. A 4xx refuses the request itself: a failure.
acked="" definite_no=() unknown=()
attempt=0
deadline=$((SECONDS + 60))
while ((SECONDS < deadline)); do
    attempt=$((attempt + 1))
    read -r code _ < <(post "$A" 30 "$attempt")
    case "$code" in
    201) acked=$attempt; break ;;
    503) definite_no+=("$attempt") ;;
    5?? | 000) unknown+=("$attempt") ;;
    *) fail "POST of event 30 (attempt $attempt) answered $code: $(cat "$TMP/body")" ;;
    esac
    sleep 0.05 # polling for PostgreSQL's and the breaker's return, not ordering our own steps
done
[[ -n "$acked" ]] || fail "POST still answers $code after PostgreSQL came back"
echo "event 30: acknowledged at attempt $acked; refused: ${definite_no[*]:-none}; unknown: ${unknown[*]:-none}"
# b sees every acknowledged event: 0 and 1 (up), 21..23 (spooled, replayed), 30 (after)
want_seen='[0,1,21,22,23,30]'
seen() { # -> the distinct i of the chaos.tick events b lists (in $TMP/b.json)
    curl -sf --max-time 30 "$B/v1/events?type=chaos.tick&order=asc&limit=100" >"$TMP/b.json" &&
        jq -c '[.events[].data.i] | unique' "$TMP/b.json"
}
got=""
deadline=$((SECONDS + 60))
while ((SECONDS < deadline)); do
    got=$(seen || true)
    [[ "$got" == "$want_seen" ]] && break
    sleep 0.05 # polling b's follower, which reads the other server's commits from PostgreSQL
done
[[ "$got" == "$want_seen" ]] || fail "server b sees events $got, want $want_seen"
# now every attempt at 30 has ended (each curl returned), but one of unknown outcome may
# still commit (PostgreSQL finishing a COMMIT whose connection the server dropped): what is
# checked below holds whether or not it is listed yet
jq -c '[.events[].data]' "$TMP/b.json" >"$TMP/got"
# each of 0, 1, 21..23 exactly once; the failed 11..14 (503: nothing committed) never
others=$(jq -c 'map(select(.i != 30) | .i) | sort' "$TMP/got")
[[ "$others" == "[0,1,21,22,23]" ]] || fail "events stored: $(cat "$TMP/got")"
# 30: the acknowledged attempt exactly once; a refused one never; an unknown one at most once;
# no event without its attempt
n_acked=$(jq --argjson a "$acked" 'map(select(.i == 30 and .attempt == $a)) | length' "$TMP/got")
[[ "$n_acked" == 1 ]] || fail "event 30 acknowledged at attempt $acked is stored $n_acked times: $(cat "$TMP/got")"
for a in "${definite_no[@]}"; do
    n=$(jq --argjson a "$a" 'map(select(.i == 30 and .attempt == $a)) | length' "$TMP/got")
    [[ "$n" == 0 ]] || fail "event 30 attempt $a was answered 503 but is stored $n times: $(cat "$TMP/got")"
done
for a in "${unknown[@]}"; do
    n=$(jq --argjson a "$a" 'map(select(.i == 30 and .attempt == $a)) | length' "$TMP/got")
    [[ "$n" -le 1 ]] || fail "event 30 attempt $a (outcome unknown) is stored $n times: $(cat "$TMP/got")"
done
stray=$(jq --argjson n "$attempt" 'map(select(.i == 30 and ((.attempt | type) != "number" or .attempt < 1 or .attempt > $n))) | length' "$TMP/got")
[[ "$stray" == 0 ]] || fail "an event 30 of no attempt made: $(cat "$TMP/got")"
# b's own events in b's order (another process's commits may come between: positions are
# commit order, and the spooled ones commit when they are replayed)
[[ "$(jq -c 'map(.i | select(. != 0 and . != 30))' "$TMP/got")" == "[1,21,22,23]" ]] ||
    fail "b's events out of order: $(cat "$TMP/got")"
echo "ok"
