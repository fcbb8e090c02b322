#!/usr/bin/env bash
# `fdn serve --postgres URL` while its PostgreSQL hangs (SIGSTOP: it accepts nothing and
# answers nothing; a cluster of this test's own, scripts/pg-server.sh, so the fixture's is not
# stopped under the other tests), with durable POSTs waiting for their commit:
#  - GET /health and GET /metrics answer meanwhile: a POST waits for its commit in the event
#    store's queue, not on one of the HTTP server's threads (there are 2; before, 2 POSTs
#    waiting for PostgreSQL held both and every other request waited behind them, up to
#    storage.warm.postgres.command_timeout_ms);
#  - once PostgreSQL runs again, every waiting POST is answered 201 and its event is stored.
# The calls' bound is long (120 s), so nothing fails while PostgreSQL is stopped: the POSTs
# wait for it. Waits are bounded polls on a condition, never fixed sleeps.
set -euo pipefail

# shellcheck source=../support/serve.sh
source "$(dirname "${BASH_SOURCE[0]}")/../support/serve.sh"
# shellcheck source=../support/serve_pg.sh
source "$(dirname "${BASH_SOURCE[0]}")/../support/serve_pg.sh"
export FDN_STORAGE__WARM__POSTGRES__SCHEMA="pause_$$_$RANDOM"
export FDN_STORAGE__WARM__POSTGRES__COMMAND_TIMEOUT_MS=120000
serve_start "$TMP/serve.err" --data-dir "$TMP/data" --listen 127.0.0.1:0 --threads 2 \
    --postgres "$URL" ||
    fail "server did not start: $(cat "$TMP/serve.err")"
A="http://127.0.0.1:$SERVE_PORT"

post() { # i: POST event i, its answer's code in $TMP/post.i, curl's trace in $TMP/post.i.trace
    curl -s --trace-ascii "$TMP/post.$1.trace" -o "$TMP/body.$1" -w '%{http_code}' \
        --max-time 300 -X POST -H 'Content-Type: application/json' "$A/v1/events" \
        -d "{\"type\":\"pause.tick\",\"data\":{\"i\":$1}}" >"$TMP/post.$1" || true
}

post 0
[[ "$(cat "$TMP/post.0")" == 201 ]] || fail "POST with PostgreSQL up answered $(cat "$TMP/post.0")"

signal_cluster STOP
PAUSED=1
# 4 POSTs, twice the server's threads, each sent whole before /health is asked
pids=()
for i in 1 2 3 4; do
    post "$i" &
    pids+=("$!")
done
deadline=$((SECONDS + 60))
for i in 1 2 3 4; do
    until grep -q '^=> Send data' "$TMP/post.$i.trace" 2>/dev/null; do
        ((SECONDS < deadline)) || fail "POST $i was not sent: $(cat "$TMP/post.$i.trace")"
        sleep 0.05 # polling for curl's progress, not ordering our own steps
    done
done

# PostgreSQL answers nothing: the POSTs wait; /health and /metrics answer all the same
code=$(curl -s -o "$TMP/health" -w '%{http_code}' --max-time 60 "$A/health" || true)
[[ "$code" == 200 || "$code" == 503 ]] ||
    fail "/health answered '$code' with POSTs waiting for PostgreSQL"
code=$(curl -s -o "$TMP/metrics" -w '%{http_code}' --max-time 60 "$A/metrics" || true)
[[ "$code" == 200 ]] || fail "/metrics answered '$code' with POSTs waiting for PostgreSQL"
for i in 1 2 3 4; do # still waiting: nothing could commit
    [[ ! -s "$TMP/post.$i" ]] || fail "POST $i answered $(cat "$TMP/post.$i") with PostgreSQL stopped"
done

signal_cluster CONT
PAUSED=0
for p in "${pids[@]}"; do wait "$p"; done
for i in 1 2 3 4; do
    [[ "$(cat "$TMP/post.$i")" == 201 ]] ||
        fail "POST $i answered $(cat "$TMP/post.$i") after PostgreSQL came back: $(cat "$TMP/body.$i")"
done
n=$(curl -sf --max-time 30 "$A/v1/events?type=pause.tick&limit=100" | jq .count)
[[ "$n" == 5 ]] || fail "5 events posted, $n stored"
echo ok
